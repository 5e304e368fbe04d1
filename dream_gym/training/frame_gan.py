"""Train the Atari frame GAN on frames streamed live from the games, and measure it.

Stages of the recipe (``family = "frame_gan"``): a game classifier on real frames (the
quality figure's feature space), the real frames' feature statistics with the figure's floor
(two disjoint real sets) and ceiling (the untrained generator), the GAN itself (BCE with
logits, Adam betas (0.5, 0.999), as the Atari frame-GAN articles), and the trained
generator's figure.
Each stage is resumable; the GAN checkpoints both networks and their optimizers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from dream_gym.checkpoint import load_state_dict, load_tensors, save_json, save_tensors
from dream_gym.frame_gan.images import image_grid, to_uint8, to_unit
from dream_gym.frame_gan.load import load_generator, sample
from dream_gym.frame_gan.model import Discriminator, GanConfig, Generator
from dream_gym.frame_gan.quality import GameClassifier, QualityMeter, embed, gaussian_stats
from dream_gym.frame_gan.stream import FrameStream, StreamConfig
from dream_gym.training.common import (
    gradient_step,
    load_training_state,
    make_writer,
    pick,
    save_training_state,
    seed_everything,
)

__all__ = ["ClassifierTrainConfig", "GanTrainConfig", "train_classifier", "train_gan",
           "run_stages", "RECIPE_SECTIONS"]


@dataclass
class ClassifierTrainConfig:
    steps: int = 400
    batch_size: int = 64
    lr: float = 1e-3
    test_frames: int = 1500
    """Fresh real frames (another stream seed) that score the classifier."""
    seed: int = 0


@dataclass
class GanTrainConfig:
    steps: int = 5000
    batch_size: int = 64
    lr: float = 2e-4
    """The generator's learning rate (the Atari frame-GAN articles: 2e-4 or 1e-4)."""
    lr_disc: float | None = None
    """The discriminator's; None: ``lr``. Twice the generator's is the two-timescale rule."""
    beta1: float = 0.5
    beta2: float = 0.999
    grad_clip: float = 100.0
    """Only a guard against blow-ups; DCGAN trains unclipped."""
    image_every: int = 250
    """Steps between real/fake grids in TensorBoard."""
    quality_every: int = 500
    """Steps between Frechet distances (``quality_frames`` samples) in TensorBoard."""
    quality_frames: int = 500
    checkpoint_every: int = 250
    seed: int = 0


def _stream(recipe: dict[str, Any], seed: int) -> FrameStream:
    cfg = pick(StreamConfig, recipe.get("stream", {}), seed=seed)
    cfg.games = tuple(cfg.games)
    return FrameStream(cfg)


def _real_frames(stream: FrameStream, n: int) -> tuple[torch.Tensor, np.ndarray]:
    frames, labels = stream.batch(n)
    return to_unit(frames), labels


def train_classifier(stream: FrameStream, test_stream: FrameStream, cfg: ClassifierTrainConfig,
                     run_dir: Path, device: torch.device) -> tuple[GameClassifier, float]:
    """Which game is this frame from? Trained on live frames; returns it and its accuracy
    on ``cfg.test_frames`` frames of ``test_stream``."""
    seed_everything(cfg.seed)
    net = GameClassifier(len(stream.cfg.games)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    writer = make_writer(run_dir, cfg)
    for step in tqdm(range(cfg.steps), desc="game classifier"):
        x, y = _real_frames(stream, cfg.batch_size)
        loss = F.cross_entropy(net(x.to(device)), torch.from_numpy(y).to(device))
        gradient_step(opt, loss, net, 10.0)
        if step % 25 == 0:
            writer.add_scalar("classifier/loss", loss.item(), step)
    net.eval()
    x, y = _real_frames(test_stream, cfg.test_frames)
    with torch.no_grad():
        pred = torch.cat([net(x[i : i + 500].to(device)).argmax(-1).cpu()
                          for i in range(0, len(x), 500)])
    accuracy = float((pred.numpy() == y).mean())
    writer.add_scalar("classifier/test_accuracy", accuracy, cfg.steps)
    writer.close()
    return net, accuracy


def train_gan(stream: FrameStream, gan_cfg: GanConfig, cfg: GanTrainConfig, run_dir: Path,
              device: torch.device, meter: QualityMeter | None = None) -> Generator:
    """DCGAN on the live stream for ``cfg.steps``, resuming from ``run_dir/ckpt``.

    Discriminator step: real frames labelled 1, generated frames (detached) labelled 0;
    generator step: its frames labelled 1 (the non-saturating loss). The discriminator is
    saved before the generator, so a crash between the two leaves the discriminator at most
    one checkpoint ahead, which the resumed run simply continues from.
    """
    seed_everything(cfg.seed)
    gen, disc = Generator(gan_cfg).to(device), Discriminator(gan_cfg).to(device)
    betas = (cfg.beta1, cfg.beta2)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_disc or cfg.lr, betas=betas)
    load_training_state(run_dir / "ckpt" / "disc", disc, opt_d)
    progress = load_training_state(run_dir / "ckpt" / "gen", gen, opt_g) or {"step": 0}
    start = progress["step"]
    stream.rng = np.random.default_rng(stream.cfg.seed + start)
    torch.manual_seed(cfg.seed + start)
    fixed = torch.randn(64, gan_cfg.noise, generator=torch.Generator().manual_seed(cfg.seed))
    ones = torch.ones(cfg.batch_size, device=device)
    zeros = torch.zeros(cfg.batch_size, device=device)
    writer = make_writer(run_dir, cfg)
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="frame GAN")
    for step in bar:
        real = _real_frames(stream, cfg.batch_size)[0].to(device)
        fake = gen(torch.randn(cfg.batch_size, gan_cfg.noise, device=device))
        logit_real, logit_fake = disc(real), disc(fake.detach())
        loss_d = (F.binary_cross_entropy_with_logits(logit_real, ones)
                  + F.binary_cross_entropy_with_logits(logit_fake, zeros))
        gradient_step(opt_d, loss_d, disc, cfg.grad_clip)
        loss_g = F.binary_cross_entropy_with_logits(disc(fake), ones)
        gradient_step(opt_g, loss_g, gen, cfg.grad_clip)
        if step % 25 == 0:
            writer.add_scalar("losses/discriminator", loss_d.item(), step)
            writer.add_scalar("losses/generator", loss_g.item(), step)
            writer.add_scalar("charts/D_real", logit_real.sigmoid().mean().item(), step)
            writer.add_scalar("charts/D_fake", logit_fake.sigmoid().mean().item(), step)
            bar.set_postfix(D=f"{loss_d.item():.3f}", G=f"{loss_g.item():.3f}")
        if (step + 1) % cfg.image_every == 0:
            gen.eval()
            with torch.no_grad():
                grid = image_grid(to_uint8(gen(fixed.to(device))))
            gen.train()
            writer.add_image("fake", grid, step + 1, dataformats="HWC")
            writer.add_image("real", image_grid(to_uint8(real[:64])), step + 1,
                             dataformats="HWC")
        if meter is not None and (step + 1) % cfg.quality_every == 0:
            score = meter.score(sample(gen, cfg.quality_frames, seed=step))
            writer.add_scalar("quality/frechet", score["frechet"], step + 1)
            writer.add_scalar("quality/confident_share", score["confident_share"], step + 1)
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            save_training_state(run_dir / "ckpt" / "disc", disc, opt_d, {"step": step + 1})
            save_training_state(run_dir / "ckpt" / "gen", gen, opt_g, {"step": step + 1})
    writer.close()
    return gen.eval()


@dataclass
class QualityConfig:
    frames: int = 2000
    """Frames per set: the reference, a second real set (the floor), generated ones."""


RECIPE_SECTIONS: dict[str, tuple[type, ...]] = {
    "stream": (StreamConfig,),
    "gan": (GanConfig,),
    "train": (GanTrainConfig,),
    "classifier": (ClassifierTrainConfig,),
    "quality": (QualityConfig,),
}
"""Which dataclasses read each section of the frame GAN's recipe."""


def run_stages(r: dict[str, Any], run_dir: Path, stages, device: torch.device) -> Path:
    """The frame GAN recipe: classifier, reference statistics, GAN, final figure."""
    seed = r.get("seed", 0)
    model_dir = run_dir / "model"
    games = tuple(r.get("stream", {}).get("games", StreamConfig.games))
    gan_cfg = pick(GanConfig, r.get("gan", {}))
    n_ref = pick(QualityConfig, r.get("quality", {})).frames

    def classifier_stage():
        cfg = pick(ClassifierTrainConfig, r.get("classifier", {}), seed=seed)
        net, acc = train_classifier(_stream(r, seed + 1), _stream(r, seed + 2), cfg,
                                    run_dir / "classifier", device)
        save_tensors(model_dir / "classifier.safetensors", net.state_dict())
        return {"test_accuracy": acc, "test_frames": cfg.test_frames}

    stages.run("classifier", classifier_stage)
    net = GameClassifier(len(games))
    load_state_dict(net, model_dir / "classifier.safetensors")

    def reference_stage():
        # two disjoint sets of real frames (other stream seeds): the first is the reference,
        # the second gives the floor; an untrained generator (seeded as the GAN's) the ceiling
        ref_feats, _ = embed(net, _real_frames(_stream(r, seed + 3), n_ref)[0])
        mu, cov = gaussian_stats(ref_feats)
        save_tensors(model_dir / "reference.safetensors",
                     {"mu": torch.from_numpy(mu), "cov": torch.from_numpy(cov)})
        meter = QualityMeter(net, mu, cov, games)
        floor = meter.score(_real_frames(_stream(r, seed + 4), n_ref)[0])
        seed_everything(seed)
        ceiling = meter.score(sample(Generator(gan_cfg), n_ref, seed=seed + 5))
        return {"floor": floor, "ceiling": ceiling}

    stages.run("reference", reference_stage)
    ref = load_tensors(model_dir / "reference.safetensors")
    meter = QualityMeter(net, ref["mu"].numpy(), ref["cov"].numpy(), games)

    def gan_stage():
        tcfg = pick(GanTrainConfig, r.get("train", {}), seed=seed)
        gen = train_gan(_stream(r, seed), gan_cfg, tcfg, run_dir / "gan", device, meter)
        save_tensors(model_dir / "generator.safetensors", gen.state_dict())
        return {"steps": tcfg.steps, "batch_size": tcfg.batch_size}

    stages.run("gan", gan_stage)

    def quality_stage():
        gen = load_generator(model_dir, cfg=gan_cfg)
        frames = sample(gen, n_ref, seed=seed + 6)
        score = meter.score(frames)
        floor, ceiling = (stages.done["reference"][k]["frechet"] for k in ("floor", "ceiling"))
        score["gap_closed"] = (ceiling - score["frechet"]) / (ceiling - floor)
        Image.fromarray(image_grid(to_uint8(frames[:64]))).save(model_dir / "samples.png")
        real = _real_frames(_stream(r, seed + 4), 64)[0]
        Image.fromarray(image_grid(to_uint8(real))).save(model_dir / "real_samples.png")
        save_json(model_dir / "config.json", {
            "family": "frame_gan", "game": "+".join(games), "games": list(games),
            "gan": dataclasses.asdict(gan_cfg), "quality": score,
            "floor": floor, "ceiling": ceiling})
        return {"trained": score}

    stages.run("quality", quality_stage)
    return model_dir

