"""Image navigation (GTM-SM's partially observed world): an 8x8 crop walking a picture."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from dream_gym.games.registry import Keymap, register_game
from dream_gym.games.spec import GameSpec

__all__ = ["IMAGENAV"]


def _make_own(env_id: str, **kwargs: Any) -> gym.Env:
    import dream_gym  # noqa: F401  (registers the real worlds dream-gym ships)

    return gym.make(env_id, **kwargs)


def _keys(held, k) -> int:
    for action, key in ((1, k.K_UP), (2, k.K_DOWN), (3, k.K_LEFT), (4, k.K_RIGHT)):
        if held[key]:
            return action
    return 0


IMAGENAV = register_game(
    GameSpec(
        name="ImageNav",
        env_id="ImageNav-v0",
        observation_space=gym.spaces.Box(0, 255, (8, 8, 3), np.uint8),
        action_space=gym.spaces.Discrete(5),  # stay, up, down, left, right
        make_fn=_make_own,
        max_episode_steps=512,  # 256 steps to memorise, 256 to predict (GTM-SM's test)
        frame_size=8,  # the model sees the 8x8 crop as it is
    ),
    keymap=Keymap(_keys, "arrows: walk one cell"),
)
