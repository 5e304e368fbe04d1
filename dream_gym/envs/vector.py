"""DreamVectorEnv: N dreams stepped in one batched forward pass, as a Gymnasium VectorEnv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
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
        frame_skip: dream steps per ``step()``, the action held, as Gymnasium's
            ``MaxAndSkipObservation(env, skip=k)`` does to a real game: rewards summed, a
            dream that ends inside stops there (its observation is that step's), the
            others see the pixel-wise max of the last two frames (latent features: the
            last step's). Only the two frames shown are decoded, so a pixel agent deciding
            every k steps pays for 2 renders in k steps; wrap the real game in
            ``MaxAndSkipObservation`` with the same k (:func:`dream_gym.sb3.make_real_sb3_env`
            does).
        The other arguments are :class:`~dream_gym.envs.dream_env.DreamEnv`'s.
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, model: WorldModel | str | Path = "takecover",
                 obs_type: str = "pixels", temperature: float = 1.0,
                 render_mode: str | None = None, max_episode_steps: int | None = None,
                 game: str | None = None, device: str = "cpu",
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                 contexts: dict[str, Any] | None = None,
                 screen_size: int | None = None, frame_skip: int = 1) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}.")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}.")
        if int(frame_skip) != frame_skip or frame_skip < 1:
            raise ValueError(f"frame_skip must be an int >= 1 (dream steps per action), got "
                             f"{frame_skip!r}.")
        self.frame_skip = int(frame_skip)
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
        if self.frame_skip == 1:
            reward, terminated, truncated = self._core.step(a)
            obs = None
        else:
            reward, terminated, truncated, obs = self._skip(a, self._needs_reset)
        infos: dict[str, Any] = {}
        if len(restart):  # NEXT_STEP: these dreams ended last step; this step starts anew
            self._core.reset_rows(restart, [self._rngs[i] for i in restart])
            reward[restart], terminated[restart], truncated[restart] = 0.0, False, False
            if obs is not None:
                _set_rows(obs, restart, self._core.observations_of(restart))
        ended = terminated | truncated
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._needs_reset = ended
        elif ended.any():  # SAME_STEP
            if obs is None:
                obs = self._core.observations()
            infos["final_obs"] = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(ended):
                infos["final_obs"][i] = obs_row(obs, i)
            infos["final_info"] = {}
            infos["_final_obs"] = ended.copy()
            rows = np.flatnonzero(ended)
            self._core.reset_rows(rows, [self._rngs[i] for i in rows])
            _set_rows(obs, rows, self._core.observations_of(rows))
        if obs is None:
            obs = self._core.observations()
        return obs, reward, terminated, truncated, infos

    def _skip(self, a: np.ndarray, done: np.ndarray):
        """``frame_skip`` dream steps of action ``a``; rows in ``done`` (and those that end
        on the way) are stepped with the batch but their later steps are ignored."""
        core, k = self._core, self.frame_skip
        reward = np.zeros(self.num_envs, np.float32)
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.zeros(self.num_envs, bool)
        done, last, previous = done.copy(), {}, None
        for i in range(k):
            r, term, trunc = core.step(a)
            live = ~done
            reward[live] += r[live]
            terminated |= term & live
            truncated |= trunc & live
            ending = np.flatnonzero(live & (term | trunc))
            if len(ending):
                last[i] = (ending, core.observations_of(ending))
            done |= term | trunc
            if done.all():
                break
            if i == k - 2 and core.obs_type == "pixels":
                previous = _screen(core.observations())  # the next step decodes anew
        obs = core.observations()  # a copy: the engine keeps its decoded frames for render()
        obs = {k: v.copy() for k, v in obs.items()} if isinstance(obs, dict) else obs.copy()
        if previous is not None:
            screen = _screen(obs)
            np.maximum(screen, previous, out=screen)
        for rows, o in last.values():
            _set_rows(obs, rows, o)
        return reward, terminated, truncated, obs

    def render(self):
        return None if self._core.state is None else self._core.screens().copy()

    def latent_features(self) -> torch.Tensor:
        """(N, F) the model's features of each dream's current state, the latent
        observation, whatever ``obs_type`` shows: a teacher that reads the model's state
        labels the frames a pixel agent sees (:func:`dream_gym.distill.dagger`)."""
        if self._core.state is None:
            raise RuntimeError("Call reset() before latent_features().")
        return self.model.features(self._core.state)

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


def _screen(obs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
    """The frames of a batch of pixel observations (the screen entry of a Dict)."""
    if isinstance(obs, dict):
        return next(v for v in obs.values() if v.dtype == np.uint8 and v.ndim == 4)
    return obs


def _set_rows(obs: np.ndarray | dict[str, np.ndarray], rows: np.ndarray,
              values: np.ndarray | dict[str, np.ndarray]) -> None:
    if isinstance(obs, dict):
        for key in obs:
            obs[key][rows] = values[key]
    else:
        obs[rows] = values
