"""GameGAN: the memory's mechanics, the dream's contract, and a short training on real frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from dream_gym.contract import seed_dreams
from dream_gym.data import CollectConfig, collect, load_episodes
from dream_gym.gamegan.discriminators import DiscriminatorConfig
from dream_gym.gamegan.dream import GameGANDream
from dream_gym.gamegan.model import GameGANConfig, GameGANGenerator, Memory
from dream_gym.gamegan.training import (
    GameGANTrainConfig,
    WindowSampler,
    open_loop_error,
    train_gamegan,
)

TINY = dict(z_dim=4, hidden=32, memory_grid=5, memory_dim=16, enc_width=4, render_width=4,
            mirror_actions=[[2, 1]], done_window=10)


def _one_hot(i: int, n: int = 3) -> torch.Tensor:
    a = torch.zeros(1, n)
    a[0, i] = 1.0
    return a


def test_the_shift_kernel_moves_attention_and_a_mirrored_action_moves_it_back():
    torch.manual_seed(0)
    mem = Memory(GameGANConfig(**TINY)).requires_grad_(False)
    _, alpha = mem.initial(1, torch.device("cpu"))
    right, left = mem.kernels(_one_hot(1)), mem.kernels(_one_hot(2))
    np.testing.assert_allclose(left.view(3, 3).numpy(), right.view(3, 3).flip(0, 1).numpy(),
                               rtol=1e-6)
    sharp = torch.zeros(1, 9)
    sharp[0, 5] = 1.0  # the cell to the right of centre
    moved = mem.shift(alpha, sharp)
    n = mem.cfg.memory_grid
    assert moved.view(n, n)[n // 2, n // 2 - 1] == 1.0  # convolution shifts it by one cell
    back = mem.shift(moved, sharp.view(1, 3, 3).flip(1, 2).flatten(1))
    torch.testing.assert_close(back, alpha)


def _tiny_dream(seed: int = 0) -> GameGANDream:
    torch.manual_seed(seed)
    return GameGANDream("TakeCover", GameGANGenerator(GameGANConfig(**TINY)), 100.0)


def _contexts(n: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"frames": rng.integers(0, 255, (n, 1, 64, 64, 3), dtype=np.uint8),
            "actions": np.zeros((n, 0), np.int64), "gamevars": np.full((n, 1), 100.0, np.float32)}


def test_a_gamegan_dream_is_a_checked_gymnasium_env_with_the_real_spaces():
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    from dream_gym.envs.dream_env import DreamEnv
    from dream_gym.games import get_game

    for obs_type in ("pixels", "latent"):
        env = DreamEnv(_tiny_dream(), obs_type=obs_type, contexts=_contexts())
        check_env(env, skip_render_check=False)
        sb3_check_env(env, warn=False)
    env = DreamEnv(_tiny_dream(), contexts=_contexts())
    assert (env.observation_space, env.action_space) == get_game("TakeCover").real_spaces()


def test_a_gamegan_dream_is_the_same_alone_and_in_a_batch():
    from dream_gym.envs.dream_env import DreamEnv
    from dream_gym.envs.vector import DreamVectorEnv

    dream = _tiny_dream()
    venv = DreamVectorEnv(3, dream, obs_type="latent", contexts=_contexts())
    obs, _ = venv.reset(seed=7)
    batched = [obs]
    for t in range(12):
        batched.append(venv.step(np.full(3, t % 3))[0])
    env = DreamEnv(dream, obs_type="latent", contexts=_contexts())
    alone = [env.reset(seed=8)[0]]
    for t in range(12):
        obs, _, term, trunc, _ = env.step(t % 3)
        alone.append(obs)
        if term or trunc:
            break
    np.testing.assert_allclose(np.stack(alone), np.stack(batched)[: len(alone), 1], atol=1e-4)


def test_temperature_scales_the_noise_and_zero_reads_change_the_dream():
    dream = _tiny_dream()
    frames = torch.from_numpy(_contexts()["frames"])
    start = seed_dreams(dream.initial_state(frames, torch.zeros(4, 0, dtype=torch.long)),
                        torch.arange(4))

    def roll(tau: float, reads: bool = True) -> torch.Tensor:
        dream.memory_reads = reads
        s = start
        for _ in range(5):
            s, _ = dream.imagine(s, torch.ones(4, dtype=torch.long), tau)
        dream.memory_reads = True
        return dream.features(s)

    torch.testing.assert_close(roll(1.0), roll(1.0))
    assert not torch.allclose(roll(0.0), roll(1.0))
    assert not torch.allclose(roll(1.0), roll(1.0, reads=False))


@pytest.fixture(scope="module")
def takecover_episodes(tmp_path_factory):
    d = tmp_path_factory.mktemp("tc_data")
    collect(CollectConfig(game="TakeCover", episodes=12, episodes_per_shard=6, workers=2,
                          seed=123), d)
    return load_episodes(d)


@pytest.mark.slow
def test_a_short_training_on_real_frames_lowers_the_frame_error_and_resumes(
        takecover_episodes, tmp_path):
    """A hundred updates of a tiny GameGAN (adversarial losses on) on real TakeCover frames:
    the held-out open-loop frame error falls by half; a run stopped and resumed from its
    checkpoint ends where the uninterrupted one does, bit for bit."""
    eps = takecover_episodes
    ids = np.arange(len(eps.lengths))
    net_cfg = GameGANConfig(**TINY)
    d_cfg = DiscriminatorConfig(width=4, temporal_width=4)
    tcfg = GameGANTrainConfig(steps=120, batch_size=4, seq_len=6, warmup_start=3,
                              warmup_end=2, warmup_decay_steps=100, lr=2e-3, lr_disc=1e-3,
                              eval_every=1000, checkpoint_every=20, holdout=0.0)

    def sampler(rows, seed):
        return WindowSampler(eps, "TakeCover", tcfg.seq_len, 100.0, net_cfg.done_window,
                             np.random.default_rng(seed), rows)

    held = sampler(ids[-2:], 99).sample(16)
    torch.manual_seed(0)
    before = open_loop_error(GameGANGenerator(net_cfg), held, warm=1)
    net = train_gamegan(sampler(ids[:-2], 0), None, net_cfg, d_cfg, tcfg, tmp_path / "a",
                        torch.device("cpu"))
    after = open_loop_error(net, held, warm=1)
    assert after[:3].mean() < 0.5 * before[:3].mean(), (before, after)
    # resume: 20 updates, stop, 20 more from the checkpoint == 40 straight
    short = GameGANTrainConfig(**{**tcfg.__dict__, "steps": 40})
    straight = train_gamegan(sampler(ids[:-2], 0), None, net_cfg, d_cfg, short,
                             tmp_path / "b", torch.device("cpu"))
    half = GameGANTrainConfig(**{**tcfg.__dict__, "steps": 20})
    train_gamegan(sampler(ids[:-2], 0), None, net_cfg, d_cfg, half, tmp_path / "c",
                  torch.device("cpu"))
    resumed = train_gamegan(sampler(ids[:-2], 0), None, net_cfg, d_cfg, short, tmp_path / "c",
                            torch.device("cpu"))
    for (k, v), w in zip(straight.state_dict().items(), resumed.state_dict().values(),
                         strict=True):
        torch.testing.assert_close(v, w, msg=k)
