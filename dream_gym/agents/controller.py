"""C: the linear controller of World Models, batched over a CMA-ES population."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dream_gym.checkpoint import CheckpointError, load_json, load_tensors, save_json, save_tensors
from dream_gym.games import controller_mapping, get_game

__all__ = ["LinearController"]


class LinearController:
    """a = tanh(W x + b) on the model's features x (``[z, h]``, or ``[z, h, c]``), mapped to
    the game's actions by its :class:`~dream_gym.games.ControllerMapping` (World Models).

    ``params`` is (P, n_params): P controllers evaluated side by side. Each row of a feature
    batch names its controller in ``member``, so a whole CMA-ES population (with finished
    rollouts dropped from the batch) is served by one batched contraction.
    """

    def __init__(self, game: str, in_dim: int, params: np.ndarray | torch.Tensor) -> None:
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
        save_json(p.with_suffix(".json"), {"game": self.game.name, "in_dim": self.in_dim, **meta})

    @classmethod
    def load(cls, path_stem: str | Path) -> tuple[LinearController, dict]:
        p = Path(path_stem)
        meta = load_json(p.with_suffix(".json"))
        try:
            params = load_tensors(p.with_suffix(".safetensors"))["params"]
            return cls(meta["game"], int(meta["in_dim"]), params), meta
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"Controller {p} is malformed: {e}") from e
