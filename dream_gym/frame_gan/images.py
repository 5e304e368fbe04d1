"""Conversions between game frames (uint8, HWC) and the GAN's tensors, and picture grids."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["to_unit", "to_uint8", "image_grid"]


def to_unit(frames: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) frames -> float (N, 3, H, W) in [-1, 1], as the networks see them."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3)."""
    x = x.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def image_grid(frames: np.ndarray, cols: int = 8, pad: int = 2) -> np.ndarray:
    """Tile uint8 (N, H, W, 3) frames into one (rows, cols) picture with white gaps."""
    n, h, w, c = frames.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, np.uint8)
    for i, f in enumerate(frames):
        r, k = divmod(i, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h,
            pad + k * (w + pad): pad + k * (w + pad) + w] = f
    return out
