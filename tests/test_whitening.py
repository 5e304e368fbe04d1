"""CMA-ES in whitened feature coordinates: the same controller, a search that does not stall."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dream_gym.agents.controller import LinearController
from dream_gym.checkpoint import load_tensors
from dream_gym.training.controller import ControllerTrainConfig, Whitening, train_in_dream
from dream_gym.zoo import resolve


def test_a_search_vector_is_the_controller_on_centred_scaled_features():
    rng = np.random.default_rng(0)
    d, outputs = 7, 3
    white = Whitening(rng.normal(size=d), rng.uniform(0.1, 2.0, size=d))
    search = rng.normal(size=(5, (d + 1) * outputs))
    x = rng.normal(size=(11, d))
    ctrl = LinearController("CarRacing", d, white.params(search))
    for k in range(len(search)):
        W, b = search[k, : d * outputs].reshape(outputs, d), search[k, d * outputs :]
        expected = np.tanh(((x - white.mean) / white.std) @ W.T + b)
        got = ctrl.outputs(torch.from_numpy(x).float(), torch.full((len(x),), k))
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-5)
    assert not white.params(np.zeros((d + 1) * outputs)).any()  # CMA-ES starts from zero


@pytest.mark.slow
def test_whitened_search_escapes_the_stall_of_raw_search(tmp_path):
    """Short CMA-ES runs in the shipped TakeCover dream, seeds 0 and 1, raw against whitened
    (the same budget: 10 generations of 32 x 8 dreams). The raw runs of these seeds stay
    near a fixed action (dream score about 250 after 40 generations, 2026-12-05); the
    whitened ones dodge (565-640 after 40)."""
    scores: dict[bool, list[float]] = {False: [], True: []}
    for whiten in (False, True):
        for seed in (0, 1):
            cfg = ControllerTrainConfig(temperature=1.15, generations=10, population=32,
                                        rollouts=8, max_steps=1000, eval_rollouts=128,
                                        seed=seed, whiten=whiten)
            run = tmp_path / f"{whiten}{seed}"
            s = train_in_dream(resolve("takecover"), cfg, run, torch.device("cpu"),
                               progress=False)
            scores[whiten].append(s["dream_score"])
    raw, white = np.mean(scores[False]), np.mean(scores[True])
    print(f"dream scores, raw {scores[False]} vs whitened {scores[True]}")  # pytest -rP
    assert white > raw + 100, scores


@pytest.mark.slow  # CMA-ES in the shipped dream
def test_a_run_resumes_only_in_the_coordinates_it_started_in(tmp_path):
    """A resumed run keeps the statistics it started with, and refuses the other setting."""
    cfg = ControllerTrainConfig(generations=1, population=4, rollouts=1, max_steps=10,
                                eval_rollouts=4, whiten=True)
    train_in_dream(resolve("takecover"), cfg, tmp_path, torch.device("cpu"), progress=False)
    first = load_tensors(tmp_path / "es.safetensors")["feature_mean"]
    cfg.generations = 2
    train_in_dream(resolve("takecover"), cfg, tmp_path, torch.device("cpu"), progress=False)
    assert torch.equal(load_tensors(tmp_path / "es.safetensors")["feature_mean"], first)
    cfg.generations, cfg.whiten = 3, False
    with pytest.raises(ValueError, match="with whitened features, but this config has "
                                         "whiten = False"):
        train_in_dream(resolve("takecover"), cfg, tmp_path, torch.device("cpu"),
                       progress=False)
