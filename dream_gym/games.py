"""The real games a dream can stand in for.

A :class:`GameSpec` is everything the library must know about a real game that is not
learned: how to make it, how its frames are shrunk to the model's 64x64 input, how its
actions are fed to a model, and which game variables sit beside the screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from PIL import Image

__all__ = ["GameSpec", "GAMES", "get_game", "resize_frame"]

FRAME_SIZE = 64
_SPACES: dict[str, tuple[gym.Space, gym.Space]] = {}


def resize_frame(frame: np.ndarray, size: int = FRAME_SIZE) -> np.ndarray:
    """Shrink an HxWx3 uint8 frame to size x size x 3 (bilinear, whole frame, as in seed 003)."""
    return np.array(Image.fromarray(frame).resize((size, size), Image.BILINEAR))


def _make_vizdoom(env_id: str, **kwargs: Any) -> gym.Env:
    from vizdoom import gymnasium_wrapper  # noqa: F401  (registers the Vizdoom ids)

    return gym.make(env_id, **kwargs)


@dataclass(frozen=True)
class GameSpec:
    """A real game: its Gymnasium id and how a world model sees it.

    Attributes:
        name: short name used by the zoo and the ``Dream-<name>-v0`` ids.
        env_id: the real game's Gymnasium id.
        num_actions: size of the Discrete action space (the model sees a one-hot).
        screen_key: key of the pixels in a Dict observation, or None for a Box observation.
        max_episode_steps: the real game's truncation limit (None: the game has none).
        make_fn: builds the real env.
        controller_outputs: outputs of the paper's linear controller for this game.
        controller_action: maps the controller's tanh outputs (B, outputs) to env actions.
    """

    name: str
    env_id: str
    num_actions: int
    screen_key: str | None
    max_episode_steps: int | None
    make_fn: Callable[..., gym.Env] = field(repr=False)
    controller_outputs: int = 1
    controller_action: Callable[[Any], Any] | None = field(repr=False, default=None)

    def make(self, **kwargs: Any) -> gym.Env:
        return self.make_fn(self.env_id, **kwargs)

    def real_spaces(self) -> tuple[gym.Space, gym.Space]:
        """The real game's (observation_space, action_space), read once from the game."""
        if self.name not in _SPACES:
            env = self.make()
            _SPACES[self.name] = (env.observation_space, env.action_space)
            env.close()
        return _SPACES[self.name]

    def screen(self, obs: Any) -> np.ndarray:
        """The pixel part of a real observation."""
        return obs[self.screen_key] if self.screen_key is not None else obs

    def gamevars(self, obs: Any) -> np.ndarray:
        """The game variables beside the screen (float32, empty for a pixels-only game)."""
        return np.asarray(obs["gamevariables"], np.float32) if isinstance(obs, dict) \
            else np.zeros(0, np.float32)

    def frame(self, obs: Any) -> np.ndarray:
        """The real observation as the model's 64x64x3 uint8 input."""
        return resize_frame(self.screen(obs))

    def action_features(self, actions: np.ndarray) -> np.ndarray:
        """One-hot float32 features of a batch of discrete actions."""
        return np.eye(self.num_actions, dtype=np.float32)[np.asarray(actions, dtype=np.int64)]


def _takecover_action(a):
    """Seed 003: one tanh output thresholded at +-1/3 into right (1) / no-op (0) / left (2).

    Works on NumPy arrays and torch tensors alike (the dream steps in torch)."""
    a = a[..., 0]
    return (a > 1 / 3) * 1 + (a < -1 / 3) * 2


GAMES: dict[str, GameSpec] = {
    "TakeCover": GameSpec(
        name="TakeCover",
        env_id="VizdoomTakeCover-v1",
        num_actions=3,  # 0 no-op, 1 MOVE_RIGHT, 2 MOVE_LEFT (ViZDoom's button map)
        screen_key="screen",
        max_episode_steps=None,  # the scenario has no timeout: it ends when the player dies
        make_fn=_make_vizdoom,
        controller_outputs=1,
        controller_action=_takecover_action,
    ),
}


def get_game(name: str) -> GameSpec:
    try:
        return GAMES[name]
    except KeyError:
        raise ValueError(
            f"Unknown game {name!r}; dream-gym knows {sorted(GAMES)}. "
            "Pass one of these names or add a GameSpec to dream_gym.games.GAMES."
        ) from None
