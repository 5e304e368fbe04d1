"""Does a dream move when the player strafes? The view's horizontal shift, dream against game.

    python benchmarks/strafe_shift.py --models takecover takecover_gamegan --k 8

In TakeCover strafing slides the whole view sideways; a controller can only learn where to
stand in a dream whose view follows the actions. Fresh real episodes of the random
collection policy (seeds no recipe trains on) give the windows in which one action was held
for ``k`` steps (the policy holds actions 1 to 12 steps). For each such window the real shift
is the horizontal displacement (``dream_gym.motion.horizontal_shift``: -8..8 pixels of 64,
the middle rows, the best match in mean squared error, refined below a pixel) from its
first frame to its last. Each dream starts from the same ``--context`` real frames, takes
the same ``k`` actions at tau 0, and its shift is measured alike. Per action: mean real
shift, mean dream shift, and the share of windows whose dream shift has the real one's
sign. One run, every model, the same windows. Writes JSON.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.fidelity import held_out_episodes
from dream_gym.checkpoint import save_json
from dream_gym.contract import seed_dreams
from dream_gym.motion import horizontal_shift
from dream_gym.zoo import load_model


def held_windows(eps, context: int, k: int, per_action: int, rng: np.random.Generator
                 ) -> dict[int, np.ndarray]:
    """Per action, start indices t of windows: ``context`` frames up to t, then the action at
    t..t+k-1 all equal (frames t..t+k of one episode)."""
    out: dict[int, list[int]] = {}
    for s, n in zip(eps.starts, eps.lengths, strict=True):
        for t in range(s + context - 1, s + n - k):
            acts = eps.actions[t:t + k]
            if (acts == acts[0]).all():
                out.setdefault(int(acts[0]), []).append(t)
    return {a: rng.permutation(ts)[:per_action] for a, ts in sorted(out.items())}


@torch.no_grad()
def dream_end(model, eps, ts: np.ndarray, context: int, k: int) -> np.ndarray:
    """The dream's view after the window's k actions from its real context, (N, S, S, 3)."""
    idx = ts[:, None] + np.arange(-context + 1, 1)
    frames = torch.from_numpy(eps.frames[idx])
    actions = torch.from_numpy(eps.actions[idx])
    state = seed_dreams(model.initial_state(frames, actions[:, :-1]), torch.arange(len(ts)))
    for j in range(k):
        state, _ = model.imagine(state, torch.from_numpy(eps.actions[ts + j]), 0.0)
    return model.render(state).float().numpy() / 255


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["takecover", "takecover_gamegan"])
    p.add_argument("--episodes", type=int, default=32)
    p.add_argument("--seed", type=int, default=8282, help="real seeds; recipes train on 0..")
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--context", type=int, default=10)
    p.add_argument("--per-action", type=int, default=128)
    p.add_argument("--out", default="benchmarks/results/strafe_shift.json")
    args = p.parse_args()
    models = {name: load_model(name) for name in args.models}
    game = next(iter(models.values())).game
    eps = held_out_episodes(game, args.episodes, args.seed, max_steps=1000)
    windows = held_windows(eps, args.context, args.k, args.per_action,
                           np.random.default_rng(args.seed))
    res: dict = {"episodes": args.episodes, "seed": args.seed, "k": args.k,
                 "context": args.context, "actions": {}}
    print(f"horizontal view shift (pixels of 64) after {args.k} held actions, tau 0")
    print(f"{'action':>7}{'windows':>9}{'real':>8}" + "".join(f"{n[-22:]:>24}" for n in models))
    for a, ts in windows.items():
        start = eps.frames[ts].astype(np.float32) / 255
        real = horizontal_shift(start, eps.frames[ts + args.k].astype(np.float32) / 255)
        row = {"windows": len(ts), "real_mean": float(real.mean()), "models": {}}
        cells = []
        for name, model in models.items():
            d = horizontal_shift(start, dream_end(model, eps, ts, args.context, args.k))
            agree = float((np.sign(d) == np.sign(real))[real != 0].mean()) \
                if (real != 0).any() else float("nan")
            row["models"][name] = {"mean": float(d.mean()),
                                   "stderr": float(d.std(ddof=1) / np.sqrt(len(d))),
                                   "sign_agrees": agree}
            cells.append(f"{d.mean():+.2f} (sign {agree:.0%})")
        res["actions"][a] = row
        print(f"{a:>7}{len(ts):>9}{real.mean():>+8.2f}" + "".join(f"{c:>24}" for c in cells))
    save_json(Path(args.out), res)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
