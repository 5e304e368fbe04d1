"""VizDoom TakeCover (World Models' Doom experiment): dodge fireballs by moving left/right."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dream_gym.games.registry import ControllerMapping, Keymap, register_game
from dream_gym.games.spec import GameSpec

__all__ = ["TAKECOVER", "vizdoom_home"]


def vizdoom_home() -> Path:
    """Where ViZDoom's engine keeps its ``_vizdoom/`` folder and ``_vizdoom.ini``:
    ``$DREAM_GYM_CACHE/vizdoom`` (default ``~/.cache/dream-gym/vizdoom``), never the
    user's working directory."""
    root = Path(os.environ.get("DREAM_GYM_CACHE", Path.home() / ".cache" / "dream-gym"))
    home = root / "vizdoom"
    # the engine creates ./_vizdoom/ when missing; two games starting at once in a fresh
    # folder (worker processes) race, and the loser dies with "Failed to create
    # ./_vizdoom/ directory: File exists". Creating it here first is idempotent.
    (home / "_vizdoom").mkdir(parents=True, exist_ok=True)
    return home


class _EngineOutsideWorkdir(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Starts ViZDoom's engine (at the first reset) inside :func:`vizdoom_home`: the engine
    writes ``./_vizdoom/`` wherever it starts."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def reset(self, **kwargs: Any):
        if self.env.unwrapped.game.is_running():
            return self.env.reset(**kwargs)
        with contextlib.chdir(vizdoom_home()):
            return self.env.reset(**kwargs)


def _make_vizdoom(env_id: str, **kwargs: Any) -> gym.Env:
    from vizdoom import gymnasium_wrapper  # noqa: F401  (registers the Vizdoom ids)

    kwargs.setdefault("doom_config_path", str(vizdoom_home() / "_vizdoom.ini"))
    return _EngineOutsideWorkdir(gym.make(env_id, **kwargs))


def _takecover_action(a):
    """World Models: one tanh output thresholded at +-1/3 into right (1) / no-op (0) /
    left (2)."""
    a = a[..., 0]
    return (a > 1 / 3) * 1 + (a < -1 / 3) * 2


def _keys(held, k) -> int:
    return 1 if held[k.K_RIGHT] else 2 if held[k.K_LEFT] else 0


_F32 = np.finfo(np.float32)

TAKECOVER = register_game(
    GameSpec(
        name="TakeCover",
        env_id="VizdoomTakeCover-v1",
        observation_space=gym.spaces.Dict({
            "gamevariables": gym.spaces.Box(_F32.min, _F32.max, (1,), np.float32),  # HEALTH
            "screen": gym.spaces.Box(0, 255, (240, 320, 3), np.uint8),
        }),
        action_space=gym.spaces.Discrete(3),  # 0 no-op, 1 MOVE_RIGHT, 2 MOVE_LEFT
        make_fn=_make_vizdoom,
        screen_key="screen",
        max_episode_steps=None,  # the scenario has no timeout: it ends when the player dies
        reward_threshold=750.0,  # World Models: "solved" at an average of 750 steps survived
        fps=35,  # Doom's tic rate
    ),
    controller=ControllerMapping(1, _takecover_action),
    keymap=Keymap(_keys, "left/right arrows: move"),
)
