"""Is a dream's memory used? Strafe k steps one way and k back, in the dream, and compare views.

    python benchmarks/strafe_return.py --model takecover_gamegan --starts 32 --k 10 30

GameGAN's memory test (Kim et al. 2020, section 5: "go somewhere and come back"), on
TakeCover: from real starts (held-out episodes, ``--context`` real frames fed), the dream
takes k MOVE_RIGHT then k MOVE_LEFT at tau 0 (its mean future), and the view after the
return is compared to the view before leaving: its own (consistency) and the real frame it
started from. The same starts and actions are dreamed again with the memory's reads
zeroed (``memory_reads = False``: what the memory gives the engine and the renderer is
replaced by zeros); paired over the starts, the difference says whether the memory carries
what the view was. Writes JSON and a picture (before, after k right, after the return, the
same without reads).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.fidelity import held_out_episodes
from dream_gym.checkpoint import save_json
from dream_gym.contract import seed_dreams
from dream_gym.zoo import load_model

RIGHT, LEFT = 1, 2  # TakeCover's Discrete(3): 0 no-op, 1 MOVE_RIGHT, 2 MOVE_LEFT


@torch.no_grad()
def strafe(model, frames: torch.Tensor, actions: torch.Tensor, k: int, reads: bool
           ) -> dict[str, torch.Tensor]:
    """Views (B, S, S, 3) float in [0, 1]: before, after k right, after k back."""
    model.memory_reads = reads
    B = len(frames)
    state = seed_dreams(model.initial_state(frames, actions), torch.arange(B))
    views = {"before": model.render(state)}
    for a, name in ((RIGHT, "away"), (LEFT, "back")):
        act = torch.full((B,), a, dtype=torch.long)
        for _ in range(k):
            state, _ = model.imagine(state, act, 0.0)
        views[name] = model.render(state)
    model.memory_reads = True
    return {n: v.float() / 255 for n, v in views.items()}


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    d = b - a
    se = d.std(ddof=1) / np.sqrt(len(d))
    return {"with_reads": float(a.mean()), "reads_zeroed": float(b.mean()),
            "difference": float(d.mean()), "stderr": float(se), "t": float(d.mean() / se)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="takecover_gamegan")
    p.add_argument("--starts", type=int, default=32)
    p.add_argument("--k", type=int, nargs="+", default=[10, 30])
    p.add_argument("--context", type=int, default=10)
    p.add_argument("--seed", type=int, default=6161, help="real seeds of the starts")
    p.add_argument("--out", default="benchmarks/results/strafe_return.json")
    args = p.parse_args()
    model = load_model(args.model)
    if not hasattr(model, "memory_reads"):
        raise SystemExit(f"{args.model} has no memory reads to zero (a GameGAN dream has).")
    eps = held_out_episodes(model.game, args.starts, args.seed, max_steps=100)
    keep = [i for i in range(len(eps.lengths)) if eps.lengths[i] >= args.context]
    rng = np.random.default_rng(args.seed)  # starts anywhere in the first 100 steps
    first = [eps.starts[i] + rng.integers(eps.lengths[i] - args.context + 1) for i in keep]
    idx = np.stack([f + np.arange(args.context) for f in first])
    frames, actions = torch.from_numpy(eps.frames[idx]), torch.from_numpy(eps.actions[idx])
    real = frames[:, -1].float() / 255
    res = {"model": args.model, "starts": len(keep), "context": args.context,
           "seed": args.seed, "k": {}}
    rows = []
    for k in args.k:
        on, off = strafe(model, frames, actions, k, True), strafe(model, frames, actions, k,
                                                                   False)

        def err(v, ref):
            return ((v - ref) ** 2).mean((1, 2, 3)).numpy()

        res["k"][k] = {
            "return_vs_own_before": paired(err(on["back"], on["before"]),
                                           err(off["back"], off["before"])),
            "return_vs_real_before": paired(err(on["back"], real), err(off["back"], real)),
            "away_vs_own_before": float(err(on["away"], on["before"]).mean()),
        }
        for i in range(min(3, len(keep))):
            rows.append(torch.cat([real[i], on["before"][i], on["away"][i], on["back"][i],
                                   off["before"][i], off["away"][i], off["back"][i]], 1))
    out = Path(args.out)
    save_json(out, res)
    Image.fromarray((torch.cat(rows, 0).numpy() * 255).round().astype(np.uint8)).save(
        out.with_suffix(".png"))
    print(f"{args.model}: {len(keep)} starts (seeds from {args.seed}), tau 0; MSE ([0, 1]) "
          "of the view after the return")
    print(f"{'k':>4}{'against':>14}{'reads':>10}{'zeroed':>10}{'diff':>10}{'t':>7}"
          f"{'moved':>9}")
    for k, r in res["k"].items():
        for ref in ("own_before", "real_before"):
            m = r[f"return_vs_{ref}"]
            print(f"{k:>4}{ref:>14}{m['with_reads']:>10.5f}{m['reads_zeroed']:>10.5f}"
                  f"{m['difference']:>10.5f}{m['t']:>7.1f}{r['away_vs_own_before']:>9.5f}")
    print("picture rows: real, then with reads: before, away, back; zeroed: before, away, back")
    print(f"saved {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
