"""stable-baselines3 on batched dreams: an SB3 ``VecEnv`` over :class:`DreamVectorEnv`.

SB3 has its own vector interface (same-step autoreset, ``terminal_observation`` in infos,
seeds set before ``reset()``). :class:`SB3DreamVecEnv` speaks it while keeping the single
batched forward pass, so ``PPO("MlpPolicy", SB3DreamVecEnv("Dream-TakeCover-v0", 64))``
trains on 64 dreams at the cost of about one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from dream_gym.envs.vector import DreamVectorEnv

__all__ = ["SB3DreamVecEnv"]


class SB3DreamVecEnv(VecEnv):
    """``num_envs`` dreams of a registered Dream id as one SB3 ``VecEnv``.

    Args:
        env_id: a Dream id, e.g. ``"Dream-TakeCover-v0"`` (its registered kwargs apply).
        num_envs: number of dreams.
        **kwargs: passed to :class:`~dream_gym.envs.vector.DreamVectorEnv` (``obs_type``,
            ``temperature``, ``max_episode_steps``, ...).
    """

    def __init__(self, env_id: str, num_envs: int, **kwargs: Any) -> None:
        import dream_gym  # noqa: F401  (registers the ids)

        spec = gym.spec(env_id.removeprefix("dream_gym:"))
        self.venv = DreamVectorEnv(num_envs, **{**spec.kwargs, **kwargs},
                                   autoreset_mode=AutoresetMode.SAME_STEP)
        self.venv.spec = spec
        super().__init__(num_envs, self.venv.single_observation_space,
                         self.venv.single_action_space)
        self.render_mode = self.venv.render_mode
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        seeds = None if all(s is None for s in self._seeds) else self._seeds
        options = self._options[0] if self._options[0] else None
        obs, _ = self.venv.reset(seed=seeds, options=options)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = info["final_obs"][i]
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, rewards, dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        return list(self.venv.render())

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError("The dreams of an SB3DreamVecEnv share one model and its "
                             "settings; create a new SB3DreamVecEnv to change them.")

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None,
                   **method_kwargs) -> list[Any]:
        raise AttributeError(f"{method_name}: the dreams of an SB3DreamVecEnv are rows of one "
                             "batch, not separate env objects.")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper],
                       indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
