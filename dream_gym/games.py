"""The real games a dream can stand in for.

A :class:`GameSpec` is everything the library must know about a real game that is not
learned: how to make it, how its frames are shrunk to the model's square input, how its
actions (discrete or continuous) are fed to a model and drawn at random, and which game
variables sit beside the screen.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from PIL import Image

__all__ = ["GameSpec", "GAMES", "get_game", "resize_frame", "carracing_grass_share",
           "carracing_speed"]

FRAME_SIZE = 64
_SPACES: dict[str, tuple[gym.Space, gym.Space]] = {}


def resize_frame(frame: np.ndarray, size: int = FRAME_SIZE) -> np.ndarray:
    """Shrink an HxWx3 uint8 frame to size x size x 3 (bilinear, whole frame, as in seed 003)."""
    return np.array(Image.fromarray(frame).resize((size, size), Image.BILINEAR))


def _make_own(env_id: str, **kwargs: Any) -> gym.Env:
    import dream_gym  # noqa: F401  (registers the real worlds dream-gym ships)

    return gym.make(env_id, **kwargs)


def _make_vizdoom(env_id: str, **kwargs: Any) -> gym.Env:
    from vizdoom import gymnasium_wrapper  # noqa: F401  (registers the Vizdoom ids)

    # ViZDoom keeps its config in ./_vizdoom/ and creates it when missing; two games starting
    # at once in a fresh folder (worker processes) race, and the loser dies with "Failed to
    # create ./_vizdoom/ directory: File exists". Creating it here first is idempotent.
    os.makedirs("_vizdoom", exist_ok=True)
    return gym.make(env_id, **kwargs)


@dataclass(frozen=True)
class GameSpec:
    """A real game: its Gymnasium id and how a world model sees it.

    Attributes:
        name: short name used by the zoo and the ``Dream-<name>-v0`` ids.
        env_id: the real game's Gymnasium id.
        action_dim: Discrete games: the number of actions (the model sees a one-hot);
            continuous games: the size of the Box action.
        screen_key: key of the pixels in a Dict observation, or None for a Box observation.
        max_episode_steps: the real game's truncation limit (None: the game has none).
        make_fn: builds the real env.
        discrete: whether the action space is Discrete (else a Box of ``action_dim``).
        controller_outputs: outputs of the paper's linear controller for this game.
        controller_action: maps the controller's tanh outputs (B, outputs) to env actions.
        random_action: one random action of a continuous game (the data-collection policy
            holds it for a few steps); discrete games draw uniformly.
        crop_rows: rows of the screen the model sees (CarRacing: above the dashboard).
        frame_size: side of the model's square frames (64 for the World Models games).
        fps: frames per second of the real game (videos play at its speed).
        off_track: (N, S, S, 3) model frames -> (N,) bool, the player has left the track;
            labels real frames for the dream's off-track probe (dream_gym.training.off_track).
        off_track_reward: the game's reward per step for a player stuck off the track.
        dashboard: screen (H, W, 3) -> (G,) float32, game variables read off the part of a
            pixels-only game's screen that the model's frames leave out (CarRacing's speed bar).
    """

    name: str
    env_id: str
    action_dim: int
    screen_key: str | None
    max_episode_steps: int | None
    make_fn: Callable[..., gym.Env] = field(repr=False)
    discrete: bool = True
    controller_outputs: int = 1
    controller_action: Callable[[Any], Any] | None = field(repr=False, default=None)
    random_action: Callable[[np.random.Generator], np.ndarray] | None = \
        field(repr=False, default=None)
    crop_rows: tuple[int, int] | None = None
    frame_size: int = FRAME_SIZE
    fps: int = 30
    off_track: Callable[[np.ndarray], np.ndarray] | None = field(repr=False, default=None)
    off_track_reward: float = 0.0
    dashboard: Callable[[np.ndarray], np.ndarray] | None = field(repr=False, default=None)

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
        """The game variables beside the screen or read off its dashboard (float32; empty
        for a pixels-only game without one)."""
        if isinstance(obs, dict):
            return np.asarray(obs["gamevariables"], np.float32)
        if self.dashboard is not None:
            return self.dashboard(self.screen(obs))
        return np.zeros(0, np.float32)

    def frame(self, obs: Any) -> np.ndarray:
        """The real observation as the model's square uint8 input."""
        return self.screen_frame(self.screen(obs))

    def screen_frame(self, screen: np.ndarray) -> np.ndarray:
        """A real screen (H, W, 3) as the model's square uint8 input."""
        if self.crop_rows is not None:
            screen = screen[self.crop_rows[0] : self.crop_rows[1]]
        if screen.shape[:2] == (self.frame_size, self.frame_size):
            return np.asarray(screen, np.uint8)
        return resize_frame(screen, self.frame_size)

    # --- actions ----------------------------------------------------------------------------
    @property
    def action_dtype(self) -> type:
        return np.int64 if self.discrete else np.float32

    @property
    def action_shape(self) -> tuple[int, ...]:
        """Shape of one action as stored and stepped: () discrete, (action_dim,) continuous."""
        return () if self.discrete else (self.action_dim,)

    def action_features(self, actions: Any) -> Any:
        """Float32 model inputs (..., action_dim) of a batch of actions (NumPy or torch):
        a one-hot of discrete actions, continuous actions as they are."""
        if isinstance(actions, torch.Tensor):
            if self.discrete:
                return torch.nn.functional.one_hot(actions.long(), self.action_dim).float()
            return actions.float()
        if self.discrete:
            return (np.asarray(actions)[..., None] == np.arange(self.action_dim)).astype(np.float32)
        return np.asarray(actions, np.float32)

    def sample_actions(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` random actions (n, *action_shape) of the data-collection policy."""
        if self.discrete:
            return rng.integers(self.action_dim, size=n)
        return np.asarray([self.random_action(rng) for _ in range(n)],
                          np.float32).reshape(n, self.action_dim)

    def no_actions(self, n: int) -> torch.Tensor:
        """The empty (n, 0, *action_shape) action history of a one-frame context."""
        return torch.zeros((n, 0, *self.action_shape))

    def env_action(self, action: Any) -> Any:
        """One stored action as the real env's ``step`` takes it."""
        return int(action) if self.discrete else np.asarray(action, np.float32)


def _takecover_action(a):
    """Seed 003: one tanh output thresholded at +-1/3 into right (1) / no-op (0) / left (2).

    Works on NumPy arrays and torch tensors alike (the dream steps in torch)."""
    a = a[..., 0]
    return (a > 1 / 3) * 1 + (a < -1 / 3) * 2


def _carracing_action(a):
    """Seed 003: three tanh outputs -> steer a0, gas (a1 + 1) / 2, brake clip(a2, 0, 1)."""
    stack = torch.stack if isinstance(a, torch.Tensor) else np.stack
    return stack([a[..., 0], (a[..., 1] + 1) / 2, a[..., 2].clip(0, 1)], -1)


def _carracing_random_action(rng: np.random.Generator) -> np.ndarray:
    """Steer anywhere, some gas, brake now and then: a uniform brake stops the car so often
    that random play would never leave the start."""
    brake = rng.uniform(0, 1) if rng.random() < 0.1 else 0.0
    return np.array([rng.uniform(-1, 1), rng.uniform(0, 1), brake], np.float32)


def carracing_grass_share(frames: np.ndarray) -> np.ndarray:
    """Share of green (grass) pixels in rows 46-60, columns 26-38 of 64x64 CarRacing frames:
    the patch around the car."""
    p = frames[:, 46:60, 26:38].astype(np.float32)
    return ((p[..., 1] - p[..., 0]) > 50).mean((1, 2))


def carracing_speed(screen: np.ndarray) -> np.ndarray:
    """The car's speed (Box2D units, as CarRacing's ``true_speed``) read off the white speed
    bar of a 96x96 screen's dashboard, which the model's frames crop away: the bar's height
    is 0.02 x speed of a 1/40-window unit. Calibrated on 2,189 real frames at speeds 0-84:
    mean absolute error 0.6, worst 1.7 (tests/test_data.py checks it against Box2D)."""
    bar = np.asarray(screen[84:95, 12:15], np.float32).min(-1).sum() / (255 * 3)
    return np.array([max(0.0, 25.5 * bar - 4.24)], np.float32)


def _carracing_off_track(frames: np.ndarray) -> np.ndarray:
    """Off the track: more than half of the patch around the car is grass."""
    return carracing_grass_share(frames) > 0.5


GAMES: dict[str, GameSpec] = {
    "TakeCover": GameSpec(
        name="TakeCover",
        env_id="VizdoomTakeCover-v1",
        action_dim=3,  # 0 no-op, 1 MOVE_RIGHT, 2 MOVE_LEFT (ViZDoom's button map)
        screen_key="screen",
        max_episode_steps=None,  # the scenario has no timeout: it ends when the player dies
        make_fn=_make_vizdoom,
        controller_outputs=1,
        controller_action=_takecover_action,
        fps=35,  # Doom's tic rate
    ),
    "CarRacing": GameSpec(
        name="CarRacing",
        env_id="CarRacing-v3",
        action_dim=3,  # steer [-1, 1], gas [0, 1], brake [0, 1]
        screen_key=None,
        max_episode_steps=1000,  # CarRacing-v3's TimeLimit
        make_fn=gym.make,
        discrete=False,
        controller_outputs=3,
        controller_action=_carracing_action,
        random_action=_carracing_random_action,
        crop_rows=(0, 84),  # seed 003's code drops the 12-row dashboard before resizing
        fps=50,  # CarRacing-v3's render_fps
        off_track=_carracing_off_track,
        off_track_reward=-0.1,  # the per-frame cost; no tile is ever visited on the grass
        dashboard=carracing_speed,  # V never sees it; M can learn it as a game variable
    ),
    "ImageNav": GameSpec(
        name="ImageNav",
        env_id="ImageNav-v0",
        action_dim=5,  # stay, up, down, left, right
        screen_key=None,
        max_episode_steps=512,  # 256 steps to memorise, 256 to predict (seed 002's test)
        make_fn=_make_own,
        frame_size=8,  # the model sees the 8x8 crop as it is
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
