"""What dream-gym must know about a real game that no model learns: a :class:`GameSpec`.

A spec holds facts about the game only (its id, its spaces, how its screen becomes the
model's square frame, its frame rate). What only some recipes need, the paper's controller
mapping, data-collection policies and the keyboard map of ``dream-gym play``, is registered
beside it (:mod:`dream_gym.games.registry`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from PIL import Image

__all__ = ["GameSpec", "FRAME_SIZE", "resize_frame"]

FRAME_SIZE = 64
"""Side of the World Models papers' square frames."""


def resize_frame(frame: np.ndarray, size: int = FRAME_SIZE) -> np.ndarray:
    """Shrink an HxWx3 uint8 frame to size x size x 3 (bilinear, whole frame, as World
    Models' code does)."""
    return np.array(Image.fromarray(frame).resize((size, size), Image.BILINEAR))


@dataclass(frozen=True)
class GameSpec:
    """A real game: its Gymnasium id, its spaces and how a world model sees it.

    Attributes:
        name: short name used by the zoo and the ``Dream-<name>-v0`` ids.
        env_id: the real game's Gymnasium id.
        observation_space: the real game's, exactly (a dream has the same).
        action_space: the real game's: ``Discrete`` (the model sees a one-hot) or ``Box``.
        make_fn: builds the real env from ``(env_id, **kwargs)``.
        screen_key: key of the pixels in a Dict observation, or None for a Box observation.
        max_episode_steps: the real game's truncation limit (None: the game has none).
        reward_threshold: the return at which the game counts as solved, if it has one.
        crop_rows: rows of the screen the model sees (CarRacing: above the dashboard).
        frame_size: side of the model's square frames (64 for the World Models games).
        fps: frames per second of the real game (videos play at its speed).
        random_action: one random action of a Box game for data collection (None: uniform
            over the action space); Discrete games draw uniformly.
        off_track: (N, S, S, 3) model frames -> (N,) bool, the player has left the track;
            labels real frames for a dream's off-track probe (dream_gym.training.off_track).
        off_track_reward: the game's reward per step for a player stuck off the track.
        dashboard: screen (H, W, 3) -> (G,) float32, game variables read off the part of a
            pixels-only game's screen that the model's frames leave out (a speed bar).
    """

    name: str
    env_id: str
    observation_space: gym.Space
    action_space: gym.Space
    make_fn: Callable[..., gym.Env] = field(repr=False, default=gym.make)
    screen_key: str | None = None
    max_episode_steps: int | None = None
    reward_threshold: float | None = None
    crop_rows: tuple[int, int] | None = None
    frame_size: int = FRAME_SIZE
    fps: int = 30
    random_action: Callable[[np.random.Generator], np.ndarray] | None = \
        field(repr=False, default=None)
    off_track: Callable[[np.ndarray], np.ndarray] | None = field(repr=False, default=None)
    off_track_reward: float = 0.0
    dashboard: Callable[[np.ndarray], np.ndarray] | None = field(repr=False, default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.action_space, gym.spaces.Discrete | gym.spaces.Box) or (
                isinstance(self.action_space, gym.spaces.Box)
                and len(self.action_space.shape) != 1):
            raise ValueError(f"{self.name}: dream-gym handles Discrete and 1-D Box action "
                             f"spaces, got {self.action_space}.")
        screen = self.screen_space
        if not (isinstance(screen, gym.spaces.Box) and len(screen.shape) == 3
                and screen.shape[-1] == 3 and screen.dtype == np.uint8):
            raise ValueError(f"{self.name}: the screen must be a uint8 (H, W, 3) Box, got "
                             f"{screen} (screen_key={self.screen_key!r}).")

    # --- as stored in a model's config.json -----------------------------------------------
    def facts(self) -> dict[str, Any]:
        """The spec's facts as JSON (everything but its functions), for a model's config:
        a model folder then states the interface of the game it simulates."""
        from dream_gym.spaces import space_to_json

        return {"name": self.name, "env_id": self.env_id,
                "observation_space": space_to_json(self.observation_space),
                "action_space": space_to_json(self.action_space),
                "screen_key": self.screen_key, "max_episode_steps": self.max_episode_steps,
                "reward_threshold": self.reward_threshold,
                "crop_rows": list(self.crop_rows) if self.crop_rows else None,
                "frame_size": self.frame_size, "fps": self.fps}

    @classmethod
    def from_facts(cls, facts: dict[str, Any], **functions: Any) -> GameSpec:
        """The spec :meth:`facts` described (its functions: the defaults, or ``functions``)."""
        from dream_gym.spaces import space_from_json

        d = dict(facts)
        d["observation_space"] = space_from_json(d["observation_space"])
        d["action_space"] = space_from_json(d["action_space"])
        d["crop_rows"] = tuple(d["crop_rows"]) if d.get("crop_rows") else None
        return cls(**d, **functions)

    def make(self, **kwargs: Any) -> gym.Env:
        """The real game."""
        return self.make_fn(self.env_id, **kwargs)

    def real_spaces(self) -> tuple[gym.Space, gym.Space]:
        """The real game's (observation_space, action_space), without starting it."""
        return self.observation_space, self.action_space

    @property
    def screen_space(self) -> gym.Space:
        if self.screen_key is None:
            return self.observation_space
        if not isinstance(self.observation_space, gym.spaces.Dict) \
                or self.screen_key not in self.observation_space.spaces:
            raise ValueError(f"{self.name}: screen_key {self.screen_key!r} is not a key of "
                             f"{self.observation_space}.")
        return self.observation_space[self.screen_key]

    def screen(self, obs: Any) -> np.ndarray:
        """The pixel part of a real observation."""
        return obs[self.screen_key] if self.screen_key is not None else obs

    def gamevars(self, obs: Any) -> np.ndarray:
        """The game variables beside the screen or read off its dashboard (float32; empty
        for a pixels-only game without one)."""
        if isinstance(obs, dict):
            return np.concatenate([np.asarray(v, np.float32).ravel()
                                   for k, v in obs.items() if k != self.screen_key])
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
    def discrete(self) -> bool:
        return isinstance(self.action_space, gym.spaces.Discrete)

    @property
    def action_dim(self) -> int:
        """Discrete: the number of actions (the model sees a one-hot); Box: its size."""
        return int(self.action_space.n) if self.discrete else int(self.action_space.shape[0])

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
        start = int(self.action_space.start) if self.discrete else 0
        if isinstance(actions, torch.Tensor):
            if self.discrete:
                return torch.nn.functional.one_hot(actions.long() - start, self.action_dim).float()
            return actions.float()
        if self.discrete:
            return ((np.asarray(actions)[..., None] - start)
                    == np.arange(self.action_dim)).astype(np.float32)
        return np.asarray(actions, np.float32)

    def sample_actions(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` random actions (n, *action_shape) of the data-collection policy."""
        if self.discrete:
            return rng.integers(self.action_dim, size=n) + int(self.action_space.start)
        draw = self.random_action or self._uniform_action
        return np.asarray([draw(rng) for _ in range(n)], np.float32).reshape(n, self.action_dim)

    def _uniform_action(self, rng: np.random.Generator) -> np.ndarray:
        space = self.action_space
        low = np.where(np.isfinite(space.low), space.low, -1.0)
        high = np.where(np.isfinite(space.high), space.high, 1.0)
        return rng.uniform(low, high).astype(np.float32)

    def no_actions(self, n: int) -> torch.Tensor:
        """The empty (n, 0, *action_shape) action history of a one-frame context."""
        return torch.zeros((n, 0, *self.action_shape))

    def env_action(self, action: Any) -> Any:
        """One stored action as the real env's ``step`` takes it."""
        return int(action) if self.discrete else np.asarray(action, np.float32)
