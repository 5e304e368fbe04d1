"""Train M (the MDN-RNN) on encoded episodes: windows of real sequences, z resampled each batch."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dream_gym.data import Episodes
from dream_gym.games import get_game
from dream_gym.training import ddp
from dream_gym.training.common import (
    gradient_step,
    load_training_state,
    make_writer,
    save_training_state,
    seed_everything,
)
from dream_gym.world_models.mdnrnn import MDNRNN, MDNRNNConfig

__all__ = ["MDNRNNTrainConfig", "train_mdnrnn", "held_out_loss", "SequenceSampler"]


@dataclass
class MDNRNNTrainConfig:
    steps: int = 3000
    batch_size: int = 64
    seq_len: int = 128
    lr: float = 1e-3
    grad_clip: float = 1.0
    latent: str = "mean"
    """Train on posterior means ("mean") or posterior samples ("sample")."""
    checkpoint_every: int = 250
    holdout: float = 0.0
    """Share of episodes held out of training; M is scored on them every ``eval_every``
    steps (TensorBoard ``held_out/``). 0 trains on every episode, as the shipped recipes do."""
    eval_every: int = 50
    open_loop: int = 0
    """Also train on open-loop stretches of this many steps, M fed its own samples
    (:meth:`MDNRNN.loss`); 0 trains teacher-forced only, as World Models did."""
    open_loop_temperature: float = 1.0
    open_loop_z_weight: float = 1.0
    """Weight of the open-loop z term; 0 trains only the reward, done and game-variable
    heads on M's own dreamed states (the dream's z keeps its teacher-forced spread)."""
    seed: int = 0


class SequenceSampler:
    """Random windows of ``seq_len`` transitions inside single episodes (zero-padded, masked).

    ``latent="mean"`` trains M on the posterior means, the z that V gives for real frames
    (and that the real-game latent wrapper feeds a controller). ``"sample"`` draws z from the
    posterior each time, as the official code did; with the KL floor our posterior std
    (~0.65) is three times the spread of the means (~0.2), so M learned that noise, and
    dreams sampled from it were driven by noise (see the model card).
    """

    def __init__(self, episodes: Episodes, mu: np.ndarray, logvar: np.ndarray, game: str,
                 gamevar_scale: float, seq_len: int, rng: np.random.Generator,
                 latent: str = "mean", done_window: int = 1) -> None:
        if latent not in ("mean", "sample"):
            raise ValueError(f"latent must be 'mean' or 'sample', got {latent!r}")
        self.ep, self.mu = episodes, mu
        self.std = np.exp(0.5 * logvar) if latent == "sample" else None
        self.game = get_game(game)
        self.gscale = gamevar_scale
        self.seq_len, self.rng = seq_len, rng
        self.done_window = done_window
        self.starts, self.lengths = episodes.starts, episodes.lengths

    def split(self, fraction: float, seed: int) -> tuple[SequenceSampler, SequenceSampler]:
        """(training, held-out) samplers over disjoint episodes; each episode is held out
        with probability ``fraction``, drawn from ``seed`` alone."""
        held = np.random.default_rng(seed).random(len(self.lengths)) < fraction
        parts = []
        for keep in (~held, held):
            s = copy.copy(self)
            s.starts, s.lengths = self.starts[keep], self.lengths[keep]
            parts.append(s)
        return parts[0], parts[1]

    def sample(self, batch: int) -> dict[str, torch.Tensor]:
        L = self.seq_len
        e = self.rng.integers(len(self.lengths), size=batch)
        # A window of L inputs needs L + 1 frames; the last transition of an episode has no
        # next frame on disk, so it is trained on done only (z target masked off by zmask).
        # A third of the windows start where every dream starts (h = 0), so M learns to
        # track hidden state (e.g. health) from the beginning; a third end with the episode,
        # so the rare done=1 transition (always the last) is seen about as often as it
        # happens in the game; a third lie anywhere.
        kind = self.rng.integers(3, size=batch)
        offs = [0 if k == 0 else max(0, n - L) if k == 1
                else int(self.rng.integers(max(1, n - L + 1)))
                for k, n in zip(kind, self.lengths[e], strict=True)]
        zdim = self.mu.shape[1]
        out = {
            "z": np.zeros((batch, L, zdim), np.float32),
            "z_next": np.zeros((batch, L, zdim), np.float32),
            "a": np.zeros((batch, L, self.game.action_dim), np.float32),
            "reward": np.zeros((batch, L), np.float32),
            "done": np.zeros((batch, L), np.float32),
            "gamevars": np.zeros((batch, L, self.ep.gamevars.shape[1]), np.float32),
            "mask": np.zeros((batch, L), np.float32),
            "zmask": np.zeros((batch, L), np.float32),
        }
        for i, (ei, off) in enumerate(zip(e, offs, strict=True)):
            s, n = int(self.starts[ei]), int(self.lengths[ei])
            t = np.arange(s + off, s + min(n, off + L))
            m = len(t)
            has_next = t + 1 < s + n
            tn = np.minimum(t + 1, s + n - 1)
            z, zn = self._latent(t), self._latent(tn)
            out["z"][i, :m], out["z_next"][i, :m] = z, zn
            out["a"][i, :m] = self.game.action_features(self.ep.actions[t])
            out["reward"][i, :m] = self.ep.rewards[t]
            # done target: the episode ends (is terminated, not cut) within done_window steps
            out["done"][i, :m] = self.ep.dones[s + n - 1] & (s + n - 1 - t < self.done_window)
            # side variables observed with the next frame
            out["gamevars"][i, :m] = self.ep.gamevars[tn] / self.gscale
            out["mask"][i, :m] = 1.0
            out["zmask"][i, :m] = has_next
        return {k: torch.from_numpy(v) for k, v in out.items()}

    def _latent(self, t: np.ndarray) -> np.ndarray:
        if self.std is None:
            return self.mu[t]
        return self.mu[t] + self.std[t] * self.rng.standard_normal(self.mu[t].shape, np.float32)


def held_out_loss(rnn: MDNRNN, batches: list[dict[str, torch.Tensor]],
                  device: torch.device, open_loop: int = 0) -> dict[str, float]:
    """M's loss parts, averaged over fixed held-out batches, and their sum; with
    ``open_loop``, also the open-loop parts (``open_loop_*``, see :meth:`MDNRNN.loss`)."""
    was_training = rnn.training
    rnn.eval()
    with torch.no_grad():
        rows = []
        for b in batches:
            b = {k: v.to(device) for k, v in b.items()}
            rows.append(rnn.loss(b["z"], b["a"], b["z_next"], b["reward"], b["done"],
                                 b["gamevars"], b["mask"], b["zmask"], open_loop)[1])
    rnn.train(was_training)
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    return out | {"total": sum(out.values())}


def train_mdnrnn(sampler: SequenceSampler, model_cfg: MDNRNNConfig, cfg: MDNRNNTrainConfig,
                 run_dir: str | Path, device: torch.device,
                 init: dict[str, torch.Tensor] | None = None) -> MDNRNN:
    """Train M for ``cfg.steps``, resuming from ``run_dir/ckpt``; ``init`` (a state dict)
    fine-tunes an existing M instead of starting from scratch. Under torchrun,
    data-parallel (:mod:`dream_gym.training.ddp`): ``batch_size`` is the global batch."""
    seed_everything(cfg.seed + ddp.rank())  # each process's own open-loop noise
    device = ddp.setup(device)
    run_dir = Path(run_dir)
    rnn = MDNRNN(model_cfg).to(device)
    if init is not None:
        rnn.load_state_dict(init)
    loss_of = ddp.parallel(rnn)  # DDP under torchrun: each process trains on its share
    opt = torch.optim.Adam(rnn.parameters(), lr=cfg.lr)
    progress = load_training_state(run_dir / "ckpt", rnn, opt) or {"step": 0}
    held_batches: list[dict[str, torch.Tensor]] = []
    if cfg.holdout > 0:
        sampler, held = sampler.split(cfg.holdout, cfg.seed)
        held.rng = np.random.default_rng(cfg.seed + 1)
        held_batches = [held.sample(cfg.batch_size) for _ in range(8)]
    sampler.rng = np.random.default_rng(cfg.seed + progress["step"])
    writer = make_writer(run_dir, cfg)

    def log_held_out(step: int) -> None:
        for k, v in held_out_loss(rnn, held_batches, device, cfg.open_loop).items():
            writer.add_scalar(f"held_out/{k}", v, step)

    if held_batches and progress["step"] == 0:
        log_held_out(0)
    bar = tqdm(range(progress["step"], cfg.steps), initial=progress["step"], total=cfg.steps,
               desc="train M", disable=not ddp.is_main())
    for step in bar:
        for g in opt.param_groups:  # cosine decay: M is trained for few steps, end it calm
            g["lr"] = cfg.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * step / cfg.steps)))
        b = {k: v.to(device) for k, v in ddp.share(sampler.sample(cfg.batch_size)).items()}
        loss, parts = loss_of(b["z"], b["a"], b["z_next"], b["reward"], b["done"],
                               b["gamevars"], b["mask"], b["zmask"], cfg.open_loop,
                               cfg.open_loop_temperature, cfg.open_loop_z_weight)
        gradient_step(opt, loss, rnn, cfg.grad_clip)
        if step % 25 == 0:
            for k, v in parts.items():
                writer.add_scalar(f"losses/{k}", v, step)
            bar.set_postfix(z=f"{parts['z_nll']:.3f}", done=f"{parts['done_bce']:.3f}",
                            **({"z_open_loop": f"{parts['open_loop_z_nll']:.3f}"}
                               if cfg.open_loop else {}))
        if held_batches and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
            log_held_out(step + 1)
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            save_training_state(run_dir / "ckpt", rnn, opt, {"step": step + 1})
    writer.close()
    return rnn.eval()
