"""Model frames (64 x 64) to the real screen's size, the last step of a pixel dream.

Bilinear with half-pixel centres, as ``torch.nn.functional.interpolate(...,
align_corners=False)`` (the values agree to float32 rounding, so a pixel may differ by one
level). Compiled and separable, along each row first and then between rows, so that the
second pass, where most of the work is, runs over contiguous rows: 0.18 ms for TakeCover's
240 x 320 screen on one core, where ``interpolate`` took 1.2 ms, three times a lone dream's
step (benchmarks/throughput.py, pixel breakdown).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from numba import njit

__all__ = ["upscale"]


@lru_cache(maxsize=16)
def _axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per output index: the two source indices and their weights (half-pixel centres)."""
    src = (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * np.float32(n_in / n_out)
    src = np.maximum(src - np.float32(0.5), np.float32(0.0))
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    w_hi = (src - lo).astype(np.float32)
    return lo, hi, np.float32(1.0) - w_hi, w_hi


@njit(cache=True)
def _bilinear(frames: np.ndarray, y_lo: np.ndarray, y_hi: np.ndarray, wy_lo: np.ndarray,
              wy_hi: np.ndarray, x_lo: np.ndarray, x_hi: np.ndarray, wx_lo: np.ndarray,
              wx_hi: np.ndarray, out: np.ndarray, top: int) -> None:
    """out[b, top + i, j] = the bilinear mix of frames[b] at output pixel (i, j), rounded."""
    size, channels = frames.shape[1], frames.shape[3]
    width = x_lo.shape[0]
    rows = np.empty((size, width * channels), np.float32)
    lo_level, hi_level = np.float32(0.0), np.float32(255.0)
    for b in range(frames.shape[0]):
        for y in range(size):
            for j in range(width):
                u, v, r, s = x_lo[j], x_hi[j], wx_lo[j], wx_hi[j]
                for ch in range(channels):
                    rows[y, j * channels + ch] = (r * np.float32(frames[b, y, u, ch])
                                                  + s * np.float32(frames[b, y, v, ch]))
        for i in range(y_lo.shape[0]):
            above, below = rows[y_lo[i]], rows[y_hi[i]]
            p, q = wy_lo[i], wy_hi[i]
            line = out[b, top + i].reshape(width * channels)
            for k in range(width * channels):
                level = np.round(p * above[k] + q * below[k])
                line[k] = np.uint8(min(max(level, lo_level), hi_level))


def upscale(frames: torch.Tensor, hw: tuple[int, int],
            rows: tuple[int, int] | None = None) -> np.ndarray:
    """(B, S, S, 3) uint8 model frames -> (B, H, W, 3) uint8 at the real screen size.

    ``rows``: the screen rows the model sees (:attr:`GameSpec.crop_rows`); the frame fills
    them and the rest (CarRacing's dashboard, which the model never sees) stays black."""
    top, bottom = rows if rows is not None else (0, hw[0])
    src = np.ascontiguousarray(frames.cpu().numpy())
    blank = np.zeros if (top, bottom) != (0, hw[0]) else np.empty  # every pixel is written
    out = blank((len(src), *hw, src.shape[-1]), np.uint8)
    _bilinear(src, *_axis(src.shape[1], bottom - top), *_axis(src.shape[2], hw[1]), out, top)
    return out
