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

from collections.abc import Callable
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

__all__ = ["EpisodeHeadsConfig", "EpisodeHeads", "teacher_forced_inputs", "dream_inputs",
           "train_heads"]


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
    inputs: str = "game"
    """What the heads are fitted on: "game", the generator fed the true frames
    (:func:`teacher_forced_inputs`, what an agent sees in the game); "dream", the generator's
    open loop under the recorded actions (:func:`dream_inputs`, what the heads read in a
    dream). Measured on TakeCover's round-2 refit (``benchmarks/gamegan_refit.py --heads
    inputs='"dream"'``): held-out done cross-entropy 0.237 (game inputs 0.207, base rate
    0.255), and its controller 171.0 on the selection seeds, random 214.4 (card, "GameGAN:
    an adversarial refit"); the recipe keeps "game"."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.inputs not in ("game", "dream"):
            raise ValueError(f"heads inputs={self.inputs!r}: expected \"game\" (teacher-forced) "
                             "or \"dream\" (open loop).")


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


def _per_episode(episodes: Episodes, ids: np.ndarray, batch: int, desc: str,
                 rows_of: Callable[[np.ndarray], torch.Tensor]) -> list[torch.Tensor]:
    """``rows_of(t)`` over chunks of episodes ``ids`` of like length (t: (B, T) frame
    indices, each row padded with its episode's last; returns (B, T - 1, inputs)), cut back
    to each episode's own length - 1 rows, in ``ids``' order."""
    out: list[torch.Tensor] = [torch.empty(0)] * len(ids)
    order = np.argsort(episodes.lengths[ids])
    for chunk in tqdm(np.array_split(order, max(1, -(-len(ids) // batch))), desc=desc):
        starts, lengths = episodes.starts[ids[chunk]], episodes.lengths[ids[chunk]]
        T = int(lengths.max())
        x = rows_of(np.minimum(np.arange(T)[None], lengths[:, None] - 1) + starts[:, None])
        for j, i in enumerate(chunk):
            out[i] = x[j, : lengths[j] - 1].clone()
    return out


@torch.no_grad()
def teacher_forced_inputs(net: GameGANGenerator, episodes: Episodes, game: str,
                          ids: np.ndarray, batch: int = 64) -> list[torch.Tensor]:
    """Per episode, (len - 1, inputs) float32: [s_t, h_{t+1}, a_t] of the frozen generator
    fed the true frames (the dream's :meth:`~GameGANDream.observe`, z = 0), the inputs
    :class:`EpisodeHeads` sees in the real game."""
    dream = GameGANDream(game, net)

    def rows_of(t: np.ndarray) -> torch.Tensor:
        frames, actions = (torch.from_numpy(episodes.frames[t]),
                           torch.from_numpy(episodes.actions[t]))
        state = dream.initial_state(frames[:, :1], actions[:, :0])
        rows = []
        for k in range(t.shape[1] - 1):
            s = state["s"]
            state = dream.observe(state, actions[:, k], frames[:, k + 1])
            rows.append(torch.cat([s, state["h"], dream._a(actions[:, k])], -1))
        return torch.stack(rows, 1) if rows else torch.zeros(len(t), 0, 1)

    return _per_episode(episodes, ids, batch, "teacher-forced features", rows_of)


@torch.no_grad()
def dream_inputs(net: GameGANGenerator, episodes: Episodes, game: str, ids: np.ndarray,
                 noise: torch.Tensor | None, seed: int, batch: int = 64) -> list[torch.Tensor]:
    """Per episode, the rows of :func:`teacher_forced_inputs` as a dream makes them: from
    the episode's first frame (a dream's context), under the recorded actions, z drawn from
    the prior and the next encoding the dream's own (drawn around the engine's prediction
    with ``noise``, the dream's ``encoding_noise``), at temperature 1. Heads fitted on
    these read, for the ends of real episodes, what the open loop keeps of them: where the
    player stood and for how long, not the monsters that fade out of it."""
    dream = GameGANDream(game, net)
    gen = torch.Generator().manual_seed(seed)

    def rows_of(t: np.ndarray) -> torch.Tensor:
        actions = torch.from_numpy(episodes.actions[t])
        state = dream.initial_state(torch.from_numpy(episodes.frames[t[:, :1]]),
                                    actions[:, :0])
        rows = []
        for k in range(t.shape[1] - 1):
            a = dream._a(actions[:, k])
            new, inputs = net.advance(state, a, torch.randn(len(t), net.cfg.z_dim,
                                                            generator=gen))
            rows.append(torch.cat([state["s"], new["h"], a], -1))
            frame = net.renderer(inputs)[0] if net.cfg.feedback == "frame" else None
            s = net.next_encoding(frame, inputs[-1])
            if noise is not None:
                s = s + torch.randn(s.shape, generator=gen) * noise
            state = net.feed({**state, **new}, s, False)
        return torch.stack(rows, 1) if rows else torch.zeros(len(t), 0, 1)

    return _per_episode(episodes, ids, batch, "dream features", rows_of)


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
                held_ids: np.ndarray, scale: float, cfg: EpisodeHeadsConfig, writer=None,
                noise: torch.Tensor | None = None) -> tuple[EpisodeHeads, dict[str, float]]:
    """Fit :class:`EpisodeHeads` on the frozen generator's inputs of whole episodes
    (``cfg.inputs``; ``noise``: the dream's encoding noise, for "dream"); returns it and its
    held-out losses beside the done base rate's."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    def inputs(ids: np.ndarray, stream: int) -> list[torch.Tensor]:
        if cfg.inputs == "dream":
            return dream_inputs(net, episodes, game, ids, noise, cfg.seed * 2 + stream)
        return teacher_forced_inputs(net, episodes, game, ids)

    x_train = inputs(train_ids, 0)
    x_held = inputs(held_ids, 1) if len(held_ids) else []
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
