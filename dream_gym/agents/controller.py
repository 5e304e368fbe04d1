"""C: the linear controller of World Models, batched over a CMA-ES population."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dream_gym.checkpoint import CheckpointError, load_json, load_tensors, save_json, save_tensors
from dream_gym.games import controller_mapping, get_game

__all__ = ["LinearController", "HeldDecisions"]


class LinearController:
    """a = tanh(W x + b) on the model's features x (``[z, h]``, or ``[z, h, c]``), mapped to
    the game's actions by its :class:`~dream_gym.games.ControllerMapping` (World Models).

    ``params`` is (P, n_params): P controllers evaluated side by side. Each row of a feature
    batch names its controller in ``member``, so a whole CMA-ES population (with finished
    rollouts dropped from the batch) is served by one batched contraction.

    ``hold``: the controller decides every ``hold`` steps and repeats its action in between
    (an agent's frame skip; :class:`HeldDecisions` keeps the clocks). Saved with it, so the
    dream it was evolved in and the real game play it alike.
    """

    def __init__(self, game: str, in_dim: int, params: np.ndarray | torch.Tensor,
                 hold: int = 1) -> None:
        if int(hold) != hold or hold < 1:
            raise ValueError(f"hold must be a whole number of steps >= 1, got {hold}.")
        self.hold = int(hold)
        self.game = get_game(game)
        self.mapping = controller_mapping(game)
        self.in_dim, self.out_dim = in_dim, self.mapping.outputs
        p = params.detach().float().clone() if isinstance(params, torch.Tensor) \
            else torch.from_numpy(np.array(params, np.float32))  # a copy: Ray's are read-only
        p = p[None] if p.dim() == 1 else p
        if p.shape[1] != self.num_params(in_dim, self.out_dim):
            raise ValueError(
                f"Controller has {p.shape[1]} params; a {game} controller on {in_dim} features "
                f"needs {self.num_params(in_dim, self.out_dim)}. Was it trained for another model?"
            )
        self.W = p[:, : in_dim * self.out_dim].reshape(-1, self.out_dim, in_dim)
        self.b = p[:, in_dim * self.out_dim :]

    @staticmethod
    def num_params(in_dim: int, out_dim: int) -> int:
        return (in_dim + 1) * out_dim

    def to(self, device: torch.device) -> LinearController:
        self.W, self.b = self.W.to(device), self.b.to(device)
        return self

    def outputs(self, features: torch.Tensor, member: torch.Tensor | None = None) -> torch.Tensor:
        """tanh outputs (B, out) for features (B, in); ``member`` (B,) picks each row's
        controller (None: all rows use controller 0)."""
        if member is None:
            return torch.tanh(features @ self.W[0].T + self.b[0])
        y = torch.einsum("bi,boi->bo", features, self.W[member]) + self.b[member]
        return torch.tanh(y)

    def act(self, features: torch.Tensor, member: torch.Tensor | None = None) -> torch.Tensor:
        """Env actions (B, *action_shape) for features (B, in)."""
        a = torch.as_tensor(self.mapping.to_action(self.outputs(features, member)))
        return a.long() if self.game.discrete else a.float()

    def flat(self) -> torch.Tensor:
        """Controller 0's parameters as one vector, the layout ``params`` takes."""
        return torch.cat([self.W[0].flatten(), self.b[0]])

    def save(self, path_stem: str | Path, meta: dict) -> None:
        p = Path(path_stem)
        save_tensors(p.with_suffix(".safetensors"), {"params": self.flat()})
        save_json(p.with_suffix(".json"), {"game": self.game.name, "in_dim": self.in_dim,
                                           "hold": self.hold, **meta})

    @classmethod
    def load(cls, path_stem: str | Path) -> tuple[LinearController, dict]:
        p = Path(path_stem)
        meta = load_json(p.with_suffix(".json"))
        try:
            params = load_tensors(p.with_suffix(".safetensors"))["params"]
            return cls(meta["game"], int(meta["in_dim"]), params, meta.get("hold", 1)), meta
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"Controller {p} is malformed: {e}") from e


class HeldDecisions:
    """A batch of players that decide every ``hold`` steps, each on its own clock: a player
    takes its controller's fresh action on its first step and every ``hold`` steps after,
    and repeats its last one in between. Real games restart players at different times
    (:meth:`reset`); in a batched dream all start together and finished rows drop out."""

    def __init__(self, hold: int, n: int) -> None:
        self.hold = hold
        self.age = torch.zeros(n, dtype=torch.long)  # steps since each player's episode began
        self.last: torch.Tensor | None = None

    def __call__(self, actions: torch.Tensor, rows: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The actions players ``rows`` (ids) take: ``actions`` (their controller's fresh
        ones) where a decision is due, else their last."""
        if self.hold == 1:
            return actions
        rows = torch.as_tensor(rows, dtype=torch.long, device=actions.device)
        if self.last is None:
            self.age = self.age.to(actions.device)
            self.last = actions.new_zeros((len(self.age), *actions.shape[1:]))
        due = self.age[rows] % self.hold == 0
        self.last[rows[due]] = actions[due]
        self.age[rows] += 1
        return self.last[rows]

    def reset(self, rows: torch.Tensor | np.ndarray) -> None:
        """Players ``rows`` start a new episode: they decide on their next step."""
        self.age[torch.as_tensor(rows, dtype=torch.long, device=self.age.device)] = 0
