"""DCGAN generator and discriminator for 64x64 frames (Radford et al. 2016; the Atari
frame-GAN articles)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["GanConfig", "Generator", "Discriminator", "MinibatchStd"]


@dataclass
class GanConfig:
    noise: int = 100
    """Size of the generator's Gaussian input (the Atari frame-GAN articles)."""
    gen_width: int = 64
    """Channels of the generator's last hidden layer (x2, x4, x8 below it)."""
    disc_width: int = 64
    disc_norm: str = "spectral"
    """"spectral": spectral normalisation of every discriminator layer (Miyato et al.) and
    no batch norm; "batch": DCGAN's batch norm. With batch norm the discriminator told our
    Atari frames from generated ones within 25 steps (loss 0.01) and the generator stalled
    (model card); spectral norm keeps its gradients useful."""
    minibatch_std: bool = True
    """Give the discriminator's last layer the batch's feature spread (ProGAN), so a batch
    that lacks variety is easy to catch: our three games are three near-static screens, and
    a generator that makes only one of them is the failure to expect."""
    size: int = 64

    def __post_init__(self) -> None:
        if self.disc_norm not in ("spectral", "batch"):
            raise ValueError(f"disc_norm must be 'spectral' or 'batch', got {self.disc_norm!r}")


def _init(m: nn.Module) -> None:
    """DCGAN's init: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """Noise (B, noise) -> frames (B, 3, 64, 64) in [-1, 1] (tanh)."""

    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        if cfg.size != 64:
            raise ValueError(f"the DCGAN generator makes 64x64 frames, got size={cfg.size}")
        self.cfg = cfg
        w = cfg.gen_width
        layers: list[nn.Module] = [nn.ConvTranspose2d(cfg.noise, w * 8, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(w * 8), nn.ReLU(True)]
        for c_in, c_out in ((w * 8, w * 4), (w * 4, w * 2), (w * 2, w)):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(True)]
        # the output layer has a bias (no batch norm follows it): Atari frames are mostly
        # black, and a bias reaches that background in a few steps
        layers += [nn.ConvTranspose2d(w, 3, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(_init)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.net(noise[:, :, None, None])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` frames from fresh noise (eval mode: batch norm uses its running stats)."""
        device = next(self.parameters()).device
        return self(torch.randn(n, self.cfg.noise, generator=generator).to(device))


class MinibatchStd(nn.Module):
    """Appends one channel: the feature standard deviation across the batch, averaged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spread = x.std(0).mean() if len(x) > 1 else x.new_zeros(())
        return torch.cat([x, spread.expand(len(x), 1, *x.shape[2:])], 1)


class Discriminator(nn.Module):
    """Frames (B, 3, 64, 64) -> one real/fake logit each (the loss is BCE with logits)."""

    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        w, spectral = cfg.disc_width, cfg.disc_norm == "spectral"

        def conv(c_in: int, c_out: int, stride: int, pad: int) -> nn.Module:
            c = nn.Conv2d(c_in, c_out, 4, stride, pad, bias=spectral)
            return nn.utils.parametrizations.spectral_norm(c) if spectral else c

        layers: list[nn.Module] = [conv(3, w, 2, 1), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in ((w, w * 2), (w * 2, w * 4), (w * 4, w * 8)):
            layers += [conv(c_in, c_out, 2, 1)]
            layers += [] if spectral else [nn.BatchNorm2d(c_out)]
            layers += [nn.LeakyReLU(0.2, True)]
        if cfg.minibatch_std:
            layers += [MinibatchStd()]
        layers += [conv(w * 8 + int(cfg.minibatch_std), 1, 1, 0)]
        self.net = nn.Sequential(*layers)
        if not spectral:
            self.apply(_init)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames).flatten()
