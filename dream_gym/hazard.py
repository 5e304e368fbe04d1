"""The done head's per-step hazard, shared by every family that predicts the end of an episode.

A done head is trained on "the episode ends within ``window`` steps" targets with the rare
positives weighted ``weight`` times (the official World Models code used 10). Both inflate
what the head says; :func:`window_hazard` undoes them.
"""

from __future__ import annotations

import math

import torch

__all__ = ["window_hazard", "HAZARD_FLOOR"]

HAZARD_FLOOR = 1e-7
"""Floor of 1 - q before its window-th root (a certain end stays finite)."""


def window_hazard(done_logit: torch.Tensor, weight: float, window: int) -> torch.Tensor:
    """Per-step probability that the episode ends now: q, the chance of ending within
    ``window`` steps with the odds deflated by ``weight``, spread evenly over the window:
    1 - (1 - q) ** (1 / window)."""
    q = torch.sigmoid(done_logit - math.log(weight))
    if window == 1:
        return q
    return 1.0 - (1.0 - q).clamp_min(HAZARD_FLOOR) ** (1.0 / window)
