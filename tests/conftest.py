"""Shared fixtures: the shipped zoo model, loaded once per session; a TensorBoard reader; a
tiny pixel game a user might register at run time."""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import pytest
import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def takecover():
    from dream_gym.zoo import load_model

    return load_model("takecover")


@pytest.fixture
def tb_scalars():
    """Every scalar series a run wrote to TensorBoard: run_dir -> {tag: values}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def read(run_dir) -> dict[str, list[float]]:
        acc = EventAccumulator(str(run_dir)).Reload()
        return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    return read


@pytest.fixture
def drift_env():
    """A user's env class, as a script defines it: made here, inside a function, so that it
    travels to worker processes and Ray actors by value (cloudpickle), not by import."""

    class Drift(gym.Env):
        """A bright column drifts with the action; an episode lasts 10..30 steps."""

        metadata = {"render_fps": 30}
        observation_space = gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)
        action_space = gym.spaces.Discrete(3)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.x, self.t = int(self.np_random.integers(16)), 0
            self.end = int(self.np_random.integers(10, 31))
            return self._obs(), {}

        def _obs(self):
            img = np.zeros((16, 16, 3), np.uint8)
            img[:, self.x] = 255
            return img

        def step(self, action):
            self.x = int(np.clip(self.x + int(action) - 1, 0, 15))
            self.t += 1
            return self._obs(), float(self.x == 8), self.t >= self.end, False, {}

    return Drift
