"""A lone dream's step, compiled: :meth:`WorldModelsDream.imagine` for one row, outside torch.

A batched step is two large matrix multiplies, and torch runs it near the machine's peak.
A lone dream's step is the same multiplies with one row each plus some sixty tiny
elementwise ops, and there torch's per-call cost (microseconds an op) and its slow one-row
matrix multiply made a step 1 ms, slower than the real game (benchmarks/throughput.py).
Here the whole step is one compiled call (numba). It is single-threaded on purpose: NumPy's
BLAS would run the two matrix-vector products on its own threads, which then spin against
torch's and made a pixel dream's decoder 4x slower. The random numbers are the same bits
as :mod:`dream_gym.keyed_random`'s (unsigned 32-bit arithmetic is exact in both) and the
rest equals torch's to float32 rounding, so a seed gives the same dream alone or in a batch.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from dream_gym.hazard import hazard_ufunc
from dream_gym.keyed_random import uniform_at
from dream_gym.world_models.mdnrnn import LOG_SIGMA_RANGE, TAU_FLOOR

LOG_SIGMA_MIN, LOG_SIGMA_MAX = LOG_SIGMA_RANGE  # numba reads module constants once

__all__ = ["dream_step"]


@njit(cache=True)
def _affine(out: np.ndarray, x: np.ndarray, w: np.ndarray, row: int) -> None:
    """out += x @ w[row:row + len(x)], row by row (the loop over ``out`` vectorises)."""
    for i in range(x.shape[0]):
        xi = x[i]
        for j in range(out.shape[0]):
            out[j] += xi * w[row + i, j]


@njit(cache=True)
def _lstm(z: np.ndarray, a: np.ndarray, h: np.ndarray, c: np.ndarray, weight: np.ndarray,
          bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(h, c) after one step on input [z, a], on
    :func:`~dream_gym.world_models.mdnrnn.fused_cell_weights`' layout (i, f, o, 2g), in
    float32 as :func:`~dream_gym.world_models.mdnrnn.fused_lstm_step` computes it."""
    H = c.shape[0]
    one, two = np.float32(1.0), np.float32(2.0)
    s = bias.copy()
    _affine(s, z, weight, 0)
    _affine(s, a, weight, z.shape[0])
    _affine(s, h, weight, z.shape[0] + a.shape[0])
    for j in range(4 * H):
        s[j] = one / (one + np.exp(-s[j]))
    h_new = np.empty(H, np.float32)
    c_new = np.empty(H, np.float32)
    for j in range(H):
        cj = s[H + j] * c[j] - s[j] + two * s[j] * s[3 * H + j]
        c_new[j] = cj
        h_new[j] = s[2 * H + j] * np.tanh(cj)
    return h_new, c_new


@njit(cache=True)
def _next_latent(heads: np.ndarray, z_dim: int, gaussians: int, key: int, counter: int,
                 temperature: float) -> np.ndarray:
    """z_{t+1} drawn as :meth:`MDNRNN.sample` draws it from the mixture head's outputs,
    with the dream's keyed streams 0 (component) and 1 (Box-Muller normals)."""
    Z, K = z_dim, gaussians
    tau = max(temperature, TAU_FLOOR)
    root_tau = math.sqrt(tau)
    half = (Z + 1) // 2
    z = np.empty(Z, np.float32)
    cdf = np.empty(K, np.float64)
    for d in range(Z):
        base = d * K
        top = -np.inf
        for k in range(K):
            top = max(top, heads[base + k] / tau)
        total = 0.0
        for k in range(K):
            total += math.exp(heads[base + k] / tau - top)
            cdf[k] = total
        threshold = uniform_at(key, counter, 0, d) * total
        pick = 0
        for k in range(K):
            pick += cdf[k] < threshold
        pick = min(pick, K - 1)
        mu = heads[Z * K + base + pick]
        log_sigma = min(max(heads[2 * Z * K + base + pick], LOG_SIGMA_MIN), LOG_SIGMA_MAX)
        j = d if d < half else d - half
        r = math.sqrt(-2.0 * math.log(uniform_at(key, counter, 1, j)))
        theta = 2.0 * math.pi * uniform_at(key, counter, 1, half + j)
        eps = r * (math.cos(theta) if d < half else math.sin(theta))
        z[d] = mu + math.exp(log_sigma) * root_tau * eps
    return z


@njit(cache=True)
def dream_step(z: np.ndarray, a: np.ndarray, h: np.ndarray, c: np.ndarray,
               w_cell: np.ndarray, b_cell: np.ndarray, w_heads: np.ndarray,
               b_heads: np.ndarray, gaussians: int, key: int, counter: int,
               temperature: float, done_threshold: bool, log_done_weight: float,
               done_window: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """One dream step: (z, h, c) next, the extra heads' outputs (reward, done logit, game
    variables) and done: stream 2's float32 uniform below the batched step's own hazard
    (:func:`dream_gym.hazard.hazard_ufunc`), or the logit's sign when ``done_threshold``."""
    h, c = _lstm(z, a, h, c, w_cell, b_cell)
    heads = b_heads.copy()
    _affine(heads, h, w_heads, 0)
    z_next = _next_latent(heads, z.shape[0], gaussians, key, counter, temperature)
    extra = heads[3 * z.shape[0] * gaussians:]
    if done_threshold:
        return z_next, h, c, extra, extra[1] > 0.0
    q = hazard_ufunc(extra[1], log_done_weight, done_window)
    return z_next, h, c, extra, np.float32(uniform_at(key, counter, 2, 0)) < q
