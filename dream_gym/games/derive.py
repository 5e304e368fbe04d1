"""A :class:`GameSpec` derived from any pixel Gymnasium env: the facts come from its spaces.

``dream-gym build ENV_ID`` starts here. Everything is checked before any data is collected,
and an env that cannot be dreamed gets an error that says why and what would do instead.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from dream_gym.games.spec import GameSpec

__all__ = ["game_from_env", "game_name", "make_env_id", "NotDreamable"]

# id prefixes whose envs exist once their package is imported (gymnasium >= 1.0)
_PACKAGES = {"ALE/": "ale_py", "MiniGrid-": "minigrid", "BabyAI-": "minigrid"}


class NotDreamable(ValueError):
    """The env cannot become a dream; the message says why and what would do instead."""


def make_env_id(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make`` that first imports the package registering the id's namespace
    (``ALE/Pong-v5`` needs ``ale_py``); ``module:Id`` works as in ``gym.make``."""
    module = next((m for prefix, m in _PACKAGES.items() if env_id.startswith(prefix)), None)
    if module is not None:
        try:
            gym.register_envs(importlib.import_module(module))
        except ImportError:
            raise NotDreamable(f"{env_id} needs the package {module!r}: pip install "
                               f"{module.replace('_', '-')}") from None
    return gym.make(env_id, **kwargs)


def game_name(env_id: str) -> str:
    """``ALE/Pong-v5`` -> ``Pong``, ``MiniGrid-Empty-5x5-v0`` -> ``MiniGridEmpty5x5``: the
    ``<Name>`` of ``Dream-<Name>-v0``."""
    base = env_id.split(":")[-1].split("/")[-1]
    base = re.sub(r"-v\d+$", "", base)
    return re.sub(r"[^0-9A-Za-z]", "", base) or "Game"


def _is_screen(space: gym.Space) -> bool:
    return (isinstance(space, gym.spaces.Box) and space.dtype == np.uint8
            and len(space.shape) == 3 and space.shape[-1] == 3)


def _screen_key(space: gym.Space, what: str) -> str | None:
    """None for an (H, W, 3) uint8 Box, the key of the one such entry of a Dict."""
    if _is_screen(space):
        return None
    if isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 2:
        raise NotDreamable(
            f"{what}'s observation is a grayscale (H, W) image {space}; dream-gym models RGB "
            "screens: make it (H, W, 3), e.g. with a wrapper that repeats the channel, and "
            "pass the env constructor to dream_gym.build.build().")
    if isinstance(space, gym.spaces.Dict):
        keys = [k for k, s in space.spaces.items() if _is_screen(s)]
        others = [k for k, s in space.spaces.items() if k not in keys
                  and not (isinstance(s, gym.spaces.Box) and np.issubdtype(s.dtype, np.number))]
        if len(keys) == 1 and not others:
            return keys[0]
        if len(keys) > 1:
            raise NotDreamable(f"{what}'s Dict observation has several images {keys}: keep "
                               "one (a FilterObservation wrapper) and pass the constructor.")
        if others:
            raise NotDreamable(f"{what}'s Dict observation has entries that are neither an "
                               f"image nor a numeric Box ({others}), which a model cannot predict; "
                               "filter them out (FilterObservation) and pass the constructor.")
    raise NotDreamable(
        f"{what} has no image observation to dream ({space}). dream-gym learns from pixels: "
        "a uint8 (H, W, 3) Box, or a Dict with one such entry. Render it to pixels first, e.g. "
        "gymnasium.wrappers.AddRenderObservation(gym.make(id, render_mode='rgb_array'), "
        "render_only=True), and pass that constructor to dream_gym.build.build().")


def _check_actions(space: gym.Space, what: str) -> None:
    if isinstance(space, gym.spaces.Discrete):
        return
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return
    raise NotDreamable(
        f"{what}'s action space {space} is not one dream-gym models yet: it takes Discrete and "
        "1-D Box actions (a MultiBinary or MultiDiscrete game: flatten it to Discrete with an "
        "ActionWrapper and pass the constructor).")


def game_from_env(env: str | Callable[[], gym.Env], name: str | None = None,
                  frame_size: int = 64) -> GameSpec:
    """The :class:`GameSpec` of a Gymnasium id, or of an env constructor (wrappers
    included; then ``name`` is required), derived from one instance's spaces.

    Raises:
        NotDreamable: the id does not exist, or the env has no RGB image observation, or
            its actions are neither Discrete nor a 1-D Box.
    """
    if isinstance(env, str):
        what, env_id = env, env
        try:
            instance = make_env_id(env)
        except gym.error.Error as e:
            raise NotDreamable(f"No Gymnasium env {env!r}: {e} (ids of other packages: "
                               "'package:Id', as gymnasium.make takes them).") from None
        make_fn: Callable[..., gym.Env] = make_env_id
    else:
        if name is None:
            raise ValueError("An env constructor needs a name (the <Name> of Dream-<Name>-v0).")
        what, env_id = f"the env of {getattr(env, '__name__', env)!r}", name
        instance = env()

        def make_fn(_env_id: str, **kwargs: Any) -> gym.Env:
            return env(**kwargs)
    try:
        obs_space, act_space = instance.observation_space, instance.action_space
        key = _screen_key(obs_space, what)
        _check_actions(act_space, what)
        spec = instance.spec
        fps = int(instance.metadata.get("render_fps") or 30)
    finally:
        instance.close()
    return GameSpec(
        name=name or game_name(env_id), env_id=env_id, observation_space=obs_space,
        action_space=act_space, make_fn=make_fn, screen_key=key,
        max_episode_steps=spec.max_episode_steps if spec is not None else None,
        reward_threshold=spec.reward_threshold if spec is not None else None,
        frame_size=frame_size, fps=fps)
