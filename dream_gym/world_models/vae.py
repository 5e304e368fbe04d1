"""V: the convolutional VAE of World Models (World Models, appendix: 64x64x3 -> z)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VAEConfig", "ConvVAE", "to_input"]


@dataclass
class VAEConfig:
    z_dim: int = 64
    kl_free_bits: float = 0.5
    """KL floor per latent dim (the official code: KL is clipped below at 0.5 * z_dim)."""


def to_input(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 64, 64, 3) frames -> float (..., 3, 64, 64) in [0, 1]."""
    return frames.movedim(-1, -3).float().div_(255.0)


class ConvVAE(nn.Module):
    """Encoder 4 x conv(k4, s2) -> 1024 -> (mu, logvar); decoder dense -> 4 x deconv -> sigmoid."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 32, 4, 2), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2), nn.ReLU(),
            nn.Conv2d(64, 128, 4, 2), nn.ReLU(),
            nn.Conv2d(128, 256, 4, 2), nn.ReLU(),
            nn.Flatten(),
        )
        self.mu = nn.Linear(1024, cfg.z_dim)
        self.logvar = nn.Linear(1024, cfg.z_dim)
        self.fc = nn.Linear(cfg.z_dim, 1024)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(1024, 128, 5, 2), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 5, 2), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 6, 2), nn.ReLU(),
            nn.ConvTranspose2d(32, 3, 6, 2), nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: float (B, 3, 64, 64) in [0, 1] -> (mu, logvar)."""
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, z_dim) -> float (B, 3, 64, 64) in [0, 1]. A dream renders the same function
        faster with :class:`~dream_gym.world_models.render.RenderDecoder`."""
        # The first deconv sees a 1x1 input, so it is a matrix multiply; computed as one it is
        # ~50x faster on CPU than conv_transpose2d (same weights, same result).
        first = self.decoder[0]
        k = first.kernel_size[0] * first.kernel_size[1]
        x = torch.addmm(first.bias.repeat_interleave(k), self.fc(z), first.weight.flatten(1))
        x = x.view(-1, first.out_channels, *first.kernel_size)
        return self.decoder[1:](x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decode(z), mu, logvar

    def loss(self, x: torch.Tensor, weight: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """Summed-L2 reconstruction + KL with a floor of kl_free_bits * z_dim (per frame).
        ``weight`` (B, 1, 64, 64): each pixel's squared error counted that many times (the
        motion weighting of :class:`~dream_gym.training.vae.VAETrainConfig`)."""
        recon, mu, logvar = self(x)
        err = F.mse_loss(recon, x, reduction="none")
        rec = (err if weight is None else err * weight).sum(dim=(1, 2, 3)).mean()
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)
        kl = kl.clamp(min=self.cfg.kl_free_bits * self.cfg.z_dim).mean()
        return rec + kl, {"recon": rec.item(), "kl": kl.item()}
