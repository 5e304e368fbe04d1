"""Train V (the ConvVAE) on collected frames, then encode every frame for M."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dream_gym.checkpoint import save_tensors
from dream_gym.data import Episodes
from dream_gym.training import ddp
from dream_gym.training.common import (
    load_training_state,
    make_writer,
    save_training_state,
    seed_everything,
)
from dream_gym.world_models.vae import ConvVAE, VAEConfig, to_input

__all__ = ["VAETrainConfig", "train_vae", "encode_episodes", "motion", "previous_frames"]


@dataclass
class VAETrainConfig:
    steps: int = 4000
    """Gradient steps (batch 100 each; the paper ran about 1M frames per epoch, we run fewer)."""
    batch_size: int = 100
    lr: float = 1e-3
    """Higher than the paper's 1e-4 because we take ~25x fewer steps."""
    motion_weight: float = 0.0
    """Extra reconstruction weight on what moved: a pixel's squared error counts
    ``1 + motion_weight * m`` times, m in [0, 1] its largest channel change since the
    episode's previous frame. Unweighted, TakeCover's V kept half of what its input frame
    shows of where the fireballs are (``benchmarks/object_probe.py``): a few pixels of a
    4,096-pixel frame cost the summed error almost nothing."""
    checkpoint_every: int = 250
    seed: int = 0


def previous_frames(episodes: Episodes) -> torch.Tensor:
    """(N,) index of each frame's predecessor in its episode (an episode's first frame: its
    own index)."""
    prev = torch.arange(len(episodes.frames)) - 1
    starts = torch.from_numpy(episodes.starts)
    prev[starts] = starts
    return prev


def motion(frames: torch.Tensor, idx: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    """(B, 1, S, S) in [0, 1]: each pixel of frames ``idx`` by its largest channel change
    from the previous frame of its episode (0 at an episode's first frame); ``prev`` from
    :func:`previous_frames`."""
    diff = (frames[idx].int() - frames[prev[idx]].int()).abs().amax(-1)
    return (diff.float() / 255.0).unsqueeze(1)


def train_vae(episodes: Episodes, model_cfg: VAEConfig, cfg: VAETrainConfig,
              run_dir: str | Path, device: torch.device) -> ConvVAE:
    """Train from scratch or resume from ``run_dir/ckpt``; writes TensorBoard to ``run_dir``.
    Under torchrun, data-parallel (:mod:`dream_gym.training.ddp`): ``batch_size`` is the
    global batch."""
    seed_everything(cfg.seed + ddp.rank())  # each process's own reparameterisation noise
    device = ddp.setup(device)
    run_dir = Path(run_dir)
    vae = ConvVAE(model_cfg).to(device)
    loss_of = ddp.parallel(vae)  # DDP under torchrun: each process trains on its share
    opt = torch.optim.Adam(vae.parameters(), lr=cfg.lr)
    progress = load_training_state(run_dir / "ckpt", vae, opt) or {"step": 0}
    writer = make_writer(run_dir, cfg)
    frames = torch.from_numpy(episodes.frames)
    prev = previous_frames(episodes)
    rng = np.random.default_rng(cfg.seed + progress["step"])
    bar = tqdm(range(progress["step"], cfg.steps), initial=progress["step"], total=cfg.steps,
               desc="train V", disable=not ddp.is_main())
    for step in bar:
        idx = ddp.share(torch.from_numpy(rng.integers(len(frames), size=cfg.batch_size)))
        x = to_input(frames[idx].to(device))
        weight = 1.0 + cfg.motion_weight * motion(frames, idx, prev).to(device) \
            if cfg.motion_weight else None
        loss, parts = loss_of(x, weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0:
            writer.add_scalar("losses/total", loss.item(), step)
            writer.add_scalar("losses/recon", parts["recon"], step)
            writer.add_scalar("losses/kl", parts["kl"], step)
            bar.set_postfix(recon=f"{parts['recon']:.1f}", kl=f"{parts['kl']:.1f}")
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            save_training_state(run_dir / "ckpt", vae, opt, {"step": step + 1})
    with torch.no_grad():
        x = to_input(frames[:: max(1, len(frames) // 8)][:8].to(device))
        writer.add_images("recon/real_top_model_bottom", torch.cat([x, vae(x)[0]]), cfg.steps)
    writer.close()
    return vae.eval()


@torch.no_grad()
def encode_episodes(vae: ConvVAE, episodes: Episodes, out_path: str | Path | None,
                    device: torch.device, batch_size: int = 1000) -> dict[str, np.ndarray]:
    """Posterior (mu, logvar) of every frame, saved to ``out_path`` (safetensors) unless
    it is None."""
    mus, logvars = [], []
    for i in tqdm(range(0, len(episodes.frames), batch_size), desc="encode"):
        x = to_input(torch.from_numpy(episodes.frames[i : i + batch_size]).to(device))
        mu, logvar = vae.encode(x)
        mus.append(mu.cpu())
        logvars.append(logvar.cpu())
    out = {"mu": torch.cat(mus), "logvar": torch.cat(logvars)}
    if out_path is not None:
        save_tensors(out_path, out)
    return {k: v.numpy() for k, v in out.items()}
