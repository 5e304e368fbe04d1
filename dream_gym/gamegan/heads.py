"""Reward, done and game-variable heads that remember a whole episode.

GameGAN trains on windows of 16 frames, and heads on its hidden state h see no further back
than that. What ends a TakeCover episode is the player's health running out, fireball after
fireball over hundreds of steps: heads on 16-step windows predict it worse than the base rate
(held-out TakeCover episodes, done BCE 0.455 against the base rate's 0.281; these heads 0.261:
the recipe's ``heads`` stage records the three). These heads are a small GRU that reads, at
every step, what the generator already computes (the current frame's encoding s, the new
hidden state h, the action) and is trained on whole real episodes, teacher-forced, after the
generator is trained and frozen; the dream then draws reward, done and the game variables
from it, and its state is part of the features an agent sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from dream_gym.data import Episodes
from dream_gym.gamegan.dream import GameGANDream
from dream_gym.gamegan.model import GameGANGenerator
from dream_gym.hazard import window_hazard

__all__ = ["EpisodeHeadsConfig", "EpisodeHeads", "teacher_forced_inputs", "train_heads"]


@dataclass
class EpisodeHeadsConfig:
    hidden: int = 64
    """The GRU's size."""
    steps: int = 400
    """Updates, each on ``batch_size`` whole episodes."""
    batch_size: int = 16
    lr: float = 2e-3
    done_weight: float = 1.0
    done_window: int = 30
    """The done output predicts "the episode ends within this many steps" (as M's)."""
    seed: int = 0


class EpisodeHeads(nn.Module):
    """GRU over [s_t, h_{t+1}, a_t] -> reward_t, done logit_t, game variables_{t+1}."""

    def __init__(self, inputs: int, gamevars: int, cfg: EpisodeHeadsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.gru = nn.GRU(inputs, cfg.hidden, batch_first=True)
        self.out = nn.Linear(cfg.hidden, 2 + gamevars)

    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, inputs), g (B, hidden) or None -> outputs (B, T, 2 + G), new g."""
        y, g_new = self.gru(x, None if g is None else g.unsqueeze(0).contiguous())
        return self.out(y), g_new[0]

    def step(self, x: torch.Tensor, g: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step: (reward, done logit, game variables, new g)."""
        out, g = self(x.unsqueeze(1), g)
        out = out[:, 0]
        return out[:, 0], out[:, 1], out[:, 2:], g

    def hazard(self, done_logit: torch.Tensor) -> torch.Tensor:
        return window_hazard(done_logit, self.cfg.done_weight, self.cfg.done_window)


@torch.no_grad()
def teacher_forced_inputs(net: GameGANGenerator, episodes: Episodes, game: str,
                          ids: np.ndarray, batch: int = 64) -> list[torch.Tensor]:
    """Per episode, (len - 1, inputs) float32: [s_t, h_{t+1}, a_t] of the frozen generator
    fed the true frames (the dream's :meth:`~GameGANDream.observe`, z = 0), the inputs
    :class:`EpisodeHeads` sees in the real game."""
    dream = GameGANDream(game, net)
    out: list[torch.Tensor] = [torch.empty(0)] * len(ids)
    order = np.argsort(episodes.lengths[ids])
    for chunk in tqdm(np.array_split(order, max(1, -(-len(ids) // batch))),
                      desc="teacher-forced features"):
        e = ids[chunk]
        starts, lengths = episodes.starts[e], episodes.lengths[e]
        T = int(lengths.max())
        t = np.minimum(np.arange(T)[None], lengths[:, None] - 1) + starts[:, None]
        frames, actions = torch.from_numpy(episodes.frames[t]), torch.from_numpy(
            episodes.actions[t])
        state = dream.initial_state(frames[:, :1], actions[:, :0])
        rows = []
        for k in range(T - 1):
            s = state["s"]
            state = dream.observe(state, actions[:, k], frames[:, k + 1])
            rows.append(torch.cat([s, state["h"], dream._a(actions[:, k])], -1))
        x = torch.stack(rows, 1) if rows else torch.zeros(len(e), 0, 1)
        for j, i in enumerate(chunk):
            out[i] = x[j, : lengths[j] - 1].clone()
    return out


def _targets(episodes: Episodes, e: int, window: int, scale: float
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s, n = int(episodes.starts[e]), int(episodes.lengths[e])
    t = np.arange(n - 1)
    done = bool(episodes.dones[s + n - 1]) & ((n - 1) - t < window)
    return (torch.from_numpy(episodes.rewards[s + t]),
            torch.from_numpy(done.astype(np.float32)),
            torch.from_numpy(episodes.gamevars[s + t + 1] / scale))


def heads_loss(heads: EpisodeHeads, inputs: list[torch.Tensor], episodes: Episodes,
               ids: np.ndarray, scale: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean per-step losses over whole episodes ``ids`` (``inputs`` indexed like ``ids``)."""
    x = nn.utils.rnn.pad_sequence(inputs, batch_first=True)
    tg = [_targets(episodes, e, heads.cfg.done_window, scale) for e in ids]
    mask = nn.utils.rnn.pad_sequence([torch.ones(len(r)) for r, _, _ in tg], batch_first=True)
    reward, done, gv = (nn.utils.rnn.pad_sequence(list(col), batch_first=True)
                        for col in zip(*tg, strict=True))
    out, _ = heads(x)
    n = mask.sum()
    weight = mask * (1.0 + (heads.cfg.done_weight - 1.0) * done)
    d = (F.binary_cross_entropy_with_logits(out[..., 1], done, reduction="none") * weight
         ).sum() / n
    r = (((out[..., 0] - reward) ** 2) * mask).sum() / n
    g = (((out[..., 2:] - gv) ** 2).mean(-1) * mask).sum() / n if gv.shape[-1] else r * 0
    return d + r + g, {"done_bce": d.item(), "reward_mse": r.item(), "gamevars_mse": g.item()}


def train_heads(net: GameGANGenerator, episodes: Episodes, game: str, train_ids: np.ndarray,
                held_ids: np.ndarray, scale: float, cfg: EpisodeHeadsConfig, writer=None
                ) -> tuple[EpisodeHeads, dict[str, float]]:
    """Fit :class:`EpisodeHeads` on the frozen generator's teacher-forced inputs of whole
    episodes; returns it and its held-out losses beside the done base rate's."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    x_train = teacher_forced_inputs(net, episodes, game, train_ids)
    x_held = teacher_forced_inputs(net, episodes, game, held_ids) if len(held_ids) else []
    heads = EpisodeHeads(x_train[0].shape[-1], episodes.gamevars.shape[1], cfg)
    opt = torch.optim.Adam(heads.parameters(), lr=cfg.lr)
    for step in tqdm(range(cfg.steps), desc="episode heads"):
        pick = rng.choice(len(train_ids), size=min(cfg.batch_size, len(train_ids)),
                          replace=False)
        loss, logs = heads_loss(heads, [x_train[i] for i in pick], episodes, train_ids[pick],
                                scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(heads.parameters(), 1.0)
        opt.step()
        if writer is not None and step % 10 == 0:
            for k, v in logs.items():
                writer.add_scalar(f"heads/{k}", v, step)
    report: dict[str, float] = {}
    if len(held_ids):
        with torch.no_grad():
            _, report = heads_loss(heads.eval(), x_held, episodes, held_ids, scale)
            done = torch.cat([_targets(episodes, e, cfg.done_window, scale)[1]
                              for e in held_ids])
            p = float(torch.cat([_targets(episodes, e, cfg.done_window, scale)[1]
                                 for e in train_ids]).mean())
            report["done_bce_base_rate"] = float(F.binary_cross_entropy(
                torch.full_like(done, p), done))
            # the generator's own done head on h (trained on 16-step windows), same targets
            D, H = net.cfg.memory_dim, net.cfg.hidden
            logit = torch.cat([net.heads(x[:, D:D + H])[:, 1] for x in x_held])
            report["done_bce_generator_head"] = float(
                F.binary_cross_entropy_with_logits(logit, done))
    return heads.eval(), report
