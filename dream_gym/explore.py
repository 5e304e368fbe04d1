"""Data-collection policies: what the real game is played with before any controller exists.

Seed 003 collects its first data with random actions. In CarRacing that data barely shows
the road: random gas and steering leave the track within seconds, and in our 320 random
episodes (312k frames) only 1.3% of steps visited a tile. A world model trained on it never
learns what steering does to the view of the road (its action-use gap was 0.004 nats), so a
controller evolved in its dream has nothing to learn from. The road follower below is a
noisy pixel heuristic (steer towards the grey road pixels ahead of the car) with random held
actions mixed in, so the data shows driving on the road, leaving it, and coming back. It
reads only the screen, like any agent, never the simulator's state; it is data collection,
not the controller: the shipped controller is still evolved only in the dream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from dream_gym.games import GameSpec

__all__ = ["POLICIES", "HeldExploration", "check_policy", "random_held_actions", "road_follower",
           "road_modes", "road_offset"]


def random_held_actions(rng: np.random.Generator, game: GameSpec, max_hold: int
                        ) -> Iterator[Any]:
    """Yield the game's random actions, each repeated a random 1..max_hold times."""
    while True:
        action = game.sample_actions(rng, 1)[0]
        for _ in range(int(rng.integers(1, max_hold + 1))):
            yield action


class HeldExploration:
    """Seed 003's exploration noise for a batch of n players, as data collection plays it
    (:func:`~dream_gym.evaluate.evaluate_controller`'s ``explore``): each step a player not
    already exploring starts, with chance ``p``, a random action held 1..``max_hold`` steps in
    place of its policy's. Inside a dream it makes CMA-ES pay for a controller that a push
    off its course sends astray."""

    def __init__(self, game: GameSpec, n: int, p: float, max_hold: int,
                 rng: np.random.Generator) -> None:
        self.game, self.p, self.max_hold, self.rng = game, p, max_hold, rng
        self.held = np.zeros(n, np.int64)  # steps left of each player's random action
        self.action = np.zeros((n, *game.action_shape), game.action_dtype)

    def __call__(self, actions: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``actions`` of the players ``rows`` (ids in 0..n-1), some replaced."""
        ids = rows.cpu().numpy()
        start = ids[(self.held[ids] == 0) & (self.rng.random(len(ids)) < self.p)]
        if len(start):
            self.action[start] = self.game.sample_actions(self.rng, len(start))
            self.held[start] = self.rng.integers(1, self.max_hold + 1, len(start))
        exploring = self.held[ids] > 0
        if not exploring.any():
            return actions
        self.held[ids[exploring]] -= 1
        out = actions.clone()
        mask = torch.from_numpy(exploring).to(actions.device)
        out[mask] = torch.from_numpy(self.action[ids[exploring]]).to(actions)
        return out


def road_offset(screen: np.ndarray, rows: tuple[int, int] = (50, 62)) -> float | None:
    """Where the road is ahead of the car: the mean column of grey road pixels in ``rows`` of
    CarRacing's 96x96 screen, in [-1, 1] (0: straight ahead); None when no road is in view."""
    band = screen[rows[0] : rows[1]].astype(np.int16)
    r, g, b = band[..., 0], band[..., 1], band[..., 2]
    road = (abs(r - g) < 15) & (abs(g - b) < 15) & (r > 80) & (r < 130)
    cols = np.nonzero(road)[1]
    return None if len(cols) == 0 else float(cols.mean() - 48) / 48.0


def road_follower(rng: np.random.Generator, game: GameSpec, max_hold: int,
                  explore: float = 0.01) -> Callable[[np.ndarray], np.ndarray]:
    """A CarRacing driver for data collection: steer ``gain`` times the road offset plus
    noise at a steady gas, each drawn per episode; with chance ``explore`` per step, a random
    action held 1..max_hold steps instead (this is what takes the car off the road)."""
    gain, gas = rng.uniform(1.0, 3.0), rng.uniform(0.05, 0.35)
    noise = rng.uniform(0.0, 0.3)
    randoms = random_held_actions(rng, game, max_hold)
    state = {"held": 0, "steer": 0.0}

    def act(screen: np.ndarray) -> np.ndarray:
        if state["held"] == 0 and rng.random() < explore:
            state["held"] = int(rng.integers(1, max_hold + 1))
            state["action"] = next(randoms)
        if state["held"] > 0:
            state["held"] -= 1
            return state["action"]
        offset = road_offset(screen)
        if offset is not None:
            state["steer"] = float(np.clip(gain * offset + noise * rng.standard_normal(), -1, 1))
        return np.array([state["steer"], gas, 0.0], np.float32)

    return act


def road_modes(rng: np.random.Generator, game: GameSpec, max_hold: int
               ) -> Callable[[np.ndarray], np.ndarray]:
    """The road follower, interrupted by what an evolved controller will try first.

    A model trained only on a car that always drives pays a standing car for the road it
    sees (teacher-forced on a real standing car, the road-follower M predicted +0.37 a step
    where the game gives -0.1). So half the episodes open standing still (no action, up to
    150 steps), and every 50..250 steps of following the car spends some steps in one mode:
    stop (15 steps of brake, then 25..75 with no action: a model that saw standing only with
    the brake on paid +0.16 a step for a standing car without it), coast (no gas), full lock
    at some gas, or full gas (10..60 steps each).
    """
    follow = road_follower(rng, game, max_hold)
    modes = ("stop", "coast", "lock", "full gas")
    none = np.zeros(3, np.float32)

    def segment() -> list[np.ndarray]:
        mode, n = modes[int(rng.integers(len(modes)))], int(rng.integers(10, 61))
        if mode == "stop":  # 15 steps of brake, then standing
            brake = np.array([0.0, 0.0, rng.uniform(0.5, 1.0)], np.float32)
            return [brake] * 15 + [none] * (n + 15)
        if mode == "coast":
            return [np.array([rng.uniform(-0.3, 0.3), 0.0, 0.0], np.float32)] * n
        if mode == "lock":
            return [np.array([rng.choice([-1.0, 1.0]), rng.uniform(0.1, 1.0), 0.0], np.float32)] * n
        return [np.array([0.0, 1.0, 0.0], np.float32)] * n

    def plan() -> Iterator[np.ndarray | None]:
        """The episode's steps: a fixed action, or None for "follow the road"."""
        if rng.random() < 0.5:  # open standing still, then follow
            yield from [none] * int(rng.integers(1, 151))
            yield from [None] * int(rng.integers(50, 251))
        while True:
            yield from segment()
            yield from [None] * int(rng.integers(50, 251))

    steps = plan()

    def act(screen: np.ndarray) -> np.ndarray:
        action = next(steps)
        return follow(screen) if action is None else action

    return act


def _random_policy(rng: np.random.Generator, game: GameSpec, max_hold: int
                   ) -> Callable[[Any], Any]:
    actions = random_held_actions(rng, game, max_hold)
    return lambda screen: next(actions)


POLICIES: dict[str, Callable[..., Callable[[Any], Any]]] = {
    "random": _random_policy,
    "road": road_follower,
    "road_modes": road_modes,
}
"""Collection policies by the name ``CollectConfig.policy`` takes: each is built per episode
from (rng, game, max_hold) and maps the real screen to an action."""

_GAMES = {"road": "CarRacing", "road_modes": "CarRacing"}
"""Policies that only make sense in one game (the rest work in any)."""


def check_policy(policy: str, game: str) -> None:
    """Raise a ValueError naming the fix if ``policy`` is unknown or not for ``game``."""
    if policy not in POLICIES:
        raise ValueError(f"Unknown collection policy {policy!r}; "
                         f"choose one of {sorted(POLICIES)}.")
    if _GAMES.get(policy, game) != game:
        raise ValueError(f"The {policy!r} policy is {_GAMES[policy]}'s; {game} "
                         "collects with policy='random'.")
