"""Shared fixtures: the shipped zoo model, loaded once per session; a TensorBoard reader."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def takecover():
    from dream_gym.zoo import load_model

    return load_model("takecover")


@pytest.fixture
def tb_scalars():
    """Every scalar series a run wrote to TensorBoard: run_dir -> {tag: values}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def read(run_dir) -> dict[str, list[float]]:
        acc = EventAccumulator(str(run_dir)).Reload()
        return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    return read
