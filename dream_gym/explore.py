"""Held random actions: World Models' data-collection noise, written once.

Each step a player not already exploring starts, with chance ``p``, a random action of the
game held for 1..``max_hold`` steps in place of its own policy's. With ``p = 1`` this is the
random policy World Models collects its first data with; with a small ``p`` it is the noise
mixed into a controller's play in the iterative rounds (:func:`dream_gym.evaluate.
evaluate_controller`) and, inside a dream, the push that makes CMA-ES pay for a controller
that cannot recover (:class:`~dream_gym.training.controller.ControllerTrainConfig.explore`).

Random streams: a batch of players either shares one generator (CMA-ES: the draws for all
rows are made together) or gives each row its own (real games: an episode's data does not
depend on which slot played it). The two orders are those the shipped data and controllers
were made with, so both are kept; the rule is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from dream_gym.games.spec import GameSpec

__all__ = ["HeldRandomActions", "random_held_actions", "random_policy"]


class HeldRandomActions:
    """Exploration state of ``n`` players: the random action each holds and for how long."""

    def __init__(self, game: GameSpec, n: int, p: float, max_hold: int,
                 rng: np.random.Generator | None = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"The chance of exploring must be in [0, 1], got {p}.")
        if max_hold < 1:
            raise ValueError(f"max_hold must be >= 1, got {max_hold}.")
        self.game, self.p, self.max_hold, self.rng = game, p, max_hold, rng
        self.held = np.zeros(n, np.int64)  # steps left of each player's random action
        self.action = np.zeros((n, *game.action_shape), game.action_dtype)

    def start(self, rows: np.ndarray,
              rngs: np.random.Generator | Sequence[np.random.Generator]) -> None:
        """Players ``rows`` not holding an action start one with chance ``p``; ``rngs`` is one
        generator for all rows (drawn together) or one per row."""
        rows = np.asarray(rows, np.int64)
        if isinstance(rngs, np.random.Generator):
            start = rows[(self.held[rows] == 0) & (rngs.random(len(rows)) < self.p)]
            if len(start):
                self.action[start] = self.game.sample_actions(rngs, len(start))
                self.held[start] = rngs.integers(1, self.max_hold + 1, len(start))
            return
        for i, rng in zip(rows, rngs, strict=True):
            if self.held[i] == 0 and (self.p >= 1.0 or rng.random() < self.p):
                self.action[i] = self.game.sample_actions(rng, 1)[0]
                self.held[i] = rng.integers(1, self.max_hold + 1)

    def override(self, actions: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        """``actions`` (one per row of ``rows``) with the exploring players' replaced; each
        exploring player's hold counts down one step."""
        rows = np.asarray(rows, np.int64)
        exploring = self.held[rows] > 0
        if not exploring.any():
            return actions
        self.held[rows[exploring]] -= 1
        out = actions.clone()
        mask = torch.from_numpy(exploring).to(actions.device)
        out[mask] = torch.from_numpy(self.action[rows[exploring]]).to(actions)
        return out

    def reset(self, rows: np.ndarray) -> None:
        """Players ``rows`` start a new episode, holding nothing."""
        self.held[np.asarray(rows, np.int64)] = 0

    def __call__(self, actions: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """:meth:`start` then :meth:`override` for the players ``rows`` (a tensor of ids),
        drawing from the shared generator given at construction: the form a batched dream
        calls."""
        if self.rng is None:
            raise ValueError("Give HeldRandomActions an rng to call it on a batch.")
        ids = rows.cpu().numpy()
        self.start(ids, self.rng)
        return self.override(actions, ids)


def random_held_actions(rng: np.random.Generator, game: GameSpec, max_hold: int
                        ) -> Iterator[Any]:
    """Yield the game's random actions, each repeated a random 1..max_hold times."""
    noise, row = HeldRandomActions(game, 1, 1.0, max_hold), np.zeros(1, np.int64)
    while True:
        noise.start(row, [rng])
        noise.held[0] -= 1
        yield np.array(noise.action[0])  # a copy: the buffer is reused


def random_policy(rng: np.random.Generator, game: GameSpec, max_hold: int
                  ) -> Callable[[Any], Any]:
    """World Models' first data: random actions held 1..max_hold steps, screen unseen."""
    actions = random_held_actions(rng, game, max_hold)
    return lambda screen: next(actions)
