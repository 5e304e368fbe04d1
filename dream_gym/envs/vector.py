"""DreamVectorEnv: N dreams stepped in one batched forward pass, as a Gymnasium VectorEnv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from dream_gym.contract import WorldModel
from dream_gym.envs.core import DreamCore, obs_row

__all__ = ["DreamVectorEnv"]


class DreamVectorEnv(VectorEnv):
    """``num_envs`` dreams of one world model; the ``vector_entry_point`` of every Dream id.

    ``gymnasium.make_vec("dream_gym:Dream-TakeCover-v0", num_envs=N)`` returns this env. All
    dreams advance in one batched call of the model, so N dreams cost far less than N envs.

    Dream ``i`` draws its starting contexts and its noise from its own generator, seeded by
    ``reset(seed=s)`` with ``s + i`` (or ``seed[i]`` for a list), exactly as a single
    :class:`~dream_gym.envs.dream_env.DreamEnv` reset with that seed would: the same seed
    gives the same trajectory alone or in the batch.

    Args:
        num_envs: number of dreams N.
        autoreset_mode: Gymnasium's ``NEXT_STEP`` (default: the step after an episode ends
            resets that dream and ignores its action) or ``SAME_STEP`` (the ending step
            returns the new episode's first observation; the last one is in
            ``infos["final_obs"]``, as stable-baselines3 expects).
        The other arguments are :class:`~dream_gym.envs.dream_env.DreamEnv`'s.
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, model: WorldModel | str | Path = "takecover",
                 obs_type: str = "pixels", temperature: float = 1.0,
                 render_mode: str | None = None, max_episode_steps: int | None = None,
                 game: str | None = None, device: str = "cpu",
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                 contexts: dict[str, Any] | None = None,
                 screen_size: int | None = None) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}.")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}.")
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        if self.autoreset_mode == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode must be NEXT_STEP or SAME_STEP.")
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self._core = DreamCore(model, num_envs, obs_type, temperature, max_episode_steps,
                               game, device, contexts, screen_size)
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.model = self._core.model
        self.single_observation_space = self._core.observation_space
        self.single_action_space = self._core.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rngs: list[np.random.Generator] | None = None
        self._needs_reset = np.zeros(num_envs, bool)

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None):
        """Reset every dream, or those in ``options["reset_mask"]`` (a bool array)."""
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        rows = np.arange(self.num_envs) if mask is None else np.flatnonzero(mask)
        seeds = self._seeds(seed)
        if self._rngs is None:
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
            rows = np.arange(self.num_envs)
        else:
            for i in rows:
                if seeds[i] is not None:
                    self._rngs[i] = seeding.np_random(seeds[i])[0]
        self._core.reset_rows(rows, [self._rngs[i] for i in rows], options)
        self._needs_reset[rows] = False
        return self._core.observations(), {}

    def step(self, actions):
        if self._rngs is None:
            raise RuntimeError("Call reset() before step().")
        env_id = self.spec.id if self.spec is not None else "DreamVectorEnv"
        a = self._core.check_actions(actions, env_id)
        restart = np.flatnonzero(self._needs_reset)
        reward, terminated, truncated = self._core.step(a)
        infos: dict[str, Any] = {}
        if len(restart):  # NEXT_STEP: these dreams ended last step; this step starts anew
            self._core.reset_rows(restart, [self._rngs[i] for i in restart])
            reward[restart], terminated[restart], truncated[restart] = 0.0, False, False
        ended = terminated | truncated
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._needs_reset = ended
        elif ended.any():  # SAME_STEP
            obs = self._core.observations()
            infos["final_obs"] = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(ended):
                infos["final_obs"][i] = obs_row(obs, i)
            infos["final_info"] = {}
            infos["_final_obs"] = ended.copy()
            rows = np.flatnonzero(ended)
            self._core.reset_rows(rows, [self._rngs[i] for i in rows])
        return self._core.observations(), reward, terminated, truncated, infos

    def render(self):
        return None if self._core.state is None else self._core.screens().copy()

    # --- helpers ----------------------------------------------------------------------------
    def _seeds(self, seed: int | list[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, int):
            return [seed + i for i in range(self.num_envs)]
        if len(seed) != self.num_envs:
            raise ValueError(f"Got {len(seed)} seeds for {self.num_envs} envs; pass one int "
                             "or one seed per env.")
        return list(seed)
