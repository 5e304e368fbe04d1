"""The real game seen through a world model: the dream's latent observation on real frames.

This is World Models' "feature extraction" setting: the agent sees [z, h] (or [z, h, c]) from real
frames, so a policy trained on a dream's ``obs_type="latent"`` runs unchanged in the game.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from dream_gym.contract import State, WorldModel

__all__ = ["RealLatentObservation", "latent_space"]


def latent_space(model: WorldModel) -> gym.spaces.Box:
    return gym.spaces.Box(-np.inf, np.inf, (model.feature_dim,), np.float32)


class RealLatentObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Wrap a real game env so observations are the model's latent features.

    Each step the real frame is encoded and the model's recurrent state advanced with the
    action actually taken (``WorldModel.observe``), exactly as the dream advances its own.

    Args:
        env: the real game (e.g. ``gymnasium.make("VizdoomTakeCover-v1")``).
        model: a loaded world model, a zoo name (``"takecover"``) or a model folder.
    """

    def __init__(self, env: gym.Env, model: WorldModel | str | Path) -> None:
        from dream_gym.envs.core import load_dream

        gym.utils.RecordConstructorArgs.__init__(self, model=model)
        gym.Wrapper.__init__(self, env)
        model = load_dream(model)
        self.model = model
        self.spec_game = model.spec
        if env.spec is not None and env.spec.id != self.spec_game.env_id:
            raise ValueError(
                f"This world model simulates {self.spec_game.env_id}, but the wrapped env is "
                f"{env.spec.id}. Wrap the game the model was trained on."
            )
        self.observation_space = latent_space(model)
        self._state: State | None = None

    def _frame(self, obs: Any) -> torch.Tensor:
        return torch.from_numpy(self.spec_game.frame(obs))[None]

    def _obs(self) -> np.ndarray:
        return self.model.features(self._state)[0].cpu().numpy().astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        no_actions = self.spec_game.no_actions(1)
        self._state = self.model.initial_state(self._frame(obs)[:, None], no_actions)
        info["real_obs"] = obs
        return self._obs(), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        a = torch.as_tensor(np.asarray(action, self.spec_game.action_dtype))[None]
        self._state = self.model.observe(self._state, a, self._frame(obs))
        info["real_obs"] = obs
        return self._obs(), reward, terminated, truncated, info
