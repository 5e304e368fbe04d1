"""Shared fixtures: the shipped zoo model, loaded once per session."""

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
