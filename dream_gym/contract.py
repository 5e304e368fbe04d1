"""The batched world-model contract every model family implements.

Environments, the CMA-ES trainer and the real-game latent wrapper are written once against
:class:`WorldModel`; none of them knows which family is behind it.

A model's recurrent state is a :data:`State`: a dict of batch-first tensors. Keeping it a
plain dict lets generic code select, merge and reset rows (for autoreset in a vector env)
without knowing what the tensors mean.

A dream's randomness is part of its state: :func:`seed_dreams` adds a ``key`` and a step
counter ``t`` per row, and :meth:`WorldModel.imagine` draws all its noise from them through
:mod:`dream_gym.keyed_random`. A dream's trajectory is then a function of its seed and
actions alone, whatever batch it runs in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

from dream_gym.keyed_random import new_keys

if TYPE_CHECKING:
    from dream_gym.games import GameSpec

__all__ = ["State", "Transition", "WorldModel", "select_rows", "merge_rows", "seed_dreams",
           "model_config"]

State = dict[str, torch.Tensor]


@dataclass
class Transition:
    """What one imagined step returns, batch-first."""

    reward: torch.Tensor  # (B,) float32
    done: torch.Tensor  # (B,) bool, sampled
    gamevars: torch.Tensor  # (B, G) float32, the real game's side variables (e.g. HEALTH)


@runtime_checkable
class WorldModel(Protocol):
    """A learned simulator of one real game, batched over B dreams.

    Frames are uint8 (B, T, S, S, 3) at the game's ``frame_size`` S (64 for the World
    Models games, 8 for ImageNav's crops); actions are the real game's, batched: int64 (B, T)
    indices of a Discrete space, or float32 (B, T, A) of a Box (see
    :class:`~dream_gym.games.GameSpec`).
    """

    game: str
    """Name of the real game (:func:`dream_gym.games.get_game`)."""
    spec: GameSpec
    """The real game's facts: its spaces, screen and actions."""
    feature_dim: int
    """Size of the latent observation returned by :meth:`features`."""
    device: torch.device

    def initial_state(self, frames: torch.Tensor, actions: torch.Tensor) -> State:
        """Condition on a real context: T >= 1 frames and the T - 1 actions between them."""
        ...

    def imagine(self, state: State, actions: torch.Tensor, temperature: float
                ) -> tuple[State, Transition]:
        """Take one action per dream and sample the next state, reward and done, with the
        noise of each row drawn from its ``key`` at step ``t`` (see :func:`seed_dreams`);
        the returned state carries ``t + 1``."""
        ...

    def observe(self, state: State, actions: torch.Tensor, frames: torch.Tensor) -> State:
        """Take one action per env but condition on the real next frame (B, S, S, 3)."""
        ...

    def features(self, state: State) -> torch.Tensor:
        """The latent observation (B, feature_dim) float32 an agent sees: a new tensor,
        which the engine hands out as it is (no view of the state)."""
        ...

    def render(self, state: State) -> torch.Tensor:
        """The current dream frame, uint8 (B, S, S, 3)."""
        ...

    def save(self, model_dir: str | Path) -> None:
        """Write the weights (safetensors) and ``config.json`` (:func:`model_config` plus
        what :meth:`from_config` needs) into ``model_dir``, each file atomically."""
        ...

    @classmethod
    def from_config(cls, model_dir: str | Path, config: dict[str, Any],
                    device: str | torch.device = "cpu") -> WorldModel:
        """The model :meth:`save` wrote, from its folder and parsed ``config.json``; a
        missing, corrupted or non-finite file is a :class:`~dream_gym.checkpoint.
        CheckpointError`."""
        ...


def model_config(family: str, spec: GameSpec, **fields: Any) -> dict[str, Any]:
    """The part of ``config.json`` every model folder has: its family (which class loads
    it), its game and the game's facts (spaces included: a dream is made without starting
    the real game), then the family's own ``fields``."""
    return {"family": family, "game": spec.name, "game_spec": spec.facts(), **fields}


def seed_dreams(state: State, seeds: torch.Tensor) -> State:
    """Give each row of ``state`` its own random stream, from integer ``seeds`` (B,)."""
    seeds = torch.as_tensor(seeds, dtype=torch.long)
    device = next(iter(state.values())).device
    return {**state, "key": new_keys(seeds).to(device),
            "t": torch.zeros(len(seeds), dtype=torch.long, device=device)}


def select_rows(state: State, index: torch.Tensor) -> State:
    return {k: v[index] for k, v in state.items()}


def merge_rows(state: State, fresh: State, mask: torch.Tensor) -> State:
    """Rows where ``mask`` is True come from ``fresh``, the others from ``state``."""
    return {k: torch.where(mask.view(-1, *([1] * (v.dim() - 1))), fresh[k], v)
            for k, v in state.items()}
