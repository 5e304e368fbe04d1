"""How close generated frames are to real ones, in the eyes of a small game classifier.

The classifier learns which game a real frame comes from; its penultimate activations are
the feature space. The Frechet distance between the Gaussians fitted to real and generated
features (FID's formula with a classifier of our own games instead of Inception) is read
beside its floor (two disjoint sets of real frames) and its ceiling (an untrained
generator). The share of generated frames the classifier gives to one game with p >= 0.9,
and how they split between the games, show whether the frames are recognisable and whether
the generator covers every game.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["GameClassifier", "embed", "gaussian_stats", "frechet_distance", "QualityMeter"]


class GameClassifier(nn.Module):
    """Frames (B, 3, 64, 64) in [-1, 1] -> game logits; ``features`` is the 128-d layer."""

    def __init__(self, games: int, width: int = 32, features: int = 128) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(4 * w * 16, features), nn.ReLU(),
        )
        self.head = nn.Linear(features, games)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@torch.no_grad()
def embed(classifier: GameClassifier, frames: torch.Tensor, batch: int = 500
          ) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's features (N, 128) and game probabilities (N, games) of frames."""
    classifier.eval()
    device = next(classifier.parameters()).device
    feats, probs = [], []
    for i in range(0, len(frames), batch):
        f = classifier.features(frames[i : i + batch].to(device))
        feats.append(f.cpu().numpy())
        probs.append(classifier.head(f).softmax(-1).cpu().numpy())
    return np.concatenate(feats), np.concatenate(probs)


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of (N, D) features."""
    f = np.asarray(features, np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray,
                     cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^1/2), with the trace of the square root taken
    as the sum of sqrt-eigenvalues of C1^1/2 C2 C1^1/2 (symmetric, so eigh is stable)."""
    w, v = np.linalg.eigh(cov1)
    s1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(s1 @ cov2 @ s1), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * cross)


class QualityMeter:
    """Scores frame batches against the real frames' feature statistics."""

    def __init__(self, classifier: GameClassifier, ref_mu: np.ndarray, ref_cov: np.ndarray,
                 games: tuple[str, ...], confident: float = 0.9) -> None:
        self.classifier = classifier.eval()
        self.ref_mu, self.ref_cov = ref_mu, ref_cov
        self.games, self.confident = games, confident

    def score(self, frames: torch.Tensor) -> dict:
        """Frechet distance to the real statistics, the confidently-classified share and the
        split of those frames between the games."""
        feats, probs = embed(self.classifier, frames)
        fd = frechet_distance(self.ref_mu, self.ref_cov, *gaussian_stats(feats))
        sure = probs.max(1) >= self.confident
        split = np.bincount(probs.argmax(1)[sure], minlength=len(self.games)) / max(sure.sum(), 1)
        return {"frechet": fd, "confident_share": float(sure.mean()),
                "game_split": {g: float(s) for g, s in zip(self.games, split, strict=True)},
                "n": len(frames)}
