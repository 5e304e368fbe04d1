"""The done head's per-step hazard, shared by every family that predicts the end of an episode.

A done head is trained on "the episode ends within ``window`` steps" targets with the rare
positives weighted ``weight`` times (the official World Models code used 10). Both inflate
what the head says; :func:`window_hazard` undoes them. The formula is compiled once (a numba
ufunc): batched dream steps call it on their logits, and the compiled lone dream step calls
it inside its kernel, so a dream ends at the same step alone or in a batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import vectorize

__all__ = ["window_hazard", "hazard_ufunc", "HAZARD_FLOOR"]

HAZARD_FLOOR = 1e-7
"""Floor of 1 - q before its window-th root (a certain end stays finite)."""


@vectorize(["float32(float32, float64, int64)"], cache=True)
def hazard_ufunc(done_logit, log_weight, window):  # noqa: ANN001  (a numba ufunc)
    """q = sigmoid(logit - log(weight)), spread over the window: 1 - (1 - q) ** (1 / window)
    (in float64, rounded to float32)."""
    q = 1.0 / (1.0 + math.exp(log_weight - done_logit))
    if window == 1:
        return q
    return 1.0 - max(1.0 - q, HAZARD_FLOOR) ** (1.0 / window)


def window_hazard(done_logit: torch.Tensor, weight: float, window: int) -> torch.Tensor:
    """Per-step probability (float32, the logits' device) that the episode ends now: q, the
    chance of ending within ``window`` steps with the odds deflated by ``weight``, spread
    evenly over the window."""
    logits = done_logit.detach().to("cpu", torch.float32).numpy()
    q = hazard_ufunc(logits, math.log(weight), np.int64(window))
    return torch.from_numpy(np.asarray(q, np.float32)).to(done_logit.device)
