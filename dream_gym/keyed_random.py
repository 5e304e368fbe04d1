"""Counter-based random numbers: a dream's noise depends only on its own key and step.

A stateful generator shared by a batch makes each dream's trajectory depend on which other
dreams ran beside it. Here every dream carries a 32-bit ``key`` and a step ``counter`` in
its state, and each random number is a hash of (key, counter, stream, index). The same seed
therefore gives the same trajectory alone, in a vector env of any size, or after other
dreams in the batch have been reset or dropped. The hash is ``lowbias32`` (C. Wellons,
"Hash Prospector"), applied twice; it is vectorised over the whole batch in int64 torch ops.
"""

from __future__ import annotations

import torch

__all__ = ["uniform", "normal", "uniform_streams", "box_muller", "new_keys"]

_MASK = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9


def _mix32(x: torch.Tensor) -> torch.Tensor:
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK
    return x ^ (x >> 16)


def _bits(key: torch.Tensor, counter: torch.Tensor, stream: int, n: int) -> torch.Tensor:
    """(B, n) 32-bit hashes of (key, counter, stream, 0..n-1), as int64."""
    head = _mix32((key.long() & _MASK) ^ _mix32((counter.long() * 8 + stream) & _MASK))
    j = torch.arange(n, device=key.device, dtype=torch.long)
    return _mix32((head[:, None] + j * _GOLDEN) & _MASK)


def uniform(key: torch.Tensor, counter: torch.Tensor, stream: int, n: int) -> torch.Tensor:
    """(B, n) float32 uniforms in the open interval (0, 1); ``stream`` < 8 names the use."""
    return ((_bits(key, counter, stream, n) >> 8).float() + 0.5) * (1.0 / (1 << 24))


def uniform_streams(key: torch.Tensor, counter: torch.Tensor, sizes: tuple[int, ...]
                    ) -> list[torch.Tensor]:
    """``[uniform(key, counter, s, n) for s, n in enumerate(sizes)]`` with the same values,
    hashed in one pass (a dream step needs three streams; one pass costs a third)."""
    streams = torch.arange(len(sizes), device=key.device, dtype=torch.long)
    head = _mix32((key.long()[:, None] & _MASK)
                  ^ _mix32((counter.long()[:, None] * 8 + streams) & _MASK))
    j = torch.arange(max(sizes), device=key.device, dtype=torch.long)
    bits = _mix32((head[:, :, None] + j * _GOLDEN) & _MASK)
    u = ((bits >> 8).float() + 0.5) * (1.0 / (1 << 24))
    return [u[:, s, :n] for s, n in enumerate(sizes)]


def normal(key: torch.Tensor, counter: torch.Tensor, stream: int, n: int) -> torch.Tensor:
    """(B, n) float32 standard normals (Box-Muller on two uniform streams)."""
    return box_muller(uniform(key, counter, stream, 2 * ((n + 1) // 2)), n)


def box_muller(u: torch.Tensor, n: int) -> torch.Tensor:
    """(B, n) standard normals from (B, 2 * ceil(n / 2)) uniforms in (0, 1)."""
    m = (n + 1) // 2
    r = torch.sqrt(-2.0 * torch.log(u[:, :m]))
    theta = (2.0 * torch.pi) * u[:, m:]
    return torch.cat([r * torch.cos(theta), r * torch.sin(theta)], 1)[:, :n]


def new_keys(seeds: torch.Tensor) -> torch.Tensor:
    """Well-spread 32-bit keys from small integer seeds (0, 1, 2, ... are fine)."""
    return _mix32((seeds.long() * _GOLDEN + 0x632BE5AB) & _MASK)
