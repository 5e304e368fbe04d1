"""Policy transfer: a controller evolved only inside the shipped dream wins in real VizDoom."""

from __future__ import annotations

import pytest
import torch

from dream_gym.agents.controller import LinearController
from dream_gym.evaluate import evaluate_controller, evaluate_random, summarize, welch_t
from dream_gym.training.controller import ControllerTrainConfig, train_in_dream
from dream_gym.zoo import resolve

EPISODES = 30


@pytest.mark.slow
def test_fresh_dream_controllers_beat_random_in_real_game(tmp_path, takecover):
    """Two short CMA-ES runs (15 generations, CMA-ES seeds 1 and 2, fixed), each evolved
    only in the shipped dream, pooled over their 30 real episodes each. Pooled, because on
    raw parameters a 30-generation run stalled in one or two draws of three near the random
    policy's score (t 1.6, 1.3, 8.5 on 2026-12-04), so one draw tested the draw, not the
    dream; the search is now whitened, which escapes that stall (tests/test_whitening.py),
    and the pool stays as a margin. Whitened, 15 generations suffice (2026-12-06: real
    722.7, 771.8 and 716.1 for seeds 1 to 3 vs random 206.5, t 11.2; the third seed was
    dropped on 2026-12-07 to keep the suite near 20 minutes on 2 cores)."""
    returns, lines = [], []
    for seed in (1, 2):
        cfg = ControllerTrainConfig(temperature=1.15, generations=15, population=32,
                                    rollouts=8, max_steps=1000, eval_rollouts=128, seed=seed,
                                    whiten=True)
        run = tmp_path / f"seed{seed}"
        summary = train_in_dream(resolve("takecover"), cfg, run / "es", torch.device("cpu"),
                                 export_dir=run, progress=False)
        controller, meta = LinearController.load(run / "controller")
        assert meta["temperature"] == 1.15 and summary["generations"] == 15
        real = evaluate_controller(takecover, controller, EPISODES, seed=50_000,
                                   progress=False)
        returns += real["returns"]
        lines.append(f"seed {seed}: dream {summary['dream_score']:.1f}, real {real['mean']:.1f}")
    real = summarize(returns)
    rand = evaluate_random("TakeCover", EPISODES, seed=50_000, progress=False)
    t = welch_t(real, rand)
    msg = (f"fresh controllers {real['mean']:.1f}+-{real['std']:.1f} vs random "
           f"{rand['mean']:.1f}+-{rand['std']:.1f}: Welch t {t:.2f} ({'; '.join(lines)})")
    print(msg)  # the margin, shown with pytest -rP
    assert t > 3.0, msg


@pytest.mark.slow
def test_shipped_controller_beats_random_in_real_game(takecover):
    """The shipped controller (757.5 pooled over 1,200 pre-registered episodes, random about
    220; see the model card) on 20 other seeds."""
    controller, _ = LinearController.load(resolve("takecover") / "controller")
    real = evaluate_controller(takecover, controller, 20, seed=60_000, progress=False)
    rand = evaluate_random("TakeCover", 20, seed=60_000, progress=False)
    assert welch_t(real, rand) > 3.0, (real["mean"], rand["mean"])
