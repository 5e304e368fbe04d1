"""GTM-SM (Fraccaro et al. 2018): a state-space model of where the agent is, a VAE of what
it sees, and a DND memory that ties the two together.

The SSM state ``s`` is a learned 2-D position: ``s_t = s_{t-1} + g * B a_t + sigma * eps``,
where ``B a_t`` is the learned displacement of action ``a_t`` and the wall gate
``g = sigmoid(MLP(s_{t-1} + B a_t))`` cancels moves that would leave the world. Every frame's
encoding ``q(z | x)`` is stored in the DND under the state it was seen at; the prior of a
later frame is a mixture over the ``k`` stored encodings nearest to the current state, with
weights proportional to ``1 / (d^2 + delta)`` (Pritzel et al.'s DND kernel).

Two departures from the paper, both for training from scratch on a small budget:
- Every step's prior reads the memory written before it (not only the prediction phase's),
  so a revisit during memorisation already trains ``B`` and the gate; 75% of a random walk's
  steps are revisits, the paper's 32 prediction steps per sequence are few.
- The mixture keeps a 1% standard-normal component, so a first visit (nothing to retrieve)
  costs a bounded KL instead of dragging the state towards an unrelated memory.
- Where frames are seen (the memorisation phase, in training and in a dream's context),
  inference takes a move as blocked when the frame did not change, instead of asking the
  gate; the gate learns to predict exactly that (binary cross-entropy) and alone moves the
  state where no frame is seen (prediction). A third of a random walk's moves push into a
  wall: with the gate still unsure, each one shifted every later state, the projected
  positions lost their meaning and the gate could not learn where the walls are.
  The GTM-SM paper's Appendix D also lets inference use the frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GTMSMConfig", "GTMSM", "to_input", "frame_changed"]


@dataclass
class GTMSMConfig:
    frame: int = 8
    """Side of the square frames (8: the 8x8 crops of image navigation)."""
    z_dim: int = 16
    state_dim: int = 2
    actions: int = 5
    hidden: int = 256
    gate_hidden: int = 64
    transition_std: float = 0.01
    neighbours: int = 5
    delta: float = 1e-3
    novelty: float = 0.01
    """Weight of the standard-normal component of the prior (a first visit's fallback)."""


def to_input(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (..., S, S, 3) -> float (..., 3 * S * S) in [0, 1]."""
    return frames.flatten(-3).float().div(255.0)


def _log_normal(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mu, exp(logvar)) summed over the last dim."""
    return -0.5 * (((x - mu) ** 2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)


def frame_changed(frames: torch.Tensor) -> torch.Tensor:
    """(B, T + 1, S, S, 3) uint8 -> (B, T) float: 1 where a frame differs from the one before."""
    return (frames[:, 1:] != frames[:, :-1]).flatten(2).any(-1).float()


class GTMSM(nn.Module):
    """The networks and the memory read; the dream wrapper lives in :mod:`.model`."""

    def __init__(self, cfg: GTMSMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        pixels = 3 * cfg.frame * cfg.frame
        self.encoder = nn.Sequential(nn.Linear(pixels, cfg.hidden), nn.ELU(),
                                     nn.Linear(cfg.hidden, cfg.hidden), nn.ELU(),
                                     nn.Linear(cfg.hidden, 2 * cfg.z_dim))
        self.decoder = nn.Sequential(nn.Linear(cfg.z_dim, cfg.hidden), nn.ELU(),
                                     nn.Linear(cfg.hidden, cfg.hidden), nn.ELU(),
                                     nn.Linear(cfg.hidden, pixels))
        self.displacement = nn.Linear(cfg.actions, cfg.state_dim, bias=False)  # B
        self.gate = nn.Sequential(nn.Linear(cfg.state_dim, cfg.gate_hidden), nn.Tanh(),
                                  nn.Linear(cfg.gate_hidden, cfg.gate_hidden), nn.Tanh(),
                                  nn.Linear(cfg.gate_hidden, 1))
        # Gaussian pixel likelihood with one learned std: a Bernoulli likelihood of
        # continuous pixels is so flat that the VAE ignored z (posterior collapse).
        self.log_sigma = nn.Parameter(torch.tensor(math.log(0.1)))

    # --- VAE ------------------------------------------------------------------------------
    def encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(to_input(frames)).chunk(2, -1)
        return mu, logvar.clamp(-8.0, 4.0)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """z (..., z_dim) -> mean pixels (..., 3 * S * S) in [0, 1]."""
        return torch.sigmoid(self.decoder(z))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (..., z_dim) -> uint8 frames (..., S, S, 3)."""
        S = self.cfg.frame
        x = self.decode_mean(z).view(*z.shape[:-1], S, S, 3)
        return (x * 255).round_().to(torch.uint8)

    def recon_nll(self, z: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """-log p(x | z), summed over pixels."""
        log_sigma = self.log_sigma.clamp(min=math.log(0.01))
        err = (self.decode_mean(z) - to_input(frames)) * torch.exp(-log_sigma)
        return (0.5 * err**2 + log_sigma + 0.5 * math.log(2 * math.pi)).sum(-1)

    # --- SSM ------------------------------------------------------------------------------
    def step_mean(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """E[s_t | s_{t-1}, a_t]: a one-hot (..., actions) -> (..., state_dim)."""
        d = self.displacement(a)
        return s + torch.sigmoid(self.gate(s + d)) * d

    def roll_states(self, actions: torch.Tensor, noise: torch.Tensor | None = None,
                    gates: list[torch.Tensor] | None = None,
                    moved: torch.Tensor | None = None) -> torch.Tensor:
        """States (B, T + 1, state_dim) from the origin through one-hot ``actions`` (B, T, A);
        ``noise`` (B, T, state_dim) standard normals, scaled by the transition std. The gate
        logits of each step are appended to ``gates`` when given. ``moved`` (B, T): 1 where
        the frame changed, 0 where it did not, NaN where no frame is seen; it replaces the
        gate where it is not NaN."""
        B, T = actions.shape[:2]
        s = actions.new_zeros(B, self.cfg.state_dim)
        out = [s]
        for t in range(T):
            d = self.displacement(actions[:, t])
            logit = self.gate(s + d)
            g = torch.sigmoid(logit)
            if moved is not None:
                g = torch.where(torch.isnan(moved[:, t, None]), g, moved[:, t, None])
            s = s + g * d
            if noise is not None:
                s = s + self.cfg.transition_std * noise[:, t]
            if gates is not None:
                gates.append(logit[:, 0])
            out.append(s)
        return torch.stack(out, 1)

    # --- DND ------------------------------------------------------------------------------
    def read(self, query: torch.Tensor, keys: torch.Tensor, valid: torch.Tensor | None = None,
             neighbours: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """k nearest keys (B, M, D) of each query (B, Q, D): (weights (B, Q, k), index (B, Q, k)).

        Weights are 1 / (d^2 + delta), normalised; ``valid`` (B, Q, M) masks keys a query may
        not see (the future, during training), and weights of masked picks are 0."""
        d2 = torch.cdist(query, keys).pow(2)
        if valid is not None:
            d2 = d2.masked_fill(~valid, float("inf"))
        k = min(neighbours or self.cfg.neighbours, keys.shape[1])
        d2k, idx = d2.topk(k, -1, largest=False)
        w = 1.0 / (d2k + self.cfg.delta)
        w = torch.where(torch.isfinite(d2k), w, torch.zeros_like(w))
        return w / w.sum(-1, keepdim=True).clamp_min(1e-12), idx

    def prior_log_prob(self, z: torch.Tensor, w: torch.Tensor, mu: torch.Tensor,
                       logvar: torch.Tensor) -> torch.Tensor:
        """log of the memory mixture (plus the novelty component) at z (B, Q, z_dim);
        w (B, Q, k), mu / logvar (B, Q, k, z_dim) of the retrieved encodings."""
        nov = self.cfg.novelty
        has = (w.sum(-1, keepdim=True) > 0).float()  # no memory yet: the standard normal
        logw = torch.log(w * (1 - nov) * has + 1e-30)
        comp = logw + _log_normal(z.unsqueeze(-2), mu, logvar)
        std = torch.log(nov + (1 - nov) * (1 - has.squeeze(-1))) \
            + _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        return torch.logsumexp(torch.cat([comp, std.unsqueeze(-1)], -1), -1)

    # --- training ---------------------------------------------------------------------------
    def loss(self, frames: torch.Tensor, actions: torch.Tensor, memorize: int,
             neighbours: int | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Negative ELBO per frame of sequences ``frames`` (B, T + 1, S, S, 3) uint8 and one-hot
        ``actions`` (B, T, A): every step's prior reads the memory of the steps before it,
        capped at the first ``memorize`` steps (the memorisation phase). ``neighbours``
        overrides k (the trainer's curriculum reads more of the memory early on)."""
        B, T1 = frames.shape[:2]
        gates: list[torch.Tensor] = []
        changed = frame_changed(frames)
        seen = torch.arange(T1 - 1, device=frames.device) < memorize
        moved = torch.where(seen, changed, torch.full_like(changed, float("nan")))
        s = self.roll_states(actions, torch.randn(B, T1 - 1, self.cfg.state_dim,
                                                  device=frames.device), gates, moved)
        moves = 1.0 - actions[..., 0]  # every action but "stay" (index 0) moves
        gate_bce = (F.binary_cross_entropy_with_logits(torch.stack(gates, 1), changed,
                                                       reduction="none") * moves).sum() \
            / moves.sum().clamp_min(1.0)
        mu, logvar = self.encode(frames)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = self.recon_nll(z, frames)
        t = torch.arange(T1, device=frames.device)
        valid = (t[None, :] < t[:, None]) & (t[None, :] < memorize)  # (T1 query, T1 key)
        w, idx = self.read(s, s, valid.expand(B, T1, T1), neighbours)
        gather = idx.flatten(1).unsqueeze(-1).expand(-1, -1, self.cfg.z_dim)
        kmu = mu.gather(1, gather).view(*idx.shape, -1)
        klv = logvar.gather(1, gather).view(*idx.shape, -1)
        kl = _log_normal(z, mu, logvar) - self.prior_log_prob(z, w, kmu, klv)
        per_frame = recon + kl
        pred = t >= memorize
        stats = {"recon": recon.mean().item(), "kl": kl.mean().item(),
                 "pred_recon": recon[:, pred].mean().item(),
                 "pred_kl": kl[:, pred].mean().item(), "gate_bce": gate_bce.item()}
        return per_frame.mean() + gate_bce, stats
