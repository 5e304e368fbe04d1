"""Load a shipped frame GAN: its generator, and the quality meter shipped beside it."""

from __future__ import annotations

from pathlib import Path

import torch

from dream_gym.checkpoint import load_json, load_state_dict, load_tensors
from dream_gym.frame_gan.model import GanConfig, Generator
from dream_gym.frame_gan.quality import GameClassifier, QualityMeter

__all__ = ["load_generator", "load_quality_meter", "sample"]


@torch.no_grad()
def sample(gen: Generator, n: int, seed: int = 0, batch: int = 500) -> torch.Tensor:
    """``n`` generated frames in [-1, 1] on the CPU, from seeded noise, in eval mode."""
    was_training = gen.training
    gen.eval()
    g = torch.Generator().manual_seed(seed)
    out = torch.cat([gen.sample(min(batch, n - i), g).cpu() for i in range(0, n, batch)])
    gen.train(was_training)
    return out


def load_generator(model_dir: str | Path, device: str | torch.device = "cpu",
                   cfg: GanConfig | None = None) -> Generator:
    """The generator of a ``frame_gan`` zoo folder (``cfg`` from its config.json if None)."""
    d = Path(model_dir)
    gen = Generator(cfg or GanConfig(**load_json(d / "config.json")["gan"]))
    load_state_dict(gen, d / "generator.safetensors")
    return gen.to(device).eval()


def load_quality_meter(model_dir: str | Path) -> QualityMeter:
    """The game classifier and real-frame statistics shipped beside the generator."""
    d = Path(model_dir)
    config = load_json(d / "config.json")
    games = tuple(config["games"])
    net = GameClassifier(len(games))
    load_state_dict(net, d / "classifier.safetensors")
    ref = load_tensors(d / "reference.safetensors")
    return QualityMeter(net, ref["mu"].double().numpy(), ref["cov"].double().numpy(), games)
