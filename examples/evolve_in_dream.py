"""Evolve a World Models controller inside Dream-TakeCover, then drive the real VizDoom with it.

    python examples/evolve_in_dream.py --generations 10

The controller never sees a real reward. In the real game it reads the same latent features
the dream gave it, through ``RealLatentObservation`` (World Models' feature extraction).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import dream_gym  # noqa: F401  (registers Dream-* ids)
from dream_gym.agents.controller import LinearController
from dream_gym.envs.latent import RealLatentObservation
from dream_gym.training.controller import ControllerTrainConfig, train_in_dream
from dream_gym.zoo import load_model, resolve


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--generations", type=int, default=10)
    p.add_argument("--temperature", type=float, default=1.15)
    p.add_argument("--episodes", type=int, default=10)
    args = p.parse_args()

    model_dir = resolve("takecover")
    cfg = ControllerTrainConfig(temperature=args.temperature, generations=args.generations,
                                population=32, rollouts=8, eval_rollouts=256,
                                max_steps=2100)  # TakeCover has no limit of its own
    with tempfile.TemporaryDirectory() as tmp:
        summary = train_in_dream(model_dir, cfg, Path(tmp), torch.device("cpu"),
                                 export_dir=tmp)
        controller, _ = LinearController.load(Path(tmp) / "controller")
    print(f"dream score {summary['dream_score']:.0f} +- {summary['dream_std']:.0f}")

    # The real game, observed through the world model: a plain Gymnasium loop.
    env = RealLatentObservation(gym.make("VizdoomTakeCover-v1"), load_model(model_dir))
    scores = []
    for ep in range(args.episodes):
        obs, _ = env.reset(seed=1000 + ep)
        done, score = False, 0.0
        while not done:
            action = int(controller.act(torch.from_numpy(obs)[None])[0])
            obs, reward, terminated, truncated, _ = env.step(action)
            score += reward
            done = terminated or truncated
        scores.append(score)
    print(f"real VizDoom: {np.mean(scores):.0f} +- {np.std(scores):.0f} over {len(scores)}")


if __name__ == "__main__":
    main()
