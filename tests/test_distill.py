"""A pixel policy taught in the dream by the shipped latent controller (dream_gym.distill)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecFrameStack, VecMonitor

from dream_gym.distill import DaggerConfig, controller_teacher, dagger
from dream_gym.sb3 import ModelEncoder, make_sb3_vec_env

pytestmark = pytest.mark.slow  # the shipped TakeCover dream at 64 to 256 dreams, and training


def _pixel_agent(venv, cache: int = 4096) -> PPO:
    return PPO("CnnPolicy", venv, n_steps=8, seed=0, policy_kwargs={
        "features_extractor_class": ModelEncoder,
        "features_extractor_kwargs": {"model": "takecover", "stats_steps": 8, "cache": cache},
        "net_arch": {"pi": [64, 64], "vf": [64]}})


def test_dagger_teaches_a_pixel_policy_the_controllers_actions():
    """After two rounds, the student (4 stacked dream frames through V's frozen encoder)
    takes the controller's action on frames of its own play (the third round's, before it
    is fitted on them) more often than the best constant action does. (The first round's
    frames, the episodes' first 96 steps, are nearly all one action: 0.83.)"""
    venv = VecMonitor(VecFrameStack(make_sb3_vec_env(
        "Dream-TakeCover-v0", 64, screen_size=64, temperature=1.15), 4))
    agent = _pixel_agent(venv)
    log = dagger(agent.policy, venv, controller_teacher("takecover"),
                 DaggerConfig(rounds=3, steps=96, epochs=5), progress=False)
    assert [e["teacher_share"] for e in log] == [1.0, 0.5, 0.25]
    assert [e["labels"] for e in log] == [6144, 12288, 18432]
    first, last = log[0], log[-1]
    assert first["agreement"] < 0.5 < last["agreement"]  # untaught, then taught
    assert last["agreement"] > last["constant_agreement"] + 0.08, log  # 0.78 vs 0.66 measured
    assert last["loss"] < first["loss"]  # a better fit on three times the labels


def test_dagger_says_what_it_needs():
    real_like = VecFrameStack(make_sb3_vec_env("Dream-TakeCover-v0", 2, screen_size=64), 2)
    agent = _pixel_agent(real_like)
    with pytest.raises(FileNotFoundError, match="no controller"):
        controller_teacher("imagenav")
    trainable = PPO("CnnPolicy", real_like, n_steps=8, seed=0)  # NatureCNN learns
    with pytest.raises(ValueError, match="frozen features extractor"):
        dagger(trainable.policy, real_like, controller_teacher("takecover"))
    from stable_baselines3.common.vec_env import DummyVecEnv

    other = DummyVecEnv([lambda: gym.make("CartPole-v1")])
    with pytest.raises(TypeError, match="needs a dream"):
        dagger(agent.policy, other, controller_teacher("takecover"))


def test_model_encoder_cache_gives_the_uncached_features():
    """The cache names a frame by its pixels: stacks that share frames, in batches of other
    compositions, read the same features as encoding every frame afresh (up to the float
    rounding of convolutions over batches of other sizes)."""
    dreams = VecFrameStack(make_sb3_vec_env("Dream-TakeCover-v0", 4, screen_size=64), 4)
    dreams.seed(0)
    obs = [dreams.reset()] + [dreams.step(np.array([1, 2, 0, 1]))[0] for _ in range(5)]
    x = torch.from_numpy(np.concatenate(obs)).permute(0, 3, 1, 2).float() / 255
    space = gym.spaces.Box(0, 255, (12, 64, 64), np.uint8)
    plain = ModelEncoder(space, "takecover", stats_steps=8)
    cached = ModelEncoder(space, "takecover", stats_steps=8, cache=16)
    want = plain(x)
    got = torch.cat([cached(x[i:i + 4]) for i in range(0, len(x), 4)])
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)
    assert len(cached._cache) == 16  # least recently used frames went out
    np.testing.assert_allclose(cached(x).numpy(), want.numpy(), rtol=1e-4, atol=1e-4)
