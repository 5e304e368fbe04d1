"""The shipped World Models dream learned the real game: measured on fresh real episodes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dream_gym.data import CollectConfig, collect, load_episodes
from dream_gym.evaluate import evaluate_random, summarize, welch_t
from dream_gym.rollout import dream_returns
from dream_gym.training.vae import VAETrainConfig, motion, previous_frames, train_vae
from dream_gym.world_models.vae import ConvVAE, VAEConfig, to_input
from dream_gym.zoo import load_contexts

pytestmark = pytest.mark.slow  # real VizDoom episodes and training


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """Real episodes from seeds the recipe never used (its seed is 0)."""
    d = tmp_path_factory.mktemp("heldout")
    collect(CollectConfig(game="TakeCover", episodes=12, episodes_per_shard=6, workers=2,
                          seed=777), d)
    return load_episodes(d)


def test_vae_training_reduces_heldout_reconstruction_error(held_out):
    torch.manual_seed(0)
    frames = torch.from_numpy(held_out.frames)
    train, test = to_input(frames[::2]), to_input(frames[1::2][:256])
    vae = ConvVAE(VAEConfig(z_dim=64))
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)

    def test_error() -> float:
        with torch.no_grad():
            return float((vae.decode(vae.encode(test)[0]) - test).pow(2).mean())

    before = test_error()
    for _ in range(60):
        batch = train[torch.randint(len(train), (32,))]
        loss, _ = vae.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert test_error() < 0.5 * before


def test_motion_weighted_vae_keeps_more_of_what_moves(held_out, tmp_path):
    """V trained with ``motion_weight`` reconstructs the pixels that changed since the
    previous frame (fireballs, monsters, the view while strafing) better on frames it did
    not train on than the same V trained alike without it."""
    half = int(held_out.starts[6])
    train = dataclasses.replace(held_out, **{k: getattr(held_out, k)[:half] for k in (
        "frames", "actions", "rewards", "dones", "gamevars")}, lengths=held_out.lengths[:6])
    frames = torch.from_numpy(held_out.frames)
    idx = torch.arange(half, len(frames))[:1000]
    moved = motion(frames, idx, previous_frames(held_out)) > 0.1
    x = to_input(frames[idx])
    errors = {}
    for weight in (0.0, 20.0):
        cfg = VAETrainConfig(steps=400, batch_size=32, motion_weight=weight)
        vae = train_vae(train, VAEConfig(), cfg, tmp_path / str(weight), torch.device("cpu"))
        with torch.no_grad():
            err = (vae.decode(vae.encode(x)[0]) - x).pow(2).sum(1, keepdim=True)
        errors[weight] = (float(err[moved].mean()), float(err[~moved].mean()))
    assert moved.float().mean() > 0.01  # real frames move
    assert errors[20.0][0] < 0.85 * errors[0.0][0], errors  # 0.77 at 300 steps, 0.69 at 600


def test_shipped_vae_reconstructs_heldout_frames(takecover, held_out):
    x = to_input(torch.from_numpy(held_out.frames[:500]))
    with torch.no_grad():
        recon = takecover.vae.decode(takecover.vae.encode(x)[0])
    mse = float((recon - x).pow(2).mean())
    per_frame_var = float(x.var(dim=0).mean())  # predicting the mean frame scores this
    # TakeCover frames vary little (a static room); the shipped V explains ~70% of it.
    assert mse < 0.4 * per_frame_var, (mse, per_frame_var)
    # a dream renders with forward convolutions (RenderDecoder): the same frames in float32
    from dream_gym.world_models.render import RenderDecoder

    with torch.no_grad():
        fast = RenderDecoder(takecover.vae)(takecover.vae.encode(x[:64])[0])
    torch.testing.assert_close(fast, recon[:64], atol=1e-5, rtol=0)
    # a dream may render in bfloat16 (render_bf16, on where the CPU has it natively): pixels
    # within 2 levels of float32's on these real frames' latents, the same alone and batched
    state = {"z": takecover.vae.encode(x[:64])[0]}
    kept = takecover.render_bf16
    try:
        takecover.render_bf16 = False
        full = takecover.render(state).int()
        takecover.render_bf16 = True
        half = takecover.render(state).int()
        alone = takecover.render({"z": state["z"][5:6]}).int()
    finally:
        takecover.render_bf16 = kept
    assert (half - full).abs().max() <= 2 and (half - full).abs().float().mean() < 0.5
    assert torch.equal(alone[0], half[5])


def test_mdnrnn_predicts_heldout_next_latents_and_deaths(takecover, held_out):
    """Next-z likelihood beats a Gaussian centred on the current z; the done head ranks the
    steps within its window of a death above the others."""
    spec = takecover.spec
    nll_m, nll_copy, done_p, done_y = [], [], [], []
    with torch.no_grad():
        for s, n in zip(held_out.starts, held_out.lengths, strict=True):
            f = torch.from_numpy(held_out.frames[s : s + n])
            z = takecover.vae.encode(to_input(f))[0]
            a = torch.from_numpy(spec.action_features(held_out.actions[s : s + n]))
            o, _ = takecover.rnn(z[None], a[None])
            zt, zn = z[:-1], z[1:]
            log_pi = torch.log_softmax(o.logit_pi[0, :-1], -1)
            sig = o.log_sigma[0, :-1].exp()
            log_n = torch.distributions.Normal(o.mu[0, :-1], sig).log_prob(zn[..., None])
            nll_m.append(-torch.logsumexp(log_pi + log_n, -1).mean())
            resid_sd = (zn - zt).std(0, keepdim=True).clamp(min=1e-3)
            nll_copy.append(-torch.distributions.Normal(zt, resid_sd).log_prob(zn).mean())
            done_p.append(torch.sigmoid(o.done_logit[0]))
            to_end = torch.arange(n - 1, -1, -1)
            done_y.append(bool(held_out.dones[s + n - 1])
                          & (to_end < takecover.rnn.cfg.done_window))
    assert float(torch.stack(nll_m).mean()) < float(torch.stack(nll_copy).mean()) - 0.1
    p, y = torch.cat(done_p), torch.cat(done_y)
    # AUC: a random dying step outranks a random living step
    pos, neg = p[y], p[~y]
    auc = float((pos[:, None] > neg[None, :]).float().mean())
    assert auc > 0.8, auc


def test_dream_lifetime_of_random_policy_matches_the_real_game(takecover):
    """A random policy lives about as long in the dream (tau=1) as in VizDoom."""
    n = 200
    ctx = load_contexts("takecover")
    idx = torch.arange(n) % len(ctx["frames"])
    g = torch.Generator().manual_seed(0)
    ret, _ = dream_returns(takecover, lambda x, rows: torch.randint(3, (len(rows),),
                                                                     generator=g),
                           ctx["frames"][idx], ctx["actions"][idx], 1.0, 2100, torch.arange(n))
    real = evaluate_random("TakeCover", 30, seed=4242, progress=False)
    dream_mean = float(ret.mean())
    assert 0.5 * real["mean"] < dream_mean < 2.0 * real["mean"], (dream_mean, real["mean"])


def test_dream_ranks_fixed_policies_as_the_real_game_does(takecover):
    """In VizDoom, running into a wall and staying there dies much sooner (about 180 steps)
    than sweeping from wall to wall (alternating every 50 steps: about 550). A dream that
    does not know this cannot teach a controller to dodge."""
    n = 256
    ctx = load_contexts("takecover")
    idx = torch.arange(n) % len(ctx["frames"])
    seeds = torch.arange(n) + 10_000

    def lifetimes(policy):
        ret, _ = dream_returns(takecover, policy, ctx["frames"][idx], ctx["actions"][idx],
                               1.15, 2100, seeds)
        return summarize(ret.tolist())

    step = {"t": 0}

    def sweep(x, rows):
        step["t"] += 1
        return torch.full((len(rows),), 1 if (step["t"] // 50) % 2 == 0 else 2)

    wall = lifetimes(lambda x, rows: torch.ones(len(rows), dtype=torch.long))
    sweeping = lifetimes(sweep)
    assert welch_t(sweeping, wall) > 3.0, (sweeping["mean"], wall["mean"])


def test_mdnrnn_training_scores_held_out_episodes(takecover, held_out, tmp_path):
    """With ``holdout``, whole episodes are kept out of training and M's loss on them is
    logged; a short run of a small M lowers it (it learns, it does not only memorise)."""
    import numpy as np
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from dream_gym.training.mdnrnn import MDNRNNTrainConfig, SequenceSampler, train_mdnrnn
    from dream_gym.world_models.mdnrnn import MDNRNNConfig

    with torch.no_grad():
        mu, logvar = takecover.vae.encode(to_input(torch.from_numpy(held_out.frames)))
    sampler = SequenceSampler(held_out, mu.numpy(), logvar.numpy(), "TakeCover",
                              takecover.gamevar_scale, 32, np.random.default_rng(0), "mean", 30)
    train, held = sampler.split(0.25, seed=0)
    assert set(train.starts).isdisjoint(held.starts)
    assert len(train.starts) + len(held.starts) == len(held_out.lengths) and len(held.starts)
    cfg = MDNRNNTrainConfig(steps=60, batch_size=8, seq_len=32, lr=3e-3, holdout=0.25,
                            eval_every=30)
    train_mdnrnn(sampler, MDNRNNConfig(hidden=64, done_window=30), cfg, tmp_path,
                 torch.device("cpu"))
    nll = [e.value for e in EventAccumulator(str(tmp_path)).Reload().Scalars("held_out/z_nll")]
    assert len(nll) == 3 and nll[-1] < nll[0] - 0.1, nll


def test_open_loop_training_lowers_open_loop_error(takecover, held_out, tmp_path):
    """Trained also on stretches where it is fed its own samples (``open_loop``), a small
    M predicts held-out real futures better open-loop, as a dream runs it, than the same M
    trained teacher-forced only."""
    import numpy as np

    from dream_gym.training.mdnrnn import (
        MDNRNNTrainConfig,
        SequenceSampler,
        held_out_loss,
        train_mdnrnn,
    )
    from dream_gym.world_models.mdnrnn import MDNRNNConfig

    with torch.no_grad():
        mu, logvar = takecover.vae.encode(to_input(torch.from_numpy(held_out.frames)))
    sampler = SequenceSampler(held_out, mu.numpy(), logvar.numpy(), "TakeCover",
                              takecover.gamevar_scale, 64, np.random.default_rng(0), "mean", 30)
    train, held = sampler.split(0.25, seed=0)
    held.rng = np.random.default_rng(1)
    batches = [held.sample(16) for _ in range(4)]
    scores = {}
    for open_loop in (0, 16):
        train.rng = np.random.default_rng(0)
        cfg = MDNRNNTrainConfig(steps=200, batch_size=16, seq_len=64, lr=3e-3,
                                open_loop=open_loop, checkpoint_every=1000)
        rnn = train_mdnrnn(train, MDNRNNConfig(hidden=64, done_window=30), cfg,
                           tmp_path / str(open_loop), torch.device("cpu"))
        torch.manual_seed(0)
        scores[open_loop] = held_out_loss(rnn, batches, torch.device("cpu"), open_loop=16)
    assert scores[16]["open_loop_z_nll"] < scores[0]["open_loop_z_nll"] - 0.2, scores
