"""How far a view slides sideways between two frames: what strafing does in a first-person game.

A dream that a controller can learn where to stand in must slide its view when the player
strafes, as the game does; ``benchmarks/strafe_shift.py`` and the GameGAN tests measure it
with this.
"""

from __future__ import annotations

import numpy as np

__all__ = ["horizontal_shift"]


def horizontal_shift(a: np.ndarray, b: np.ndarray, max_shift: int = 8) -> np.ndarray:
    """dx (N,) in pixels such that ``a`` moved by dx along the width best matches ``b``: the
    best integer roll (mean squared error), refined below a pixel by the parabola through
    the errors at its two neighbours; frames (N, S, S, 3) float. The ``max_shift`` edge
    columns and the top and bottom quarter (ceiling and floor: no texture to follow) are
    left out."""
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"Expected two (N, S, S, 3) frame arrays of one shape, got "
                         f"{a.shape} and {b.shape}.")
    S = a.shape[1]
    rows, cols = slice(S // 4, 3 * S // 4), slice(max_shift, a.shape[2] - max_shift)
    err = [((np.roll(a, dx, axis=2)[:, rows, cols] - b[:, rows, cols]) ** 2).mean((1, 2, 3))
           for dx in range(-max_shift, max_shift + 1)]
    err = np.stack(err)  # (2 max_shift + 1, N)
    best = np.clip(np.argmin(err, 0), 1, 2 * max_shift - 1)
    n = np.arange(err.shape[1])
    left, mid, right = err[best - 1, n], err[best, n], err[best + 1, n]
    curve = left - 2 * mid + right
    sub = np.where(curve > 0, 0.5 * (left - right) / np.maximum(curve, 1e-12), 0.0)
    return best - max_shift + np.clip(sub, -0.5, 0.5)
