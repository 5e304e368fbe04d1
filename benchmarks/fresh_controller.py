"""A fresh controller evolved in the shipped dream on the transfer test's small budget, then
scored in real VizDoom on the test's 30 seeds and on 100 episodes from seed 10000.

    python benchmarks/fresh_controller.py

Same configuration as ``tests/test_transfer.py::test_fresh_dream_controllers_beat_random_in_
real_game`` (30 generations of 32 x 8 dreams, tau 1.15, rollouts cut at 1,000 steps), for its
first CMA-ES seed (1); the test pools seeds 1-3. The search is whitened, as the test's since
2026-12-05; the card's figures before that day were raw (``whiten=False``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from dream_gym.agents.controller import LinearController
from dream_gym.evaluate import evaluate_controller, evaluate_random, welch_t
from dream_gym.training.controller import ControllerTrainConfig, train_in_dream
from dream_gym.zoo import load_model, resolve


def main() -> None:
    model = load_model("takecover")
    cfg = ControllerTrainConfig(temperature=1.15, generations=30, population=32, rollouts=8,
                                max_steps=1000, eval_rollouts=128, seed=1, whiten=True)
    with tempfile.TemporaryDirectory() as tmp:
        summary = train_in_dream(resolve("takecover"), cfg, Path(tmp) / "run",
                                 torch.device("cpu"), export_dir=tmp)
        controller, _ = LinearController.load(Path(tmp) / "controller")
    print(f"dream score {summary['dream_score']:.1f}")
    for seed, n in ((50_000, 30), (10_000, 100)):
        real = evaluate_controller(model, controller, n, seed=seed, progress=False)
        rand = evaluate_random(model.game, n, seed=seed, progress=False)
        print(f"seeds {seed}..: real {real['mean']:.1f} +- {real['std']:.1f}, random "
              f"{rand['mean']:.1f} +- {rand['std']:.1f}, n={n}, Welch t "
              f"{welch_t(real, rand):.2f}")


if __name__ == "__main__":
    main()
