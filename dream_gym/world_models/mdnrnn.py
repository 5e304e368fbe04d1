"""M: the MDN-RNN of World Models (Ha & Schmidhuber 2018) with reward, done and
game-variable heads."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dream_gym.hazard import HAZARD_FLOOR, window_hazard

__all__ = ["MDNRNNConfig", "MDNRNN", "MDNOutput", "lstm_gates", "fused_cell_weights",
           "fused_lstm_step", "LOG_SIGMA_RANGE", "TAU_FLOOR", "HAZARD_FLOOR"]


def lstm_gates(gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step from its pre-activations (PyTorch's i, f, g, o order): (h, c), as
    nn.LSTM's cell computes it, differentiable (open-loop training)."""
    i, f, g, o = gates.chunk(4, -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def fused_cell_weights(lstm: nn.LSTM) -> tuple[torch.Tensor, torch.Tensor]:
    """``([W_ih | W_hh]^T, b_ih + b_hh)`` of a one-layer LSTM laid out for
    :func:`fused_lstm_step`: one matrix multiply of ``[x, h]`` gives all gates, in the order
    i, f, o, g, with g's rows doubled (tanh(g) = 2 sigmoid(2g) - 1)."""
    i, f, g, o = torch.cat([lstm.weight_ih_l0, lstm.weight_hh_l0], 1).detach().chunk(4)
    bi, bf, bg, bo = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().chunk(4)
    return torch.cat([i, f, o, 2 * g]).t().contiguous(), torch.cat([bi, bf, bo, 2 * bg])


def fused_lstm_step(gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`lstm_gates` for inference, on :func:`fused_cell_weights`' layout: one sigmoid
    over all gates, in place (``gates`` is overwritten), tanh(g) = 2 sigmoid(2g) - 1 folded
    into the cell's update (c' = f c - i + 2 i sigmoid(2g)), and tanh(c'). These elementwise
    calls are most of a batched dream step beside its two matrix multiplies; in this form
    they ran 1.35x as fast as with tanh(c') = 2 sigmoid(2c') - 1 (one Intel Xeon thread,
    N = 1024, torch 2.13). The result equals nn.LSTM's to ~1e-7."""
    i, f, o, g = gates.sigmoid_().chunk(4, -1)
    c = torch.addcmul((f * c).sub_(i), i, g, value=2)
    return torch.tanh(c).mul_(o), c


LOG_SIGMA_RANGE = (-7.0, 3.0)
"""Where M's log sigma is clamped (a mixture component never collapses nor explodes)."""
TAU_FLOOR = 1e-6
"""The smallest temperature sampling divides by (tau = 0 means: the most likely z)."""



@dataclass
class MDNRNNConfig:
    z_dim: int = 64
    action_dim: int = 3
    hidden: int = 512
    gaussians: int = 5
    gamevars: int = 1
    done_weight: float = 10.0
    """Weight of the rare done=1 targets in the BCE (the official code used x10)."""
    done_window: int = 1
    """The done head predicts "the episode ends within this many steps" (1: this step, as
    in World Models). A window lets the hazard follow the situation (pinned at a wall with
    fireballs in flight) rather than only the last frame before a hit, which an open-loop
    dream rarely draws; see :meth:`hazard` and the model card."""


@dataclass
class MDNOutput:
    logit_pi: torch.Tensor  # (..., z, K)
    mu: torch.Tensor  # (..., z, K)
    log_sigma: torch.Tensor  # (..., z, K)
    reward: torch.Tensor  # (...,)
    done_logit: torch.Tensor  # (...,)
    gamevars: torch.Tensor  # (..., G)


class MDNRNN(nn.Module):
    """LSTM over [z_t, a_t]; heads predict p(z_{t+1}) as a per-dim 5-Gaussian mixture."""

    def __init__(self, cfg: MDNRNNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(cfg.z_dim + cfg.action_dim, cfg.hidden, batch_first=True)
        self.mdn = nn.Linear(cfg.hidden, 3 * cfg.z_dim * cfg.gaussians)
        self.extra = nn.Linear(cfg.hidden, 2 + cfg.gamevars)  # reward, done logit, gamevars

    def heads(self, h: torch.Tensor) -> MDNOutput:
        return self.split_heads(self.mdn(h), self.extra(h))

    def fused_head_weights(self, align: int = 1, mixture_major: bool = False
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W^T, b)`` of both heads, so that inference computes them in one matrix
        multiply (``addmm(b, h, W^T)``, split into the two heads for :meth:`split_heads`).
        ``align`` pads the outputs with zero columns to a multiple of it, after the heads'.
        ``mixture_major`` orders each mixture output (K, z) instead of (z, K), for
        :meth:`split_heads` and :meth:`sample` with ``mixture_major=True``."""
        w = torch.cat([self.mdn.weight, self.extra.weight]).detach()
        b = torch.cat([self.mdn.bias, self.extra.bias]).detach()
        if mixture_major:
            z, k = self.cfg.z_dim, self.cfg.gaussians
            order = torch.arange(3 * z * k).view(3, z, k).transpose(1, 2).flatten()
            order = torch.cat([order, torch.arange(3 * z * k, len(b))])
            w, b = w[order], b[order]
        pad = -len(w) % align
        return F.pad(w, (0, 0, 0, pad)).t().contiguous(), F.pad(b, (0, pad))

    def split_heads(self, mdn: torch.Tensor, extra: torch.Tensor,
                    clamp: bool = True, mixture_major: bool = False) -> MDNOutput:
        """MDNOutput from the mixture head's (..., 3 z K) and the other heads' outputs.
        ``clamp=False`` leaves log sigma unclamped, for :meth:`sample` only (which clamps
        the one component it draws from: a dream step need not clamp all K).
        ``mixture_major``: ``mdn`` comes from :meth:`fused_head_weights`' mixture-major
        layout, and the mixture fields are (..., K, z) views."""
        z, k = self.cfg.z_dim, self.cfg.gaussians
        logit_pi, mu, log_sigma = mdn.unflatten(-1, (3, k, z) if mixture_major
                                                else (3, z, k)).unbind(-3)
        return MDNOutput(logit_pi, mu, log_sigma.clamp(*LOG_SIGMA_RANGE) if clamp else log_sigma,
                         extra[..., 0], extra[..., 1], extra[..., 2:])

    def forward(self, z: torch.Tensor, a: torch.Tensor,
                hc: tuple[torch.Tensor, torch.Tensor] | None = None):
        """z (B, T, z_dim), a (B, T, action_dim) -> (MDNOutput over T, (h, c))."""
        out, hc = self.lstm(torch.cat([z, a], -1), hc)
        return self.heads(out), hc

    def hazard(self, done_logit: torch.Tensor) -> torch.Tensor:
        """Per-step probability that the episode ends now.

        The head's odds were inflated x ``done_weight`` in training; undo that to get q,
        the chance of ending within ``done_window`` steps, and spread it evenly over the
        window: 1 - (1 - q) ** (1 / window).
        """
        return window_hazard(done_logit, self.cfg.done_weight, self.cfg.done_window)

    def sample(self, o: MDNOutput, temperature: float, u: torch.Tensor,
               eps: torch.Tensor, mixture_major: bool = False) -> torch.Tensor:
        """z ~ mixture with logits / tau and sigma * sqrt(tau) (World Models' temperature).

        ``u`` (B, z) uniforms pick each dimension's component by inverting the mixture's
        CDF; ``eps`` (B, z) standard normals draw from it. The caller owns the noise so a
        dream's randomness can follow the dream (see :mod:`dream_gym.keyed_random`).
        ``mixture_major``: ``o``'s mixture fields are (B, K, z) (:meth:`split_heads`), and
        the CDF is summed and compared component by component along z's contiguous rows:
        the same picks (to float32 rounding of the sums), and on CPU 2x as fast as reducing
        (B, z, 5) rows (1.2 ms against 2.4 at B = 1,024, z = 64, one Xeon thread), which
        was a tenth of a batched step.
        """
        tau = max(float(temperature), TAU_FLOOR)
        # the unnormalised CDF of softmax(logits / tau), compared with u times its total:
        # softmax over 5 components is ~3x slower on CPU and was a tenth of a dream step
        w = o.logit_pi / tau if tau != 1.0 else o.logit_pi  # x / 1 is x: skip the pass
        K = self.cfg.gaussians
        if mixture_major:
            e = (w - w.amax(-2, keepdim=True)).exp_()
            cdf = [e.select(-2, 0)]
            for j in range(1, K):
                cdf.append(cdf[-1] + e.select(-2, j))
            threshold = u * cdf[-1]
            k = (cdf[0] < threshold).to(torch.uint8)
            for j in range(1, K - 1):  # u < 1: the last component takes the rest
                k += cdf[j] < threshold
            k = k.long().unsqueeze(-2)
        else:
            cdf = (w - w.amax(-1, keepdim=True)).exp_().cumsum_(-1)
            k = (cdf < u.unsqueeze(-1) * cdf[..., -1:]).sum(-1, keepdim=True).clamp_(max=K - 1)
        d = -2 if mixture_major else -1  # the components' axis
        mu = o.mu.gather(d, k).squeeze(d)
        sigma = o.log_sigma.gather(d, k).squeeze(d).clamp_(*LOG_SIGMA_RANGE).exp_()
        if tau != 1.0:
            sigma *= math.sqrt(tau)
        return mu + sigma * eps  # not addcmul: its fused rounding would change dreams

    def loss(self, z: torch.Tensor, a: torch.Tensor, z_next: torch.Tensor,
             reward: torch.Tensor, done: torch.Tensor, gamevars: torch.Tensor,
             mask: torch.Tensor, zmask: torch.Tensor, open_loop: int = 0,
             temperature: float = 1.0, open_loop_z_weight: float = 1.0
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """Mixture NLL of z_{t+1} (where a next frame exists) + weighted done BCE + reward
        and game-variable MSE, teacher-forced.

        ``open_loop`` > 0 adds the same loss on open-loop predictions: the window is cut
        into stretches of that length and, from the true state at each stretch's start, M
        is fed its own sampled z (at ``temperature``, as in a dream) with the real actions
        and scored against the real future (the samples are not differentiated).
        Teacher-forced, M never sees its own errors; a dream feeds them back every step.
        ``open_loop_z_weight`` scales the open-loop z term; at 0 only the reward, done and
        game-variable heads learn what real futures follow M's own dreamed states.
        Measured (TakeCover card): since the real future does not depend on M's own random
        draws, M learns to ignore them and dreams the average future (no fireball reaches a
        player at the wall; a straight road under a straight car), so no recipe uses it;
        tying the draws to the future needs a posterior (PlaNet).
        """
        targets = (z_next, reward, done, gamevars, mask, zmask)
        T = z.shape[1]
        if open_loop <= 0:
            parts = self._head_loss(self(z, a)[0], *targets)
            return sum(parts.values()), {k: v.detach().item() for k, v in parts.items()}
        if open_loop > T:
            raise ValueError(f"open_loop ({open_loop}) is longer than the window ({T}); "
                             "lower open_loop or raise seq_len.")
        # teacher-forced, stretch by stretch, to keep the LSTM state at each stretch start
        zeros = z.new_zeros(1, z.shape[0], self.cfg.hidden)
        outs, starts, hc = [], [], (zeros, zeros)
        for s in range(0, T, open_loop):
            starts.append(hc)
            o_s, hc = self.lstm(torch.cat([z[:, s:s + open_loop], a[:, s:s + open_loop]], -1), hc)
            outs.append(o_s)
        tf = self._head_loss(self.heads(torch.cat(outs, 1)), *targets)
        starts = starts[:T // open_loop]  # full stretches only; the targets are cut alike
        ol = self._head_loss(self._open_loop_heads(z, a, starts, open_loop, temperature),
                             *(x[:, :len(starts) * open_loop] for x in targets))
        total = sum(tf.values()) + sum(ol.values()) - (1 - open_loop_z_weight) * ol["z_nll"]
        return total, ({k: v.detach().item() for k, v in tf.items()}
                       | {f"open_loop_{k}": v.detach().item() for k, v in ol.items()})

    def _open_loop_heads(self, z: torch.Tensor, a: torch.Tensor,
                         starts: list[tuple[torch.Tensor, torch.Tensor]], n: int,
                         temperature: float) -> MDNOutput:
        """Heads over the window's first len(starts) stretches of ``n`` steps, each dreamed
        from its start state (h, c) with the real actions."""
        B, k, H = z.shape[0], len(starts), self.cfg.hidden
        h = torch.cat([s[0][0] for s in starts])  # (k * B, H), stretch-major
        c = torch.cat([s[1][0] for s in starts])
        zs = z[:, :k * n].reshape(B, k, n, -1).transpose(0, 1).reshape(k * B, n, -1)
        acts = a[:, :k * n].reshape(B, k, n, -1).transpose(0, 1).reshape(k * B, n, -1)
        w_ih, w_hh = self.lstm.weight_ih_l0, self.lstm.weight_hh_l0
        b = self.lstm.bias_ih_l0 + self.lstm.bias_hh_l0
        zt, hs = zs[:, 0], []
        for t in range(n):
            h, c = lstm_gates(F.linear(torch.cat([zt, acts[:, t]], -1), w_ih)
                              + F.linear(h, w_hh) + b, c)
            hs.append(h)
            with torch.no_grad():
                zt = self.sample(self.heads(h), temperature, torch.rand_like(zt),
                                 torch.randn_like(zt))
        hs = torch.stack(hs, 1).view(k, B, n, H).transpose(0, 1).reshape(B, k * n, H)
        return self.heads(hs)

    def _head_loss(self, o: MDNOutput, z_next: torch.Tensor, reward: torch.Tensor,
                   done: torch.Tensor, gamevars: torch.Tensor, mask: torch.Tensor,
                   zmask: torch.Tensor) -> dict[str, torch.Tensor]:
        log_pi = F.log_softmax(o.logit_pi, -1)
        x = z_next.unsqueeze(-1)
        log_n = (-0.5 * ((x - o.mu) / o.log_sigma.exp()).pow(2) - o.log_sigma
                 - 0.5 * math.log(2 * math.pi))
        nll = -torch.logsumexp(log_pi + log_n, -1).mean(-1)  # per step, mean over z dims
        n = mask.sum().clamp(min=1)
        z_loss = (nll * zmask).sum() / zmask.sum().clamp(min=1)
        pos_weight = torch.tensor(self.cfg.done_weight, device=z_next.device)
        d_loss = (F.binary_cross_entropy_with_logits(
            o.done_logit, done.float(), pos_weight=pos_weight, reduction="none") * mask).sum() / n
        r_loss = ((o.reward - reward).pow(2) * mask).sum() / n
        g_loss = ((o.gamevars - gamevars).pow(2).mean(-1) * mask).sum() / n \
            if gamevars.shape[-1] else z_loss.new_zeros(())
        return {"z_nll": z_loss, "done_bce": d_loss, "reward_mse": r_loss, "gamevars_mse": g_loss}
