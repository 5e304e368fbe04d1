"""The registered dream envs: Gymnasium's and SB3's checkers, real spaces, determinism."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import dream_gym
from dream_gym.games import get_game

IDS = sorted(dream_gym.DREAM_IDS)


def test_make_without_import_in_a_fresh_interpreter():
    code = ("import gymnasium as gym; env = gym.make('dream_gym:Dream-TakeCover-v0'); "
            "obs, _ = env.reset(seed=0); print(sorted(obs))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "screen" in out.stdout


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("obs_type", ["pixels", "latent"])
def test_gymnasium_check_env(env_id, obs_type):
    env = gym.make(env_id, obs_type=obs_type)
    check_env(env.unwrapped, skip_render_check=False)


@pytest.mark.parametrize("env_id", IDS)
def test_sb3_check_env(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    sb3_check_env(gym.make(env_id, obs_type="latent").unwrapped, warn=True)
    sb3_check_env(gym.make(env_id).unwrapped, warn=True)


def sb3_policy(space: gym.Space) -> str:
    """The SB3 policy an agent uses on an observation space (NatureCNN needs 36 x 36 pixels:
    ImageNav's 8 x 8 view goes to an MLP)."""
    if isinstance(space, gym.spaces.Dict):
        return "MultiInputPolicy"
    return "CnnPolicy" if len(space.shape) == 3 and min(space.shape[:2]) >= 36 else "MlpPolicy"


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("obs_type", ["pixels", "latent"])
def test_sb3_ppo_learns_on_every_dream(env_id, obs_type):
    """PPO runs through the project's SB3 adapter on every dream, Box actions included
    (the adapter once reshaped actions to (num_envs,), which broke CarRacing's), and its
    updates change the policy."""
    import torch
    from stable_baselines3 import PPO

    from dream_gym.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env(env_id, 2, obs_type=obs_type)
    model = PPO(sb3_policy(venv.observation_space), venv, n_steps=16, batch_size=16,
                n_epochs=1, learning_rate=1e-3, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(32)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters(),
                                                      strict=True))
    obs = venv.reset()
    action, _ = model.predict(obs)
    assert action.shape == (2, *venv.action_space.shape)
    obs, reward, done, _ = venv.step(action)
    assert reward.shape == (2,) and np.isfinite(reward).all()
    venv.close()


@pytest.mark.slow  # starts the real game
@pytest.mark.parametrize("env_id", IDS)
def test_default_spaces_equal_the_real_game(env_id):
    env = gym.make(env_id)
    game = get_game(dream_gym.DREAM_IDS[env_id]["game"])
    real = game.make()
    assert env.observation_space == real.observation_space
    assert env.action_space == real.action_space
    obs, _ = env.reset(seed=0)
    assert real.observation_space.contains(obs)


def test_same_seed_same_trajectory_and_temperature_changes_it():
    def rollout(seed, temperature):
        env = gym.make("Dream-TakeCover-v0", obs_type="latent", temperature=temperature)
        obs, _ = env.reset(seed=seed)
        traj = [obs]
        for t in range(60):
            obs, r, term, trunc, _ = env.step(t % 3)
            traj.append(obs)
            if term or trunc:
                break
        return np.stack(traj)

    a, b = rollout(5, 1.0), rollout(5, 1.0)
    np.testing.assert_array_equal(a, b)
    c = rollout(5, 1.3)
    n = min(len(a), len(c))
    assert not np.allclose(a[1:n], c[1:n])


def test_context_from_options_and_index():
    env = gym.make("Dream-TakeCover-v0", obs_type="latent")
    o1, _ = env.reset(seed=0, options={"context_index": 3})
    ctx = env.unwrapped.contexts
    frames = ctx["frames"][3].numpy()
    o2, _ = env.reset(seed=0, options={"context": {"frames": frames}})
    np.testing.assert_allclose(o1, o2, atol=1e-5)


@pytest.mark.slow  # starts the real game
def test_real_latent_wrapper_gives_the_dream_latent_observation():
    from dream_gym.envs.latent import RealLatentObservation

    real = RealLatentObservation(get_game("TakeCover").make(), "takecover")
    check_env(real)
    dream = gym.make("Dream-TakeCover-v0", obs_type="latent")
    assert real.observation_space == dream.observation_space
    obs, info = real.reset(seed=11)
    frame = info["real_obs"]["screen"]
    dream_obs, _ = dream.reset(seed=0, options={"context": {"frames": frame[None]}})
    np.testing.assert_allclose(obs, dream_obs, atol=1e-5)
