"""How far a view slides sideways between two frames, and whether a side wall is in view:
what strafing does in a first-person game.

A dream that a controller can learn where to stand in must slide its view when the player
strafes, as the game does, and show the room's side wall where the game does;
``benchmarks/strafe_shift.py``, ``benchmarks/hold_action.py`` and
``benchmarks/wall_coverage.py`` measure them with this.
"""

from __future__ import annotations

import numpy as np

__all__ = ["horizontal_shift", "side_wall_share", "SIDE_WALL", "strafe_from_spawn"]

SIDE_WALL = 0.1
"""A frame whose :func:`side_wall_share` exceeds this shows a side wall (TakeCover)."""


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


def side_wall_share(frames: np.ndarray) -> np.ndarray:
    """Share (N,) of brick-coloured pixels (red above blue by more than 25 of 255) in the top
    third of each frame (N, S, S, 3) uint8. In TakeCover the top third is grey ceiling
    unless the player stands near a side wall, whose bricks then reach up into it (the back
    wall's band and its monsters stay in the middle third)."""
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise ValueError(f"Expected uint8 frames (N, S, S, 3), got {frames.dtype} "
                         f"{frames.shape}.")
    top = frames[:, :frames.shape[1] // 3].astype(np.int16)
    return ((top[..., 0] - top[..., 2]) > 25).mean((1, 2))


def strafe_from_spawn(actions: np.ndarray, lengths: np.ndarray, left: int = 2, right: int = 1
                      ) -> np.ndarray:
    """Net steps strafed left (minus right) since each episode's first frame, before each
    frame (N,), for discrete actions (N,) of episodes ``lengths`` long (TakeCover: 1 MOVE_RIGHT,
    2 MOVE_LEFT)."""
    step = (actions == left).astype(np.int64) - (actions == right).astype(np.int64)
    return np.concatenate([np.concatenate([[0], np.cumsum(s)[:-1]])
                           for s in np.split(step, np.cumsum(lengths)[:-1])])
