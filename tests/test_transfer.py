"""Policy transfer: a controller evolved only inside the shipped dream wins in real VizDoom."""

from __future__ import annotations

import pytest
import torch

from dream_gym.agents.controller import LinearController
from dream_gym.evaluate import evaluate_controller, evaluate_random, welch_t
from dream_gym.training.controller import ControllerTrainConfig, train_in_dream
from dream_gym.zoo import resolve

EPISODES = 30

# Measured for issue 2: a small-budget controller evolved in this dream beats random in the
# real game (the first test: 278 +- 34 vs 207 +- 86 on its 30 seeds, t = 4.3), but the
# shipped controller, evolved longer, settles against a wall and does not (181 +- 48 vs
# random 241 +- 123, 100 episodes from seed 10000). Strict xfail makes CI fail the day the
# second test starts passing, so the mark is removed with the fix rather than forgotten.
NOT_YET = pytest.mark.xfail(strict=True, reason="shipped controller hugs a wall; see CARD.md")



@pytest.mark.slow
def test_fresh_dream_controller_beats_random_in_real_game(tmp_path, takecover):
    cfg = ControllerTrainConfig(temperature=1.15, generations=5, population=16, rollouts=8,
                                max_steps=1000, eval_rollouts=128, seed=1)
    summary = train_in_dream(resolve("takecover"), cfg, tmp_path / "run",
                             torch.device("cpu"), export_dir=tmp_path, progress=False)
    controller, meta = LinearController.load(tmp_path / "controller")
    assert meta["temperature"] == 1.15 and summary["generations"] == 5

    real = evaluate_controller(takecover, controller, EPISODES, seed=50_000, progress=False)
    rand = evaluate_random("TakeCover", EPISODES, seed=50_000, progress=False)
    t = welch_t(real, rand)
    assert t > 3.0, (f"controller {real['mean']:.0f}+-{real['std']:.0f} vs random "
                     f"{rand['mean']:.0f}+-{rand['std']:.0f}: t={t:.2f}")


@NOT_YET
def test_shipped_controller_beats_random_in_real_game(takecover):
    controller, _ = LinearController.load(resolve("takecover") / "controller")
    real = evaluate_controller(takecover, controller, 20, seed=60_000, progress=False)
    rand = evaluate_random("TakeCover", 20, seed=60_000, progress=False)
    assert welch_t(real, rand) > 3.0, (real["mean"], rand["mean"])
