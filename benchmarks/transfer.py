"""World Models' temperature table: a controller evolved only in the dream at each tau, then
scored in the dream and over 100 real episodes with distinct seeds, beside the random policy.

    python benchmarks/transfer.py --model runs/takecover/model --taus 0.5 1.0 1.15 1.3

Resumable: each tau's controller trains under ``--runs`` and its result is kept in ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dream_gym.agents.controller import LinearController
from dream_gym.checkpoint import save_json
from dream_gym.evaluate import evaluate_controller, evaluate_random
from dream_gym.training.common import default_device
from dream_gym.training.controller import ControllerTrainConfig, train_in_dream
from dream_gym.zoo import load_model, resolve


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="takecover")
    p.add_argument("--taus", type=float, nargs="+", default=[0.5, 1.0, 1.15, 1.3])
    p.add_argument("--generations", type=int, default=40)
    p.add_argument("--population", type=int, default=64)
    p.add_argument("--rollouts", type=int, default=16)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=10_000, help="first real episode seed")
    p.add_argument("--whiten", action=argparse.BooleanOptionalAction, default=False,
                   help="CMA-ES in whitened feature coordinates (the card's tables: without)")
    p.add_argument("--runs", default="runs/temperature")
    p.add_argument("--out", default="benchmarks/results/temperature.json")
    args = p.parse_args()

    device = default_device()
    model_dir = resolve(args.model)
    model = load_model(model_dir, device)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    if "random" not in results:
        r = evaluate_random(model.game, args.episodes, seed=args.seed)
        results["random"] = {k: r[k] for k in ("mean", "std", "n")}
        save_json(out, results)
    for tau in args.taus:
        key = f"tau={tau:g}"
        if key in results:
            continue
        run = Path(args.runs) / key
        cfg = ControllerTrainConfig(temperature=tau, generations=args.generations,
                                    population=args.population, rollouts=args.rollouts,
                                    whiten=args.whiten, max_steps=2100)
        summary = train_in_dream(model_dir, cfg, run, device, export_dir=run)
        ctrl, _ = LinearController.load(run / "controller")
        real = evaluate_controller(model, ctrl, args.episodes, seed=args.seed)
        results[key] = {"temperature": tau, "dream_mean": summary["dream_score"],
                        "dream_std": summary["dream_std"], "real_mean": real["mean"],
                        "real_std": real["std"], "n": real["n"],
                        "generations": summary["generations"],
                        "train_seconds": summary["train_seconds"]}
        save_json(out, results)
    rnd = results["random"]
    print(f"\n| tau | dream score | real score (n={args.episodes}) |")
    print("|---|---|---|")
    for key, row in results.items():
        if key != "random":
            print(f"| {row['temperature']:g} | {row['dream_mean']:.0f} +- {row['dream_std']:.0f} "
                  f"| {row['real_mean']:.0f} +- {row['real_std']:.0f} |")
    print(f"| random policy | - | {rnd['mean']:.0f} +- {rnd['std']:.0f} |")


if __name__ == "__main__":
    main()
