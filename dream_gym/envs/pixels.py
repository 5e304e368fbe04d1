"""Wrappers for agents that see pixels, in the dream and in the real game alike.

A dream's pixels are the model's 64x64 decodings scaled up to the real screen: blurrier
than the game's own frames, and without the details V leaves out. A pixel agent trained in
the dream therefore meets unfamiliar images in the game. :class:`ModelView` closes that gap
by showing the agent, in the real game, the real frame as the model sees it (encoded by V,
decoded back). :class:`ScreenObservation` keeps only the screen at the model's resolution,
which loses nothing the dream has and makes a CNN policy cheap on a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.wrappers import TransformObservation

from dream_gym.contract import WorldModel
from dream_gym.envs.upscale import upscale
from dream_gym.games import FRAME_SIZE, resize_frame

__all__ = ["ScreenObservation", "ModelView"]


def _screen_key(space: gym.Space) -> str | None:
    if isinstance(space, gym.spaces.Dict):
        if "screen" not in space.spaces:
            raise ValueError(f"No 'screen' in the observation space {space}.")
        return "screen"
    if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 3):
        raise ValueError(f"Expected an image (H, W, 3) observation space, got {space}.")
    return None


class ScreenObservation(TransformObservation, gym.utils.RecordConstructorArgs):
    """Observation = the screen alone, resized to ``size`` x ``size`` x 3 uint8.

    Works on a real game, a dream (``obs_type="pixels"``) and, through Gymnasium's
    ``VectorizeTransformObservation``, a dream vector env.
    """

    def __init__(self, env: gym.Env, size: int = FRAME_SIZE) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, size=size)
        key = _screen_key(env.observation_space)

        def func(obs: Any) -> np.ndarray:
            return resize_frame(obs[key] if key else obs, size)

        TransformObservation.__init__(
            self, env, func, gym.spaces.Box(0, 255, (size, size, 3), np.uint8))


class ModelView(TransformObservation, gym.utils.RecordConstructorArgs):
    """The real game's screen replaced by the model's view of it: V's reconstruction of the
    64x64 frame, scaled back to the screen size. The observation space does not change, so
    an agent trained on dream pixels runs on it unchanged.

    Args:
        env: the real game.
        model: a loaded world model, or a zoo name / folder.
    """

    def __init__(self, env: gym.Env, model: WorldModel | str | Path) -> None:
        from dream_gym.envs.core import load_dream

        gym.utils.RecordConstructorArgs.__init__(self, model=model)
        model = load_dream(model)
        key = _screen_key(env.observation_space)
        screen_space = env.observation_space[key] if key else env.observation_space
        hw = tuple(screen_space.shape[:2])
        game = model.spec
        no_actions = game.no_actions(1)

        @torch.no_grad()
        def func(obs: Any) -> Any:
            screen = obs[key] if key else obs
            frame = torch.from_numpy(game.screen_frame(screen))[None]
            state = model.initial_state(frame[:, None], no_actions)
            view = upscale(model.render(state), hw, game.crop_rows)[0]
            return {**obs, key: view} if key else view

        TransformObservation.__init__(self, env, func, env.observation_space)
