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
from dream_gym.gamegan.heads import EpisodeHeads, EpisodeHeadsConfig, train_heads
from dream_gym.gamegan.model import (
    GameGANConfig,
    GameGANGenerator,
    Memory,
    Renderer,
    keypoint_pixels,
)
from dream_gym.gamegan.training import (
    GameGANTrainConfig,
    WindowSampler,
    _dynamics_loss,
    open_loop_error,
    train_gamegan,
)

TINY = dict(z_dim=4, hidden=32, memory_grid=5, memory_dim=16, enc_width=4, render_width=4,
            mirror_actions=[[2, 1]], done_window=10)
TINY_D = DiscriminatorConfig(width=4, temporal_width=4)


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


@pytest.mark.parametrize("before", [False, True], ids=["paper", "write_before_move"])
def test_a_write_lands_where_the_step_starts_or_where_it_moves(before):
    torch.manual_seed(0)
    mem = Memory(GameGANConfig(**TINY, write_before_move=before, write_frame=True))
    mem.requires_grad_(False)
    mem.kernel[-1].weight.zero_()
    mem.kernel[-1].bias.copy_(torch.eye(9)[5] * 10)  # every action: one cell right
    mem.gate[-1].bias.fill_(20.0)  # the gate always lets the shift happen
    M, alpha = mem.initial(1, torch.device("cpu"))
    n, c = mem.cfg.memory_grid, mem.cells // 2
    h, s = torch.zeros(1, mem.cfg.hidden), torch.randn(1, mem.cfg.memory_dim)
    read, _, moved, M2 = mem(h, _one_hot(1), alpha, M.clone(), s)
    changed = (M2 - M).abs().sum(-1)[0] > 1e-6
    start, to = c, int(moved[0].argmax())
    assert to == c - 1 and moved.view(n, n)[n // 2, n // 2 - 1] > 0.99
    assert changed[start].item() is before and changed[to].item() is (not before)
    assert changed.sum() == 1  # one cell written, the others keep what they held
    # the written content depends on the frame the step starts from (write_frame)
    _, _, _, M3 = mem(h, _one_hot(1), alpha, M.clone(), s + 1.0)
    assert not torch.allclose(M2, M3)


def _moving_right(**config) -> Memory:
    """A memory that writes where a step starts, whose action 1 moves the attention one cell
    right (action 2 left: TINY's mirror), the gate open."""
    torch.manual_seed(0)
    mem = Memory(GameGANConfig(**TINY, write_before_move=True, **config)).requires_grad_(False)
    mem.kernel[-1].weight.zero_()
    mem.kernel[-1].bias.copy_(torch.eye(9)[5] * 10)
    mem.gate[-1].bias.fill_(20.0)
    return mem


def test_an_observation_write_is_read_back_when_the_attention_returns():
    """memory_write = "observation": a step stores the frame it starts from at its own place,
    so going right and back left reads the first frame's encoding exactly, whatever h is;
    a gate fed the attention can stop a move at one place only (a wall)."""
    mem = _moving_right(memory_write="observation", gate_input="attention")
    M, alpha = mem.initial(1, torch.device("cpu"))
    s0, s1 = torch.randn(1, mem.cfg.memory_dim), torch.randn(1, mem.cfg.memory_dim)
    h = torch.randn(1, mem.cfg.hidden)
    read, _, alpha1, M = mem(h, _one_hot(1), alpha, M, s0)
    assert not torch.allclose(read, s0)  # the cell to the right was never written
    read, _, alpha2, M = mem(torch.randn(1, mem.cfg.hidden), _one_hot(2), alpha1, M, s1)
    torch.testing.assert_close(alpha2, alpha, atol=1e-4, rtol=0)
    torch.testing.assert_close(read, s0, atol=1e-3, rtol=0)
    # a gate that sees the attention: closed at the centre only, the move is cancelled there
    mem.gate[-1].bias.fill_(0.0)
    mem.gate[0].weight.zero_()
    mem.gate[0].bias.zero_()
    mem.gate[0].weight[0, mem.cells // 2] = 40.0  # one unit: at the centre
    mem.gate[-1].weight.zero_()
    mem.gate[-1].weight[0, 0] = -1.0
    mem.gate[-1].bias.fill_(20.0)
    _, _, stayed, _ = mem(h, _one_hot(1), alpha, M, s0)
    _, _, moved, _ = mem(h, _one_hot(2), alpha1, M, s0)
    assert stayed[0].argmax() == mem.cells // 2 and stayed[0].max() > 0.99
    assert moved[0].argmax() == mem.cells // 2 and moved[0].max() > 0.99  # off the wall


@pytest.mark.parametrize("write", ["observation", "learned"])
def test_an_empty_cell_reads_as_the_engine_prediction_a_written_one_as_what_it_holds(write):
    """empty_read = "prediction": a move to a never-written cell reads the dynamic input
    (what the engine predicts), a return reads what the cell holds."""
    mem = _moving_right(memory_write=write, empty_read="prediction")
    M, alpha = mem.initial(1, torch.device("cpu"))
    s0, h = torch.randn(1, mem.cfg.memory_dim), torch.randn(1, mem.cfg.hidden)
    read, dynamic, alpha1, M = mem(h, _one_hot(1), alpha, M, s0)
    torch.testing.assert_close(read, dynamic, atol=1e-4, rtol=0)
    stored = mem.read_at(alpha, M)
    if write == "observation":
        torch.testing.assert_close(stored, s0)
    h2 = torch.randn(1, mem.cfg.hidden)
    read, dynamic2, _, M = mem(h2, _one_hot(2), alpha1, M, torch.randn(1, mem.cfg.memory_dim))
    torch.testing.assert_close(read, stored, atol=1e-3, rtol=0)
    assert not torch.allclose(read, dynamic2, atol=1e-2)


def test_with_memory_writes_seen_only_real_frames_are_written():
    """memory_writes = "seen": a step that starts from the model's own prediction leaves
    the memory as it was; one that starts from a real frame writes it."""
    torch.manual_seed(0)
    G = GameGANGenerator(GameGANConfig(**TINY, write_before_move=True,
                                       memory_write="observation", empty_read="prediction",
                                       memory_writes="seen")).requires_grad_(False)
    s0, s1 = torch.randn(2, 1, G.cfg.memory_dim)
    state = G.initial_from_encoding(s0)
    a, z = _one_hot(0), torch.zeros(1, G.cfg.z_dim)
    new, _ = G.advance(state, a, z)
    assert (new["M"] - state["M"]).abs().sum() > 0  # the real first frame is written
    predicted = G.feed(new, s1, False)
    after, _ = G.advance(predicted, a, z)
    torch.testing.assert_close(after["M"], new["M"])
    written = G.feed(new, s1, True)
    assert (G.advance(written, a, z)[0]["M"] - new["M"]).abs().sum() > 0


def test_with_edge_walls_a_shift_into_the_edge_leaves_the_attention_where_it_was():
    torch.manual_seed(0)
    mem = Memory(GameGANConfig(**TINY, edge_walls=True)).requires_grad_(False)
    n = mem.cfg.memory_grid
    right = torch.zeros(1, 9)
    right[0, 3] = 1.0  # the kernel that carries attention one cell right (see the first test)
    _, alpha = mem.initial(1, torch.device("cpu"))
    at_edge = alpha.view(n, n).roll(n // 2, 1).view(1, -1)  # the centre row's last cell
    torch.testing.assert_close(mem.shift(at_edge, right), at_edge)
    moved = mem.shift(alpha, right)
    assert moved.view(n, n)[n // 2, n // 2 + 1] == 1.0
    spread = torch.softmax(torch.randn(1, 9), -1)  # a soft kernel: no attention is lost
    torch.testing.assert_close(mem.shift(at_edge, spread).sum(), torch.tensor(1.0))
    open_grid = Memory(GameGANConfig(**TINY)).requires_grad_(False)
    assert open_grid.shift(at_edge, right).sum() == 0.0  # the paper's zero padding loses it


def test_without_kernel_stay_only_the_gate_keeps_the_attention_still():
    torch.manual_seed(0)
    mem = Memory(GameGANConfig(**TINY, kernel_stay=False)).requires_grad_(False)
    mem.kernel[-1].weight.zero_()
    mem.kernel[-1].bias.copy_(torch.eye(9)[4] * 10 + torch.eye(9)[5])  # "stay" favoured
    kernels = mem.kernels(_one_hot(0))
    assert kernels[0, 4] == 0 and kernels[0].argmax() == 5
    torch.testing.assert_close(kernels.sum(-1), torch.ones(1))
    M, alpha = mem.initial(1, torch.device("cpu"))
    h, s = torch.zeros(1, mem.cfg.hidden), torch.zeros(1, mem.cfg.memory_dim)
    mem.gate[-1].bias.fill_(-20.0)  # a shut gate: the attention stays
    torch.testing.assert_close(mem(h, _one_hot(0), alpha, M, s)[2], alpha, atol=1e-6, rtol=0)
    mem.gate[-1].bias.fill_(20.0)
    assert mem(h, _one_hot(0), alpha, M, s)[2][0, mem.cells // 2] < 1e-3


def test_an_observation_write_needs_write_before_move():
    with pytest.raises(ValueError, match="write_before_move"):
        GameGANGenerator(GameGANConfig(**TINY, memory_write="observation"))


def _windows(eps, seq_len: int, seed: int = 0, rows=None) -> WindowSampler:
    """Windows of real TakeCover episodes (all of them, or ``rows``) for TINY's heads."""
    rows = np.arange(len(eps.lengths)) if rows is None else rows
    return WindowSampler(eps, "TakeCover", seq_len, 100.0, TINY["done_window"],
                         np.random.default_rng(seed), rows)


def _tiny_dream(seed: int = 0, heads: bool = False, noise: float | None = None,
                **config) -> GameGANDream:
    """A tiny untrained dream; ``heads``: with episode heads (reward, done, game variables
    from a GRU over the episode) instead of the generator's own; ``noise``: its encodings
    drawn with this std around the prediction."""
    torch.manual_seed(seed)
    if noise is not None:
        config["feedback"] = "encoding"
    cfg = GameGANConfig(**{**TINY, **config})
    episode_heads = EpisodeHeads(cfg.memory_dim + cfg.hidden + cfg.action_dim, cfg.gamevars,
                                 EpisodeHeadsConfig(hidden=8)) if heads else None
    return GameGANDream("TakeCover", GameGANGenerator(cfg), 100.0, episode_heads,
                        None if noise is None else torch.full((cfg.memory_dim,), noise))


def _contexts(n: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"frames": rng.integers(0, 255, (n, 1, 64, 64, 3), dtype=np.uint8),
            "actions": np.zeros((n, 0), np.int64), "gamevars": np.full((n, 1), 100.0, np.float32)}


@pytest.mark.parametrize("heads", [False, True], ids=["generator_heads", "episode_heads"])
def test_a_gamegan_dream_is_a_checked_gymnasium_env_with_the_real_spaces(heads):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    from dream_gym.envs.dream_env import DreamEnv
    from dream_gym.games import get_game

    for obs_type in ("pixels", "latent"):
        env = DreamEnv(_tiny_dream(heads=heads), obs_type=obs_type, contexts=_contexts())
        check_env(env, skip_render_check=False)
        sb3_check_env(env, warn=False)
    env = DreamEnv(_tiny_dream(heads=heads), contexts=_contexts())
    assert (env.observation_space, env.action_space) == get_game("TakeCover").real_spaces()


def test_a_saved_dream_with_episode_heads_loads_as_the_same_dream(tmp_path):
    from dream_gym.zoo import load_model

    dream = _tiny_dream(heads=True, noise=0.3)
    dream.save(tmp_path)
    again = load_model(tmp_path)
    frames = torch.from_numpy(_contexts()["frames"])

    def roll(d) -> torch.Tensor:
        s = seed_dreams(d.initial_state(frames, torch.zeros(4, 0, dtype=torch.long)),
                        torch.arange(4))
        for t in range(6):
            s, _ = d.imagine(s, torch.full((4,), t % 3), 1.0)
        return d.features(s)

    assert again.feature_dim == dream.feature_dim == 16 + 32 + 8
    torch.testing.assert_close(roll(again), roll(dream))

    # a dream that shows an agent only some blocks: the same dream, fewer features, saved so
    part = GameGANDream("TakeCover", dream.net, 100.0, dream.heads, dream.encoding_noise,
                        features="sg")
    part.save(tmp_path / "sg")
    again = load_model(tmp_path / "sg")
    assert again.feature_dim == part.feature_dim == 16 + 8
    full = roll(dream)
    torch.testing.assert_close(roll(again), torch.cat([full[:, :16], full[:, 48:]], -1))
    for bad, says in (("gs", "in that order"), ("shx", "in that order"),
                      ("", "in that order")):
        with pytest.raises(ValueError, match=says):
            GameGANDream("TakeCover", dream.net, heads=dream.heads, features=bad)
    with pytest.raises(ValueError, match="no episode heads"):
        GameGANDream("TakeCover", dream.net, features="sg")


PLACE_MEMORY = dict(write_before_move=True, memory_write="observation", empty_read="prediction",
                    memory_writes="seen", edge_walls=True, dynamic_frame=True)


@pytest.mark.parametrize("heads,noise,mixture,extra",
                         [(False, None, 0, {}), (True, None, 0, {}), (True, 0.3, 0, {}),
                          (True, None, 3, {}), (True, 0.3, 0, PLACE_MEMORY)],
                         ids=["generator_heads", "episode_heads", "encoding_noise", "mixture",
                              "place_memory"])
def test_a_gamegan_dream_is_the_same_alone_and_in_a_batch(heads, noise, mixture, extra):
    from dream_gym.envs.dream_env import DreamEnv
    from dream_gym.envs.vector import DreamVectorEnv

    dream = _tiny_dream(heads=heads, noise=noise, encoding_mixture=mixture, **extra)
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


def test_a_broadcast_renderer_draws_the_same_frames_alone_and_in_a_batch():
    """The pixels a dream shows, drawn by the spatial broadcast decoder (the Ms. Pac-Man
    recipe's), do not depend on the batch the dream runs in (to a level of rounding)."""
    from dream_gym.envs.dream_env import DreamEnv
    from dream_gym.envs.vector import DreamVectorEnv

    dream = _tiny_dream(heads=True, noise=0.3, dynamic_decoder="broadcast")
    venv = DreamVectorEnv(3, dream, contexts=_contexts())
    batched = [venv.reset(seed=7)[0]["screen"][1]]
    for t in range(6):
        batched.append(venv.step(np.full(3, t % 3))[0]["screen"][1])
    env = DreamEnv(dream, contexts=_contexts())
    alone = [env.reset(seed=8)[0]["screen"]]
    for t in range(6):
        obs, _, term, trunc, _ = env.step(t % 3)
        alone.append(obs["screen"])
        if term or trunc:
            break
    diff = np.abs(np.stack(alone).astype(int) - np.stack(batched)[: len(alone)].astype(int))
    assert diff.max() <= 1 and len(alone) > 1


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


@pytest.mark.parametrize("feedback", ["frame", "encoding"])
def test_with_encoding_feedback_the_dream_acts_from_its_prediction_not_its_render(feedback):
    """Another renderer changes where a "frame" dream goes (each render is encoded again and
    acted from) and only what an "encoding" dream shows (it acts from the engine's
    prediction, the loop the dynamics stage trains)."""
    dream = _tiny_dream(feedback=feedback)
    frames = torch.from_numpy(_contexts()["frames"])

    def roll() -> torch.Tensor:
        s = seed_dreams(dream.initial_state(frames, torch.zeros(4, 0, dtype=torch.long)),
                        torch.arange(4))
        for t in range(5):
            s, _ = dream.imagine(s, torch.full((4,), t % 3), 1.0)
        return dream.features(s)

    before = roll()
    torch.manual_seed(1)
    dream.net.renderer.load_state_dict(Renderer(dream.net.cfg).state_dict())
    assert torch.allclose(before, roll()) == (feedback == "encoding")


def test_encoding_noise_draws_the_next_encoding_around_the_prediction():
    """The same dream with and without encoding noise, the same seeds: z and the ends are
    drawn alike, so one step apart the encodings differ by the noise alone, whose spread
    over 512 dreams is the std asked for, scaled by sqrt(temperature)."""
    n, std = 512, 0.3
    frames = torch.from_numpy(_contexts(1)["frames"]).expand(n, -1, -1, -1, -1)

    def first_step(noise: float | None, tau: float) -> torch.Tensor:
        dream = _tiny_dream(noise=noise, feedback="encoding")
        s = seed_dreams(dream.initial_state(frames, torch.zeros(n, 0, dtype=torch.long)),
                        torch.arange(n))
        return dream.imagine(s, torch.ones(n, dtype=torch.long), tau)[0]["s"]

    for tau in (1.0, 0.25):
        diff = first_step(std, tau) - first_step(None, tau)
        spread = diff.std(0)
        assert ((spread / (std * tau ** 0.5) - 1).abs() < 0.15).all(), spread
    with pytest.raises(ValueError, match='feedback = "encoding"'):
        GameGANDream("TakeCover", GameGANGenerator(GameGANConfig(**TINY)), 100.0, None,
                     torch.ones(TINY["memory_dim"]))


def test_an_unknown_feedback_names_the_choices():
    with pytest.raises(ValueError, match="'frame', 'encoding'"):
        GameGANGenerator(GameGANConfig(**TINY, feedback="render"))


@pytest.fixture(scope="module")
def takecover_episodes(tmp_path_factory):
    d = tmp_path_factory.mktemp("tc_data")
    collect(CollectConfig(game="TakeCover", episodes=12, episodes_per_shard=6, workers=2,
                          seed=123), d)
    return load_episodes(d)


@pytest.mark.slow
def test_a_short_training_on_real_frames_lowers_the_frame_error_and_resumes(
        takecover_episodes, tmp_path, tb_scalars):
    """Three hundred updates of a tiny GameGAN (adversarial losses on) on real TakeCover
    frames: the logged reconstruction, reward and discriminator losses fall, the held-out
    open-loop frame error falls by half; a run stopped and resumed from its checkpoint ends
    where the uninterrupted one does, bit for bit."""
    eps = takecover_episodes
    ids = np.arange(len(eps.lengths))
    net_cfg = GameGANConfig(**TINY)
    d_cfg = TINY_D
    tcfg = GameGANTrainConfig(steps=300, batch_size=4, seq_len=6, warmup_start=3,
                              warmup_end=2, warmup_decay_steps=100, lr=2e-3, lr_disc=1e-3,
                              eval_every=1000, checkpoint_every=20, holdout=0.0,
                              autoencoder_steps=20, autoencoder_batch=16)

    def sampler(rows, seed):
        return _windows(eps, tcfg.seq_len, seed, rows)

    held = sampler(ids[-2:], 99).sample(16)
    torch.manual_seed(0)
    before = open_loop_error(GameGANGenerator(net_cfg), held, warm=1)
    net = train_gamegan(sampler(ids[:-2], 0), None, net_cfg, d_cfg, tcfg, tmp_path / "a",
                        torch.device("cpu"))
    after = open_loop_error(net, held, warm=1)
    assert after[:3].mean() < 0.5 * before[:3].mean(), (before, after)
    logged = tb_scalars(tmp_path / "a")
    first, last = ({k: np.mean(v[sl]) for k, v in logged.items()}  # logged every 10 updates
                   for sl in (slice(0, 5), slice(-5, None)))
    for name in ("losses/recon_l1", "losses/reward_mse"):
        assert last[name] < 0.5 * first[name], (name, logged[name])
    # the discriminators learn to tell real from generated (hinge losses start at 2 each)
    d = ("losses/d_frame", "losses/d_pair", "losses/d_time")
    assert sum(last[k] for k in d) < 0.85 * sum(first[k] for k in d), {k: logged[k] for k in d}
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


@pytest.mark.slow
def test_episode_heads_learn_reward_and_the_end_from_whole_real_episodes(takecover_episodes,
                                                                         tmp_path, tb_scalars):
    """The episode heads, fitted on a frozen tiny generator's teacher-forced inputs of whole
    real episodes, learn the reward and move their done loss below its start."""
    from torch.utils.tensorboard import SummaryWriter

    eps = takecover_episodes
    torch.manual_seed(0)
    net = GameGANGenerator(GameGANConfig(**TINY))
    cfg = EpisodeHeadsConfig(hidden=16, steps=80, batch_size=6, done_window=10)
    writer = SummaryWriter(str(tmp_path))
    heads, report = train_heads(net, eps, "TakeCover", np.arange(10), np.arange(10, 12),
                                100.0, cfg, writer)
    writer.close()
    logged = tb_scalars(tmp_path)
    reward, done = logged["heads/reward_mse"], logged["heads/done_bce"]
    assert np.mean(reward[-3:]) < 0.1 * reward[0], reward
    assert np.mean(done[-3:]) < 0.8 * done[0], done
    assert set(report) >= {"done_bce", "done_bce_base_rate", "done_bce_generator_head"}


@pytest.mark.slow
def test_the_dynamics_stage_learns_to_hand_the_renderer_the_next_frames_encoding(
        takecover_episodes, tmp_path, tb_scalars):
    """The autoencoder and dynamics stages alone (no adversarial update) on real TakeCover
    frames: the engine's error on the next frame's encoding, over 16-step windows of which
    12 run open loop, falls to less than half its start. (That the recipe's dream then
    slides its view with the strafing is measured by ``benchmarks/strafe_shift.py``: a model
    this small and this short does not.)"""
    eps = takecover_episodes
    net_cfg = GameGANConfig(**TINY)
    tcfg = GameGANTrainConfig(steps=0, holdout=0.0, autoencoder_steps=60, autoencoder_batch=16,
                              dynamics_steps=150, dynamics_batch=8, dynamics_seq_len=16,
                              dynamics_warmup=4)
    sampler = _windows(eps, 16)
    train_gamegan(sampler, None, net_cfg, TINY_D,
                  tcfg, tmp_path, torch.device("cpu"))
    mse = tb_scalars(tmp_path)["pretrain/dynamics_mse"]  # every 10 steps
    assert np.mean(mse[-3:]) < 0.5 * mse[0], mse
    # freeze_dynamics: adversarial updates after the same stages train the renderer and keep
    # what the dynamics stage taught (the stages repeat bit for bit from the seed)
    staged = train_gamegan(sampler, None, net_cfg, TINY_D,
                           tcfg, tmp_path / "again", torch.device("cpu")).state_dict()
    frozen = GameGANTrainConfig(**{**tcfg.__dict__, "steps": 10, "batch_size": 4, "seq_len": 6,
                                   "freeze_encoder": True, "freeze_dynamics": True,
                                   "checkpoint_every": 10})
    after = train_gamegan(sampler, None, net_cfg, TINY_D,
                          frozen, tmp_path / "frozen", torch.device("cpu")).state_dict()
    for k, v in staged.items():
        moved = not torch.equal(v, after[k])
        assert moved == k.startswith(("renderer.", "heads.")), k


def test_mirrored_dynamics_windows_flip_the_frames_and_swap_left_and_right(
        takecover_episodes):
    """``dynamics_mirror``: the second half of a batch is the same windows seen in a mirror,
    the encodings those of the flipped frames and MOVE_LEFT / MOVE_RIGHT exchanged; the
    first half and the draws are those of unmirrored windows."""
    from dream_gym.gamegan.training import DynamicsWindows, encode_frames

    eps = takecover_episodes
    G = GameGANGenerator(GameGANConfig(**TINY)).eval()
    sampler = _windows(eps, 6)
    cfg = GameGANTrainConfig(dynamics_seq_len=8)
    plain = DynamicsWindows(G, sampler, cfg)
    mirror = DynamicsWindows(G, sampler, GameGANTrainConfig(dynamics_seq_len=8,
                                                            dynamics_mirror=True))
    (s0, a0), (s1, a1) = (w.sample(np.random.default_rng(3), 6) for w in (plain, mirror))
    torch.testing.assert_close(s1[:3], s0[:3])
    torch.testing.assert_close(a1[:3], a0[:3])
    torch.testing.assert_close(a1[3:], a0[3:][..., [0, 2, 1]])
    assert a0[3:, :, 1:].sum() > 0  # the mirrored windows do strafe
    # s0[3:] are encodings of real frames; find them and encode their flipped frames
    with torch.no_grad():
        rows = torch.cdist(s0[3:].flatten(0, 1), plain.S).argmin(1).numpy()
        flipped = encode_frames(G, eps.frames[rows][:, :, ::-1])
    torch.testing.assert_close(s1[3:].flatten(0, 1), flipped)
    with pytest.raises(ValueError, match="mirror_actions"):
        DynamicsWindows(GameGANGenerator(GameGANConfig(**{**TINY, "mirror_actions": []})),
                        sampler, GameGANTrainConfig(dynamics_seq_len=8, dynamics_mirror=True))


class _CoinWorld:
    """A world whose encoding steps +u or -u at random each step (one action throughout):
    a model that draws one future steps by about |u|, one that predicts their mean by 0."""

    L, B = 6, 64

    def __init__(self, cfg: GameGANConfig) -> None:
        self.u = torch.zeros(cfg.memory_dim)
        self.u[:4] = 1.0
        self.a = torch.zeros(self.B, self.L - 1, cfg.action_dim)
        self.a[..., 0] = 1.0

    def windows(self) -> torch.Tensor:
        signs = torch.randint(0, 2, (self.B, self.L - 1, 1)) * 2.0 - 1.0
        start = torch.randn(self.B, 1, len(self.u)) * 0.5
        return torch.cat([start, start + torch.cumsum(signs * self.u, 1)], 1)

    def fit(self, G: GameGANGenerator, loss_of, updates: int = 300) -> None:
        """Adam on everything but the encoder and renderer, ``loss_of(windows, actions)``."""
        params = [p for n, p in G.named_parameters()
                  if not n.startswith(("encoder", "renderer"))]
        opt = torch.optim.Adam(params, lr=3e-3)
        for _ in range(updates):
            loss = loss_of(self.windows(), self.a)
            opt.zero_grad()
            loss.backward()
            opt.step()

    @torch.no_grad()
    def steps(self, G: GameGANGenerator, draw) -> torch.Tensor:
        """|step| in units of |u| of ``draw(state, inputs)``, the model's next encoding fed
        the true ones, after the first step's context: (L - 2, B)."""
        s = self.windows()
        state = G.initial_from_encoding(s[:, 0])
        out = []
        for k in range(self.L - 1):
            state, inputs = G.advance(state, self.a[:, k], torch.randn(self.B, G.cfg.z_dim))
            out.append(((draw(state, inputs) - s[:, k]) @ self.u / (self.u @ self.u)).abs())
            state["s"] = s[:, k + 1]
        return torch.stack(out[1:])


@pytest.mark.parametrize("posterior", [True, False])
def test_the_posterior_lets_the_dream_draw_one_future_instead_of_their_mean(posterior):
    """Trained as a conditional VAE, the engine's samples in the coin world (noise through
    the learned prior) step by about |u|, one way or the other; trained without the
    posterior, z carries nothing and the engine steps by about 0, the mean of the two
    futures (the blur that kept the TakeCover dream from reaching the wall)."""
    torch.manual_seed(0)
    G = GameGANGenerator(GameGANConfig(**{**TINY, "z_posterior": posterior}))
    world = _CoinWorld(G.cfg)
    tcfg = GameGANTrainConfig(dynamics_warmup=99, dynamics_kl_weight=0.1)
    world.fit(G, lambda s, a: _dynamics_loss(G, s, a, tcfg)[0])
    moved = world.steps(G, lambda state, inputs: inputs[-1]).mean().item()
    if posterior:
        assert moved > 0.6, moved
    else:
        assert moved < 0.3, moved


def test_an_encoding_mixture_draws_one_future_where_squared_error_drew_their_mean():
    """The engine fitted teacher-forced by the likelihood of an encoding mixture (as World
    Models' MDN-RNN): its draws in the coin world step by about |u|, one way or the other,
    at temperature 1, and almost never by about 0."""
    from dream_gym.gamegan.training import _mixture_loss

    torch.manual_seed(0)
    G = GameGANGenerator(GameGANConfig(**{**TINY, "encoding_mixture": 2}))
    world = _CoinWorld(G.cfg)
    world.fit(G, lambda s, a: _mixture_loss(G, s, a))
    D = G.cfg.memory_dim
    moved = world.steps(G, lambda state, inputs: G.sample_encoding(
        state["h"], torch.randn(len(state["h"]), D), torch.rand(len(state["h"])), 1.0))
    assert moved.mean() > 0.8 and (moved < 0.3).float().mean() < 0.05, moved.mean()


TINY_RECIPE = """
name = "tiny_gamegan"
game = "TakeCover"
family = "gamegan"
seed = 5
[collect]
episodes = 6
episodes_per_shard = 3
workers = 1
max_steps = 120
[gamegan]
z_dim = 4
hidden = 32
memory_grid = 5
memory_dim = 16
enc_width = 4
render_width = 4
mirror_actions = [[2, 1]]
done_window = 10
autoencoder_steps = 20
autoencoder_batch = 16
dynamics_steps = 20
dynamics_seq_len = 16
dynamics_batch = 8
dynamics_warmup = 2
z_posterior = true
feedback = "encoding"
encoding_noise = true
freeze_encoder = true
freeze_dynamics = true
steps = 4
batch_size = 2
seq_len = 6
warmup_start = 3
warmup_end = 2
warmup_decay_steps = 2
holdout = 0.0
[discriminators]
width = 4
temporal_width = 4
[heads]
hidden = 8
steps = 5
batch_size = 4
done_window = 10
[controller]
generations = 1
population = 4
rollouts = 1
max_steps = 40
eval_rollouts = 4
[iterate]
rounds = 1
episodes = 4
episodes_per_shard = 4
dynamics_steps = 60
dynamics_lr = 3e-3
check_episodes = 2
[context]
count = 4
"""


@pytest.mark.slow
def test_a_gamegan_recipe_round_refits_the_engine_to_the_controllers_real_play(tmp_path):
    """World Models' iterative procedure on a tiny GameGAN recipe, from no data: round 1
    plays the dream-trained controller in the real game, refits the engine on all real data
    (its encoding error on the controller's episodes falls below the first engine's), fits
    heads and noise again and exports a dream that loads, with the round's controller."""
    from dream_gym.checkpoint import load_json, load_tensors
    from dream_gym.data import concat_episodes
    from dream_gym.gamegan.training import DynamicsWindows
    from dream_gym.training.recipe import load_recipe, run_recipe
    from dream_gym.zoo import load_model

    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE)
    model_dir = run_recipe(recipe, tmp_path / "runs", torch.device("cpu"))
    run = tmp_path / "runs" / "tiny_gamegan"
    stages = load_json(run / "stages.json")
    for name in ("round1_collect", "round1_dynamics", "round1_controller", "round1_check"):
        assert name in stages, sorted(stages)
    played = load_episodes(run / "round1" / "data")
    assert len(played.lengths) == 4
    cfg = GameGANConfig(**{**TINY, "z_posterior": True, "feedback": "encoding"},
                        action_dim=3, gamevars=played.gamevars.shape[1])
    errors = []
    for weights in (run / "gamegan" / "final.safetensors", run / "round1" / "gamegan.safetensors"):
        G = GameGANGenerator(cfg)
        G.load_state_dict(load_tensors(weights))
        tcfg = GameGANTrainConfig(dynamics_seq_len=16, dynamics_warmup=2)
        both = concat_episodes([load_episodes(run / "data"), played])
        first_new = len(both.lengths) - len(played.lengths)
        ids = np.arange(first_new, len(both.lengths))
        windows = DynamicsWindows(G, WindowSampler(both, "TakeCover", 6, 100.0, 10,
                                                   np.random.default_rng(0), ids), tcfg)
        torch.manual_seed(0)
        with torch.no_grad():
            errors.append(float(_dynamics_loss(G, *windows.sample(np.random.default_rng(1), 32),
                                               tcfg)[1]))
    assert errors[1] < 0.8 * errors[0], errors
    # the round's engine (G, the last loaded) is the dream's, also after a rerun of the
    # recipe (every stage done: nothing may put the first dream back)
    for rerun in (False, True):
        if rerun:
            run_recipe(recipe, tmp_path / "runs", torch.device("cpu"))
        dream = load_model(model_dir)
        for k, v in G.engine.state_dict().items():
            torch.testing.assert_close(dream.net.engine.state_dict()[k], v, msg=k)
    assert dream.heads is not None and (model_dir / "controller.json").exists()
    # the round's refit, run again on the finished folder (benchmarks/gamegan_refit.py), is
    # the recipe's bit for bit; a setting passed to it changes the engine
    from dream_gym.gamegan.training import GameGANRun

    again = GameGANRun.load(load_recipe(recipe), run)
    again.refit(1, tmp_path / "refit", [tmp_path / "refit" / "model"])
    shipped = load_tensors(run / "round1" / "gamegan.safetensors")
    for k, v in load_tensors(tmp_path / "refit" / "gamegan.safetensors").items():
        assert torch.equal(v, shipped[k]), k
    again.refit(1, tmp_path / "adv", [tmp_path / "adv" / "model"], dynamics_teacher_share=0.5,
                dynamics_adversarial_weight=0.1, dynamics_adversarial_len=8)
    moved = load_tensors(tmp_path / "adv" / "gamegan.safetensors")
    assert not torch.equal(moved["engine.v2.weight"], shipped["engine.v2.weight"])
    assert load_model(tmp_path / "adv" / "model").feature_dim == dream.feature_dim
    # heads fitted on the dream's open loop instead of the game's view: other heads, a dream
    again.refit(1, tmp_path / "open", [tmp_path / "open" / "model"], heads={"inputs": "dream"})
    game_heads = load_tensors(run / "round1" / "heads.safetensors")
    open_heads = load_tensors(tmp_path / "open" / "heads.safetensors")
    assert not torch.equal(open_heads["out.weight"], game_heads["out.weight"])
    assert load_model(tmp_path / "open" / "model").heads is not None


def test_the_encoding_critics_game_side_is_what_an_agent_sees_in_the_game():
    """The adversarial dynamics term's game side (``_feature_rollout(teacher=True)``) is,
    step for step, what ``GameGANDream.observe`` hands an agent in the real game, [s, h]:
    the critic compares the dream with the features a controller will act on."""
    from dream_gym.gamegan.dream import to_unit
    from dream_gym.gamegan.training import _feature_rollout

    dream = _tiny_dream(noise=0.3)
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.integers(0, 255, (3, 7, 64, 64, 3), dtype=np.uint8))
    actions = torch.from_numpy(rng.integers(0, 3, (3, 6)))
    with torch.no_grad():
        s_true = dream.net.encoder(to_unit(frames.flatten(0, 1))).view(3, 7, -1)
        game = _feature_rollout(dream.net, s_true, dream._a(actions), warm=1, teacher=True)
    state = dream.initial_state(frames[:, :1], actions[:, :0])
    for k in range(6):
        state = dream.observe(state, actions[:, k], frames[:, k + 1])
        torch.testing.assert_close(dream.features(state), game[:, k])


def test_a_frame_too_small_for_the_discriminators_names_the_fix(tmp_path):
    net_cfg = GameGANConfig(**{**TINY, "frame_size": 8})
    with pytest.raises(ValueError, match="adversarial = false"):
        train_gamegan(None, None, net_cfg, DiscriminatorConfig(), GameGANTrainConfig(),
                      tmp_path, torch.device("cpu"))


def test_an_interrupted_dynamics_stage_resumes_where_it_stopped(takecover_episodes, tmp_path,
                                                                monkeypatch):
    """The dynamics stage checkpoints every ``checkpoint_every`` updates (weights, optimizer,
    both random streams); a run killed mid-stage and started again ends bit for bit where
    the uninterrupted one does, without training the autoencoder again."""
    from dream_gym.gamegan import training

    eps = takecover_episodes
    net_cfg = GameGANConfig(**TINY, **PLACE_MEMORY)
    tcfg = GameGANTrainConfig(steps=0, holdout=0.0, autoencoder_steps=10, autoencoder_batch=8,
                              dynamics_steps=12, dynamics_batch=4, dynamics_seq_len=8,
                              dynamics_warmup=4, checkpoint_every=5,
                              dynamics_read_loss="predicted", dynamics_gate_open_share=0.5)
    sampler = _windows(eps, 8)
    straight = train_gamegan(sampler, None, net_cfg, TINY_D, tcfg, tmp_path / "a",
                             torch.device("cpu")).state_dict()
    real_sample, calls = training.DynamicsWindows.sample_scene, []  # what the stage draws

    def killed_at_the_eighth(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 8:
            raise KeyboardInterrupt
        return real_sample(self, *args, **kwargs)

    monkeypatch.setattr(training.DynamicsWindows, "sample_scene", killed_at_the_eighth)
    with pytest.raises(KeyboardInterrupt):
        train_gamegan(_windows(eps, 8), None, net_cfg, TINY_D, tcfg, tmp_path / "b",
                      torch.device("cpu"))
    assert (tmp_path / "b" / "dynamics_ckpt" / "model_5.safetensors").exists()
    monkeypatch.setattr(training.DynamicsWindows, "sample_scene", real_sample)
    monkeypatch.setattr(training, "_pretrain_autoencoder", None)  # must not run again
    resumed = train_gamegan(_windows(eps, 8), None, net_cfg, TINY_D, tcfg, tmp_path / "b",
                            torch.device("cpu")).state_dict()
    for k, v in straight.items():
        assert torch.equal(v, resumed[k]), k
    assert not (tmp_path / "b" / "dynamics_ckpt").exists()  # done: the run's checkpoint has it


def test_a_diverging_dynamics_stage_stops_before_a_checkpoint(takecover_episodes, tmp_path):
    eps = takecover_episodes
    net_cfg = GameGANConfig(**TINY)
    tcfg = GameGANTrainConfig(steps=0, holdout=0.0, dynamics_steps=50, dynamics_batch=4,
                              dynamics_seq_len=8, dynamics_warmup=2, dynamics_lr=1e30,
                              grad_clip=1e30)
    sampler = _windows(eps, 8)
    with pytest.raises(FloatingPointError, match="diverged at update .* lower dynamics_lr"):
        train_gamegan(sampler, None, net_cfg, TINY_D,
                      tcfg, tmp_path, torch.device("cpu"))
    assert not (tmp_path / "ckpt").exists() and not (tmp_path / "dynamics_ckpt").exists()


def _sprite_world(episodes: int = 12, length: int = 60, seed: int = 0):
    """16x16 frames: a fixed dark background of coloured 4x4 blocks and a white 2x2 sprite
    that the action moves (up, right, left, down; others stay), as Ms. Pac-Man in her maze.
    Returns (episodes, the background (16, 16, 3), the sprite's top-left per frame)."""
    from dream_gym.data import Episodes

    rng = np.random.default_rng(seed)
    background = np.kron(rng.integers(0, 120, (4, 4, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    frames, actions, where = [], [], []
    moves = {1: (-1, 0), 2: (0, 1), 3: (0, -1), 4: (1, 0)}
    for _ in range(episodes):
        pos = rng.integers(0, 15, 2)
        for _ in range(length):
            frame = background.copy()
            frame[pos[0]:pos[0] + 2, pos[1]:pos[1] + 2] = 255
            frames.append(frame)
            where.append(pos.copy())
            a = int(rng.integers(0, 5))
            actions.append(a)
            pos = np.clip(pos + moves.get(a, (0, 0)), 0, 14)
    n = len(frames)
    eps = Episodes(np.stack(frames), np.asarray(actions, np.int64), np.zeros(n, np.float32),
                   np.zeros(n, bool), np.zeros((n, 1), np.float32),
                   np.full(episodes, length, np.int64))
    return eps, background, np.stack(where)


def _train_sprite_world(tmp_path, **net):
    """The autoencoder stage with ``scene_window`` on :func:`_sprite_world` (500 updates):
    (episodes, background, sprite corner per frame, the rows looked at, the sprite's pixels
    in each of them, their encodings (rows, 1 + scene frames, D), the mix, the static image
    (uint8), the masks)."""
    from dream_gym.gamegan.dream import to_uint8, to_unit
    from dream_gym.gamegan.training import _pretrain_autoencoder, scene_rows
    from dream_gym.training.common import make_writer

    eps, background, where = _sprite_world()
    cfg = GameGANConfig(**{**TINY, "frame_size": 16, "action_dim": 9, "mirror_actions": [],
                           **net})
    tcfg = GameGANTrainConfig(autoencoder_steps=500, autoencoder_batch=16, autoencoder_lr=2e-3,
                              scene_window=40, scene_frames=8, scene_mask_weight=0.01,
                              scene_motion_weight=20, scene_dynamic_weight=1,
                              keypoint_motion_weight=0.1)
    torch.manual_seed(0)
    G = GameGANGenerator(cfg)
    sampler = WindowSampler(eps, "MsPacman", 8, 1.0, 10, np.random.default_rng(0),
                            np.arange(len(eps.lengths)))
    _pretrain_autoencoder(G, sampler, tcfg, make_writer(tmp_path, tcfg))
    rows = np.arange(0, len(eps.frames), 7)
    picked = scene_rows(eps, rows, 40, 8, np.random.default_rng(1))
    with torch.no_grad():
        s = G.encoder(to_unit(torch.from_numpy(eps.frames[picked.reshape(-1)])))
        s = s.view(*picked.shape, -1)
        frame, images, masks = G.renderer([s.mean(1), s[:, 0]])
    on = np.zeros((len(rows), 16, 16), bool)
    for i, (y, x) in enumerate(where[rows]):
        on[i, y:y + 2, x:x + 2] = True
    return (eps, background, where, rows, on, s, to_uint8(frame).numpy(),
            to_uint8(images[0]).numpy(), masks)


def test_a_scene_window_teaches_the_static_component_the_scene_and_the_dynamic_one_the_sprite(
        tmp_path):
    """With ``scene_window`` the autoencoder stage feeds the static component what a stretch
    of frames shares and weighs what moved: the static component alone draws the
    background where the sprite is, the mix draws the sprite there (the Ms. Pac-Man
    recipe's disentangling, benchmarks/gamegan_disentangle.py, on a world small enough to
    train in seconds)."""
    eps, background, where, rows, on, _, mix, static, masks = _train_sprite_world(
        tmp_path, dynamic_decoder="broadcast")
    sprite_level = 255.0
    everywhere = np.broadcast_to(background, mix.shape).astype(float)
    bg = everywhere[on]
    static_on, mix_on = static[on].astype(float), mix[on].astype(float)
    # the static component draws the background under the sprite, the mix the sprite
    assert np.abs(static_on - bg).mean() < 0.5 * np.abs(static_on - sprite_level).mean()
    assert np.abs(mix_on - sprite_level).mean() < 0.5 * np.abs(static_on - sprite_level).mean()
    # the dynamic mask is open on the sprite and shut away from it (measured 0.94, 0.08)
    dynamic_mask = masks[:, 1].numpy()
    assert dynamic_mask[on].mean() > 0.7 and dynamic_mask[~on].mean() < 0.2
    # and away from it the static component draws the background (measured 6.8 levels off)
    off = ~on
    assert np.abs(static[off] - everywhere[off]).mean() < 20


def test_a_keypoint_encoding_follows_the_sprite(tmp_path):
    """With one keypoint, drawn to what moves, the encoding's last two numbers are where the
    sprite is (measured: 0.84 and 0.93 pixels off, correlation 0.98 and 0.96, after 500
    updates; without the motion loss the keypoint sat anywhere), and the keypoint decoder's
    mask opens on the sprite."""
    _, _, where, rows, on, s, _, _, masks = _train_sprite_world(
        tmp_path, dynamic_decoder="keypoints", keypoints=1)
    found = keypoint_pixels(s[:, 0, -2:], 16).numpy()  # (row, column)
    centre = where[rows] + 0.5
    assert np.abs(found - centre).mean() < 1.5
    for axis in (0, 1):
        assert np.corrcoef(found[:, axis], centre[:, axis])[0, 1] > 0.9
    dynamic_mask = masks[:, 1].numpy()
    assert dynamic_mask[on].mean() > 0.7 and dynamic_mask[~on].mean() < 0.2


@pytest.mark.parametrize("net, says", [
    (dict(keypoints=2), "keypoints = 2"),
    (dict(dynamic_decoder="keypoints"), "keypoints = 0"),
    (dict(dynamic_decoder="keypoints", keypoints=8), "raise memory_dim"),
    (dict(dynamic_decoder="sprites"), "use \"upsample\""),
])
def test_a_keypoint_setting_that_cannot_work_is_refused(net, says):
    with pytest.raises(ValueError, match=says):
        GameGANGenerator(GameGANConfig(**{**TINY, **net}))
