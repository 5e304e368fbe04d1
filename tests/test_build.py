"""``dream-gym build``: a pixel env becomes a registered dream; what cannot be dreamed is
refused before any data is collected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest

from dream_gym.games.derive import NotDreamable, game_from_env, game_name


class Catch(gym.Env):
    """A tiny pixel game: a ball falls down a 32x32 screen, a paddle on the bottom row moves
    left, stays or moves right; +1 for a catch, -1 for a miss; three balls an episode."""

    metadata = {"render_fps": 15}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, 255, (32, 32, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(3)

    def _obs(self) -> np.ndarray:
        img = np.zeros((16, 16, 3), np.uint8)
        img[self.row, self.col] = (255, 255, 255)
        img[15, max(0, self.paddle - 1):self.paddle + 2] = (255, 64, 0)
        return np.kron(img, np.ones((2, 2, 1), np.uint8))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.paddle, self.balls = 8, 0
        self._drop()
        return self._obs(), {}

    def _drop(self) -> None:
        self.row, self.col = 0, int(self.np_random.integers(16))

    def step(self, action):
        self.paddle = int(np.clip(self.paddle + int(action) - 1, 1, 14))
        self.row += 1
        reward = 0.0
        if self.row == 15:
            reward = 1.0 if abs(self.col - self.paddle) <= 1 else -1.0
            self.balls += 1
            self._drop()
        return self._obs(), reward, self.balls == 3, False, {}


def test_a_tiny_pixel_env_becomes_a_dream_that_a_new_interpreter_makes(tmp_path):
    """build() runs every stage on a constructor (seconds), writes a card with the real
    scores and installs the folder; in a fresh interpreter with $DREAM_GYM_MODELS set,
    gymnasium.make gives the dream with Catch's spaces, and both env checkers pass."""
    from dream_gym.build import BuildConfig, build

    out = build(Catch, "Catch", config=BuildConfig(minutes=0.3, episodes=10, z_dim=8,
                                                   hidden=32, max_frames=3000),
                out=tmp_path / "zoo" / "catch",
                runs_root=tmp_path / "runs", video=False)
    card = (out / "CARD.md").read_text()
    assert "controller trained only in the dream" in card and "Welch t" in card
    stages = json.loads((tmp_path / "runs" / "catch" / "stages.json").read_text())
    assert set(stages) == {"collect", "vae", "mdnrnn", "temperature", "controller", "evaluate"}
    assert f'temperature = {stages["temperature"]["temperature"]}' in (out / "recipe.toml"
                                                                       ).read_text()
    controller = json.loads((out / "controller.json").read_text())
    assert controller["real_score"]["n"] == controller["random_score"]["n"] == 10
    code = textwrap.dedent("""
        import gymnasium as gym, numpy as np
        from gymnasium.utils.env_checker import check_env
        from stable_baselines3.common.env_checker import check_env as sb3_check_env
        env = gym.make("dream_gym:Dream-Catch-v0")
        assert env.observation_space == gym.spaces.Box(0, 255, (32, 32, 3), np.uint8)
        assert env.action_space == gym.spaces.Discrete(3)
        check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped)
        obs, _ = env.reset(seed=1)
        print(obs.shape, env.step(0)[0].dtype)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "DREAM_GYM_MODELS": str(tmp_path / "zoo")},
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(32, 32, 3) uint8" in done.stdout


class _TextEnv(Catch):
    def __init__(self) -> None:
        super().__init__()
        self.observation_space = gym.spaces.Text(8)


class _MultiBinaryEnv(Catch):
    def __init__(self) -> None:
        super().__init__()
        self.action_space = gym.spaces.MultiBinary(3)


class _GrayEnv(Catch):
    def __init__(self) -> None:
        super().__init__()
        self.observation_space = gym.spaces.Box(0, 255, (32, 32), np.uint8)


@pytest.mark.parametrize("env, match", [
    ("CartPole-v1", "(?s)no image observation.*AddRenderObservation"),
    ("NoSuchGame-v0", "No Gymnasium env 'NoSuchGame-v0'"),
    (_TextEnv, "no image observation"),
    (_MultiBinaryEnv, "MultiBinary.* Discrete and 1-D Box"),
    (_GrayEnv, "grayscale"),
])
def test_what_cannot_be_dreamed_is_refused_before_any_data(env, match, tmp_path):
    from dream_gym.build import build

    with pytest.raises(NotDreamable, match=match):
        build(env, None if isinstance(env, str) else "Bad", runs_root=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()  # refused before collecting anything


def test_an_atari_id_gives_the_real_spaces_and_a_short_name():
    spec = game_from_env("ALE/Pong-v5")
    real = gym.make("ALE/Pong-v5")
    assert (spec.observation_space, spec.action_space) == (real.observation_space,
                                                           real.action_space)
    assert spec.name == game_name("ALE/Pong-v5") == "Pong"
    assert spec.screen_key is None and spec.max_episode_steps == real.spec.max_episode_steps
