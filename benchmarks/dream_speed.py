"""How fast does a CarRacing dream think the car goes, against the game?

    python benchmarks/dream_speed.py --model carracing

The shipped driver never finishes a lap in 1,000 steps: it is slow in the game. This
measures whether the dream moves the car faster than the game does. Policies: the model's
own controller (where the folder has one), coasting (no input), standing on the brake, and
straight at gas 0.1. For each, over ``--episodes`` real tracks: the return and the car's
speed, read off the dashboard (``games.carracing_speed``); over ``--dreams`` dreams from the
model's contexts (tau ``--temperature``, no off-track stop): the return and the dreamed
speed, read two ways. A ridge probe from the features [z, h] to the speed, fitted on the
real episodes' features (teacher-forced, the real-game latent), reads any dream; an M with
a speed head (recipe ``[mdnrnn] predict_gamevars = true``) also gives its own. Writes JSON.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from dream_gym.agents.controller import LinearController
from dream_gym.checkpoint import save_json
from dream_gym.contract import State, seed_dreams, select_rows
from dream_gym.evaluate import evaluate_controller
from dream_gym.training.controller import starting_states
from dream_gym.zoo import load_contexts, load_model, resolve

Policy = Callable[[torch.Tensor], torch.Tensor]


def constant(action: tuple[float, float, float]) -> Policy:
    a = torch.tensor(action, dtype=torch.float32)
    return lambda x: a.expand(len(x), 3)


@torch.no_grad()
def real_run(model, policy: Policy, episodes: int, seed: int) -> dict:
    """Returns, per-step speeds and teacher-forced features of real episodes."""
    rec: list[dict[str, np.ndarray]] = []
    score = evaluate_controller(model, policy, episodes, seed=seed, record=rec, progress=False)
    feats = []
    for e in rec:
        f = torch.from_numpy(e["frames"])[None]
        a = torch.from_numpy(e["actions"])[None]
        state = model.initial_state(f[:, :1], a[:, :0])
        out = [model.features(state)]
        for t in range(len(e["actions"]) - 1):
            state = model.observe(state, a[:, t], f[:, t + 1])
            out.append(model.features(state))
        feats.append(torch.cat(out).numpy())
    return {"returns": score["returns"], "speed": [e["gamevars"][:, 0] for e in rec],
            "features": feats}


@torch.no_grad()
def dream_run(model, start: State, policy: Policy, probe: np.ndarray, n: int,
              temperature: float, steps: int, seed: int) -> dict:
    """Returns of ``n`` dreams from the contexts' starting states ``start`` and the dreamed
    speed per step (probe; M's head if any)."""
    rows = torch.from_numpy(np.random.default_rng(seed).integers(len(start["h"]), size=n))
    state = seed_dreams(select_rows(start, rows), seed * 1_000_003 + torch.arange(n))
    w = torch.from_numpy(probe).float()
    ret, alive = torch.zeros(n), torch.ones(n, dtype=torch.bool)
    by_probe, by_head = [], []
    features = model.features(state)
    for _ in range(steps):
        state, tr = model.imagine(state, policy(features), temperature)
        features = model.features(state)
        ret += tr.reward * alive
        alive &= ~tr.done
        if not alive.any():
            break
        by_probe.append(float((features[alive] @ w[:-1] + w[-1]).mean()))
        if tr.gamevars.shape[-1]:
            by_head.append(float(tr.gamevars[alive, 0].mean()))
    return {"returns": ret.tolist(), "speed_probe": by_probe, "speed_head": by_head}


def fit_probe(features: list[np.ndarray], speeds: list[np.ndarray], lam: float = 10.0
              ) -> tuple[np.ndarray, float]:
    """Ridge [features, 1] -> speed on the even episodes; R^2 on the odd ones. The probe
    returned is refitted on all of them."""
    def fit(idx):
        x = np.concatenate([np.c_[features[i], np.ones(len(features[i]))] for i in idx])
        y = np.concatenate([speeds[i] for i in idx])
        return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y), x, y

    w, _, _ = fit(range(0, len(features), 2))
    _, x, y = fit(range(1, len(features), 2))
    r2 = 1 - float(((x @ w - y) ** 2).mean() / y.var())
    return fit(range(len(features)))[0], r2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="carracing", help="zoo name or model folder")
    ap.add_argument("--episodes", type=int, default=8, help="real tracks per policy")
    ap.add_argument("--seed", type=int, default=115000, help="first real track's seed")
    ap.add_argument("--dreams", type=int, default=256)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/dream_speed.json"))
    args = ap.parse_args()
    model = load_model(args.model)
    if model.game != "CarRacing":
        raise SystemExit(f"--model is a {model.game} model; this benchmark needs CarRacing.")
    policies: dict[str, Policy] = {}
    folder = resolve(args.model)
    if (folder / "controller.json").exists():
        policies["controller"] = LinearController.load(folder / "controller")[0].act
    policies |= {"coast": constant((0, 0, 0)), "stand": constant((0, 0, 1)),
                 "gas 0.1": constant((0, 0.1, 0))}

    real = {k: real_run(model, p, args.episodes, args.seed) for k, p in policies.items()}
    probe, r2 = fit_probe([f for r in real.values() for f in r["features"]],
                          [s for r in real.values() for s in r["speed"]])
    print(f"speed probe on [z, h]: held-out R^2 {r2:.3f} ({args.episodes} tracks per policy)")
    print(f"{'policy':<11} {'real return':>15} {'dream return':>15} {'real speed':>10} "
          f"{'dream (probe)':>13} {'dream (M)':>9}")
    ctx = load_contexts(args.model)
    start = starting_states([model], ctx["frames"], ctx["actions"])[0]  # once for all policies
    rows = {}
    for k, p in policies.items():
        d = dream_run(model, start, p, probe, args.dreams, args.temperature, args.steps, 12345)
        rr, dr = np.asarray(real[k]["returns"]), np.asarray(d["returns"])
        row = {"real_return": float(rr.mean()), "real_return_std": float(rr.std()),
               "dream_return": float(dr.mean()), "dream_return_std": float(dr.std()),
               "real_speed": float(np.concatenate(real[k]["speed"]).mean()),
               "dream_speed_probe": float(np.mean(d["speed_probe"])),
               "dream_speed_head": float(np.mean(d["speed_head"])) if d["speed_head"] else None}
        rows[k] = row
        head = f"{row['dream_speed_head']:9.1f}" if d["speed_head"] else f"{'-':>9}"
        print(f"{k:<11} {rr.mean():7.1f} +- {rr.std():5.1f} {dr.mean():7.1f} +- {dr.std():5.1f} "
              f"{row['real_speed']:10.1f} {row['dream_speed_probe']:13.1f} {head}", flush=True)
    save_json(args.out, {"model": str(args.model), "episodes": args.episodes,
                         "first_seed": args.seed, "dreams": args.dreams,
                         "temperature": args.temperature, "probe_heldout_r2": r2, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
