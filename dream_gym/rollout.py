"""Batched rollouts of many policies inside one world model (the CMA-ES workhorse)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from dream_gym.contract import WorldModel, seed_dreams, select_rows

__all__ = ["dream_returns"]

Policy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(features (B, F), row ids (B,)) -> actions (B,)"""


@torch.no_grad()
def dream_returns(model: WorldModel, policy: Policy, frames: torch.Tensor,
                  actions: torch.Tensor, temperature: float, max_steps: int,
                  seeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Roll B dreams from B contexts until each samples done or reaches ``max_steps``.

    Dream i draws its noise from ``seeds[i]`` alone (see :func:`~dream_gym.contract.seed_dreams`).
    Finished dreams are dropped from the batch, so the cost follows the living ones.

    Returns:
        (returns (B,), lengths (B,)) on the CPU.
    """
    state = seed_dreams(model.initial_state(frames, actions), seeds)
    B = frames.shape[0]
    rows = torch.arange(B, device=model.device)
    returns = torch.zeros(B, device=model.device)
    lengths = torch.zeros(B, dtype=torch.long, device=model.device)
    for _ in range(max_steps):
        act = policy(model.features(state), rows)
        state, tr = model.imagine(state, act, temperature)
        returns.index_add_(0, rows, tr.reward)
        lengths[rows] += 1
        alive = ~tr.done
        if not alive.all():
            rows = rows[alive]
            if len(rows) == 0:
                break
            state = select_rows(state, alive)
    return returns.cpu(), lengths.cpu()
