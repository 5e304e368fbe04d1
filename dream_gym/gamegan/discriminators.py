"""GameGAN's three discriminators (Kim et al. 2020), spectrally normalised.

- single-frame: is this frame real? (its features also serve the feature-matching loss);
- action-conditioned: is (x_t, x_{t+1}) a real transition under action a_t? A projection
  on the action's embedding gives the logit; heads reconstruct a_t and the noise z_t from
  the pair (the info loss: a generator that ignores a or z is caught);
- temporal: is this window of frames a real sequence? (3-D convolutions over time).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["DiscriminatorConfig", "Discriminators", "EncodingCritic"]


@dataclass
class DiscriminatorConfig:
    width: int = 16
    """Channels of each discriminator's first conv (official 16)."""
    temporal_width: int = 32
    """Channels of the temporal discriminator's 3-D convs (official 64)."""


def _sn_conv(cin: int, cout: int, k: int = 4, s: int = 2, p: int = 1) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, k, s, p))


def _trunk(width: int, layers: int) -> nn.ModuleList:
    """Strided convs 3 -> w -> 2w -> ... each halving the side."""
    chans = [3] + [width * 2 ** i for i in range(layers)]
    return nn.ModuleList(_sn_conv(chans[i], chans[i + 1]) for i in range(layers))


def _run(trunk: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    for conv in trunk:
        x = F.leaky_relu(conv(x), 0.2)
    return x


class Discriminators(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig, action_dim: int, z_dim: int,
                 frame_size: int = 64) -> None:
        super().__init__()
        w = cfg.width
        side = frame_size // 16
        self.frame_trunk = _trunk(w, 4)  # S -> S / 16
        self.frame_out = spectral_norm(nn.Linear(8 * w * side * side, 1))
        self.pair_trunk = _trunk(w, 3)  # S -> S / 8, per frame
        self.pair_mix = _sn_conv(8 * w, 8 * w)  # both frames' maps -> S / 16
        feat = 128
        self.pair_feat = spectral_norm(nn.Linear(8 * w * side * side, feat))
        self.pair_out = spectral_norm(nn.Linear(feat, 1))
        self.action_embed = spectral_norm(nn.Linear(action_dim, feat, bias=False))
        self.action_recon = nn.Linear(feat, action_dim)
        self.z_recon = nn.Linear(feat, z_dim)
        tw = cfg.temporal_width
        self.time_trunk = _trunk(w, 2)  # S -> S / 4, per frame
        self.time_convs = nn.ModuleList([
            spectral_norm(nn.Conv3d(2 * w, tw, (3, 4, 4), (1, 2, 2), (1, 1, 1))),
            spectral_norm(nn.Conv3d(tw, tw, (3, 4, 4), (2, 2, 2), (1, 1, 1))),
        ])
        self.time_out = spectral_norm(nn.Linear(tw, 1))

    def frame(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N,), features (N, F)) of frames (N, 3, S, S)."""
        f = _run(self.frame_trunk, x).flatten(1)
        return self.frame_out(f).squeeze(-1), f

    def pair(self, x: torch.Tensor, x_next: torch.Tensor, a: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits (N,), action logits (N, A), z reconstruction (N, z)) of transitions."""
        both = _run(self.pair_trunk, torch.cat([x, x_next]))
        n = len(x)
        mixed = F.leaky_relu(self.pair_mix(torch.cat([both[:n], both[n:]], 1)), 0.2)
        phi = F.leaky_relu(self.pair_feat(mixed.flatten(1)), 0.2)
        logit = self.pair_out(phi).squeeze(-1) + (self.action_embed(a) * phi).sum(-1)
        return logit, self.action_recon(phi), self.z_recon(phi)

    def sequence(self, frames: torch.Tensor) -> torch.Tensor:
        """Logits (B,) of frame windows (B, T, 3, S, S)."""
        B, T = frames.shape[:2]
        f = _run(self.time_trunk, frames.flatten(0, 1))
        f = f.view(B, T, *f.shape[1:]).transpose(1, 2)  # (B, C, T, h, w)
        for conv in self.time_convs:
            f = F.leaky_relu(conv(f), 0.2)
        return self.time_out(f.mean((2, 3, 4))).squeeze(-1)


class EncodingCritic(nn.Module):
    """Is this window of features (B, T, D) (what an agent sees: frame encodings and the
    engine's state), under actions (B, T, A), from the game or from a dream? 1-D
    convolutions over time, spectrally normalised: a temporal discriminator for the dynamics
    stage, which never renders (so it is cheap). It sees the features standardised by the
    game's ``mean`` and ``std`` and their steps by the game's ``step_std``: raw encodings
    vary by a few hundredths, and a critic of them stayed at the hinge loss of chance."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, step_std: torch.Tensor,
                 action_dim: int, width: int = 128) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        # a feature the game never moves must not make the dream's least move look huge
        self.register_buffer("std", std.clamp_min(0.01 * float(std.mean()) + 1e-8))
        self.register_buffer("step_std", step_std.clamp_min(0.01 * float(step_std.mean()) + 1e-8))
        dim = len(mean)
        self.convs = nn.ModuleList([
            spectral_norm(nn.Conv1d(2 * dim + action_dim, width, 3, 1, 1)),
            spectral_norm(nn.Conv1d(width, width, 4, 2, 1)),
            spectral_norm(nn.Conv1d(width, width, 4, 2, 1)),
        ])
        self.out = spectral_norm(nn.Linear(width, 1))

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        step = torch.diff(s, dim=1, prepend=s[:, :1]) / self.step_std
        f = torch.cat([(s - self.mean) / self.std, step, a], -1).transpose(1, 2)
        for conv in self.convs:
            f = F.leaky_relu(conv(f), 0.2)
        return self.out(f.mean(-1)).squeeze(-1)
