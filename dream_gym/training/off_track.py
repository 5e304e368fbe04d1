"""An off-track stop for controller training: the dream may not bring the road back.

Asked what follows a car that has left the road, a CarRacing dream too often answers "the
road, again": the drivers that collected its data steered back, so M learned that grass is
followed by road whatever the action, and evolved controllers left the road on purpose
(benchmarks/off_road.py measures it). For a linear controller the game's truth is nearer
the opposite: a car on the grass stays there, paying the per-frame cost without tiles.

So, during CMA-ES only, a dream ends once a probe on V's latent has seen the car off the
track ``patience`` steps running (after ``grace`` steps: the start's zoom shows grass), and
the rollout is charged the game's off-track reward for every step it had left: a
pessimistic model of the off-track future (MOReL's halt in unknown states, with the game's
own penalty). The ``Dream-*`` environments keep the game's semantics: nothing ends there.

The probe is a logistic regression from z to the game's pixel test (``GameSpec.off_track``)
on real frames, fitted once per V and shipped beside it as ``off_track.safetensors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dream_gym.checkpoint import CheckpointError, load_tensors, save_json, save_tensors
from dream_gym.games import GameSpec

__all__ = ["OffTrackProbe", "OffTrackStop", "fit_probe", "PROBE_FILE"]

PROBE_FILE = "off_track"
"""Stem of the probe's files in a model folder (``.safetensors`` + ``.json``)."""


@dataclass
class OffTrackProbe:
    """p(off track | z) = sigmoid(z . weight + bias)."""

    weight: torch.Tensor  # (z_dim,)
    bias: torch.Tensor  # (1,)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """(B, z_dim) latents -> (B,) bool: off the track."""
        return z[:, : len(self.weight)] @ self.weight + self.bias > 0

    def save(self, model_dir: str | Path, metrics: dict) -> None:
        stem = Path(model_dir) / PROBE_FILE
        save_tensors(stem.with_suffix(".safetensors"), {"weight": self.weight, "bias": self.bias})
        save_json(stem.with_suffix(".json"), metrics)

    @classmethod
    def load(cls, model_dir: str | Path, device: torch.device | str = "cpu") -> OffTrackProbe:
        stem = Path(model_dir) / PROBE_FILE
        if not stem.with_suffix(".safetensors").exists():
            raise CheckpointError(
                f"{model_dir} has no off-track probe ({PROBE_FILE}.safetensors), which "
                "off_track_patience > 0 needs: fit it with dream_gym.training.off_track."
                "fit_probe (the recipe's off_track stage does), or set off_track_patience = 0.")
        t = load_tensors(stem.with_suffix(".safetensors"), device)
        return cls(t["weight"], t["bias"])


def fit_probe(z: np.ndarray, frames: np.ndarray, game: GameSpec, steps: int = 2000,
              seed: int = 0) -> tuple[OffTrackProbe, dict]:
    """Fit the probe on real latents ``z`` (N, z_dim) labelled by ``game.off_track`` of their
    ``frames`` (N, S, S, 3); 20% are held out to report its accuracy."""
    if game.off_track is None:
        raise ValueError(f"{game.name} defines no off_track test (GameSpec.off_track).")
    labels = np.concatenate([game.off_track(frames[i : i + 20_000])
                             for i in range(0, len(frames), 20_000)]).astype(np.float32)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(z))
    train, test = perm[: int(0.8 * len(z))], perm[int(0.8 * len(z)):]
    x, y = torch.from_numpy(np.asarray(z, np.float32)), torch.from_numpy(labels)
    torch.manual_seed(seed)
    lin = torch.nn.Linear(x.shape[1], 1)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-2)
    for _ in range(steps):
        idx = torch.from_numpy(rng.choice(train, 4096))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(lin(x[idx])[:, 0], y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    probe = OffTrackProbe(lin.weight.detach()[0].clone(), lin.bias.detach().clone())
    with torch.no_grad():
        pred = probe(x[test]).numpy()
    truth = labels[test] > 0.5
    metrics = {"held_out_accuracy": float((pred == truth).mean()),
               "held_out_off_track_share": float(truth.mean()),
               "recall": float((pred & truth).sum() / max(1, truth.sum())),
               "precision": float((pred & truth).sum() / max(1, pred.sum())),
               "labelled_frames": int(len(z))}
    return probe, metrics


class OffTrackStop:
    """Per-rollout state of the stop: how long each dream has been off the track."""

    def __init__(self, probe: OffTrackProbe, patience: int, grace: int, reward: float,
                 max_steps: int, batch: int) -> None:
        self.probe, self.patience, self.grace = probe, patience, grace
        self.reward, self.max_steps = reward, max_steps
        self.off = torch.zeros(batch, dtype=torch.long, device=probe.weight.device)

    def __call__(self, features: torch.Tensor, rows: torch.Tensor, t: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """After step ``t`` (0-based) of the living ``rows``: (which end now (len(rows),) bool,
        the reward charged to each of them for the steps it had left)."""
        if t >= self.grace:
            self.off[rows] = torch.where(self.probe(features), self.off[rows] + 1, 0)
        stop = self.off[rows] >= self.patience
        return stop, stop * (self.reward * (self.max_steps - t - 1))
