"""Batched rollouts of many policies inside one world model (the CMA-ES workhorse)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from dream_gym.contract import State, WorldModel, seed_dreams, select_rows

__all__ = ["dream_returns", "state_returns", "Policy", "StopRule"]

Policy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(features (B, F), row ids (B,)) -> actions (B,)"""

StopRule = Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]
"""(features of the living rows after step t, their row ids, t) -> (which of them end now,
the reward charged to each at its end); e.g. :class:`~dream_gym.training.off_track.OffTrackStop`."""


@torch.no_grad()
def dream_returns(model: WorldModel, policy: Policy, frames: torch.Tensor,
                  actions: torch.Tensor, temperature: float, max_steps: int,
                  seeds: torch.Tensor, stop: Callable[[int], StopRule] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Roll B dreams from B contexts until each samples done or reaches ``max_steps``
    (or, with ``stop``, a factory of a rule for B dreams, until the rule ends it).

    Dream i draws its noise from ``seeds[i]`` alone (see :func:`~dream_gym.contract.seed_dreams`).
    Finished dreams are dropped from the batch, so the cost follows the living ones.

    Returns:
        (returns (B,), lengths (B,)) on the CPU.
    """
    state = seed_dreams(model.initial_state(frames, actions), seeds)
    return state_returns(model, policy, state, temperature, max_steps, stop)


@torch.no_grad()
def state_returns(model: WorldModel, policy: Policy, state: State, temperature: float,
                  max_steps: int, stop: Callable[[int], StopRule] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`dream_returns` from B seeded starting states (e.g. computed once for many
    rollouts: a long context costs V and M a pass over every frame)."""
    B = len(state["t"])
    rows = torch.arange(B, device=model.device)
    returns = torch.zeros(B, device=model.device)
    lengths = torch.zeros(B, dtype=torch.long, device=model.device)
    rule = stop(B) if stop is not None else None
    features = model.features(state)
    for t in range(max_steps):
        act = policy(features, rows)
        state, tr = model.imagine(state, act, temperature)
        returns.index_add_(0, rows, tr.reward)
        lengths[rows] += 1
        features = model.features(state)
        alive = ~tr.done
        if rule is not None:
            ended, charge = rule(features, rows, t)
            returns.index_add_(0, rows, charge)
            alive &= ~ended
        if not alive.all():
            rows = rows[alive]
            if len(rows) == 0:
                break
            state = select_rows(state, alive)
            features = features[alive]
    return returns.cpu(), lengths.cpu()
