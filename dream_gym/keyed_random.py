"""Counter-based random numbers: a dream's noise depends only on its own key and step.

A stateful generator shared by a batch makes each dream's trajectory depend on which other
dreams ran beside it. Here every dream carries a 32-bit ``key`` and a step ``counter`` in
its state, and each random number is a hash of (key, counter, stream, index). The same seed
therefore gives the same trajectory alone, in a vector env of any size, or after other
dreams in the batch have been reset or dropped. The hash is ``lowbias32`` (C. Wellons,
"Hash Prospector"), applied twice; it is vectorised over the whole batch in int32 torch ops,
whose multiplication wraps modulo 2**32 exactly as the hash's uint32 arithmetic does (a
logical shift is an arithmetic one masked), at half the memory traffic of int64. On CPU
the same hash runs compiled (numba), one pass for the batch instead of ~60 torch calls, each
of which converted the Python constants it was given; the values are the same bits.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import torch
from numba import njit

__all__ = ["uniform", "normal", "uniform_streams", "box_muller", "new_keys", "uniform_at"]

_MASK = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9


def _i32(x: int) -> int:
    """A uint32 constant as the int32 with the same bits."""
    return x - (1 << 32) if x >= 1 << 31 else x


def _to_i32(x: torch.Tensor) -> torch.Tensor:
    """Integers as int32 with the bits of their value modulo 2**32 (torch's conversion
    keeps the low 32 bits)."""
    return x.int()


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 on int32 bits."""
    x = x ^ ((x >> 16) & 0xFFFF)
    x = x * _i32(0x7FEB352D)
    x = x ^ ((x >> 15) & 0x1FFFF)
    x = x * _i32(0x846CA68B)
    return x ^ ((x >> 16) & 0xFFFF)


def _unit(bits: torch.Tensor) -> torch.Tensor:
    """The top 24 of 32 hash bits as float32 in the open interval (0, 1)."""
    return (((bits >> 8) & 0xFFFFFF).float() + 0.5) * (1.0 / (1 << 24))


def _bits(key: torch.Tensor, counter: torch.Tensor, streams: torch.Tensor, n: int
          ) -> torch.Tensor:
    """(B, S, n) 32-bit hashes of (key, counter, stream, 0..n-1) for each of the S
    ``streams``, as int32 bits."""
    step = _to_i32(counter)[:, None] * 8 + streams.int()
    head = _mix32(_to_i32(key)[:, None] ^ _mix32(step))
    return _mix32(head[:, :, None] + _golden(n, key.device))


@functools.lru_cache(maxsize=64)
def _golden(n: int, device: torch.device) -> torch.Tensor:
    """j * golden ratio modulo 2**32 for j < n, as int32 (cached: a lone dream's step is
    a few dozen tiny ops, each of which counts)."""
    return _to_i32(torch.arange(n, device=device, dtype=torch.long) * _GOLDEN)


@functools.lru_cache(maxsize=64)
def _streams(first: int, count: int, device: torch.device) -> torch.Tensor:
    """Stream ids first..first+count-1 (cached, as :func:`_golden`: built once, not per step)."""
    return torch.arange(first, first + count, device=device)


@njit(cache=True, inline="always")
def mix32(x: int) -> int:
    """:func:`_mix32` compiled, on one uint32 value held in an int64."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _MASK
    x ^= x >> 15
    x = (x * 0x846CA68B) & _MASK
    return x ^ (x >> 16)


@njit(cache=True, inline="always")
def stream_head(key: int, counter: int, stream: int) -> int:
    """The hash that all numbers of ``stream`` at step ``counter`` share."""
    return mix32((key & _MASK) ^ mix32((counter * 8 + stream) & _MASK))


@njit(cache=True, inline="always")
def unit(head: int, j: int) -> float:
    """Number ``j`` of the stream whose :func:`stream_head` is ``head``, in (0, 1)."""
    bits = mix32((head + ((j * _GOLDEN) & _MASK)) & _MASK)
    return ((bits >> 8) + 0.5) * (1.0 / (1 << 24))


@njit(cache=True)
def uniform_at(key: int, counter: int, stream: int, j: int) -> float:
    """``uniform(key, counter, stream, n)[:, j]`` of one dream, compiled (bit for bit, as
    a float): for compiled dream steps (:mod:`dream_gym.world_models.lone_step`)."""
    return unit(stream_head(key, counter, stream), j)


@njit(cache=True)
def _fill_uniforms(keys: np.ndarray, counters: np.ndarray, first: int, out: np.ndarray
                   ) -> None:
    """``out[b, s, j]`` = number j of stream first + s for dream b, for (B, S, n) ``out``."""
    for b in range(out.shape[0]):
        for s in range(out.shape[1]):
            head = stream_head(keys[b], counters[b], first + s)
            for j in range(out.shape[2]):
                out[b, s, j] = unit(head, j)


def _uniforms(key: torch.Tensor, counter: torch.Tensor, first: int, count: int, n: int
              ) -> torch.Tensor:
    """(B, count, n) float32 uniforms of streams first..first+count-1."""
    if key.device.type != "cpu":
        return _unit(_bits(key, counter, _streams(first, count, key.device), n))
    out = torch.empty(len(key), count, n)
    _fill_uniforms(key.numpy(), counter.numpy(), first, out.numpy())
    return out


def uniform(key: torch.Tensor, counter: torch.Tensor, stream: int, n: int) -> torch.Tensor:
    """(B, n) float32 uniforms in the open interval (0, 1); ``stream`` < 8 names the use."""
    return _uniforms(key, counter, stream, 1, n)[:, 0]


def uniform_streams(key: torch.Tensor, counter: torch.Tensor, sizes: tuple[int, ...]
                    ) -> list[torch.Tensor]:
    """``[uniform(key, counter, s, n) for s, n in enumerate(sizes)]`` with the same values,
    hashed in one pass per run of equal sizes (a dream step needs three streams; one pass
    costs a third, and a short stream after long ones is not padded to their length)."""
    out: list[torch.Tensor] = []
    for n, run in itertools.groupby(sizes):
        first, count = len(out), len(list(run))
        out += _uniforms(key, counter, first, count, n).unbind(1)
    return out


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
    """Well-spread 32-bit keys (int64 in [0, 2**32)) from small integer seeds (0, 1, 2, ...
    are fine)."""
    return _mix32(_to_i32(seeds.long() * _GOLDEN + 0x632BE5AB)).long() & _MASK
