"""Would the dream have made the controller decide as the real game does? Decision drift.

    python benchmarks/decision_drift.py --models takecover runs/takecover_gamegan/model

A controller trained in a dream transfers only if, in the game, it sees what it saw in the
dream. This measures that along the controller's own real play: each model's shipped
controller plays ``--episodes`` real episodes (seeds 90000.., used by no recipe); then, from
each episode's first frame, the model is run twice with the episode's recorded actions:
fed the true frames (what the controller sees in the game) and open loop at ``--temperature``
(what it sees in the dream). Per window of steps: the share of steps at which the controller
takes the same action on both (Box actions: within ``BOX_TOLERANCE`` on every dimension),
and its mean tanh output on each. A controller whose dream drifts to other decisions after
k steps learned, from step k on, from a dream that is not the game (the TakeCover card's
GameGAN section: its dream's monsters fade, and the controller reads the fading as a
clock). Writes JSON.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from dream_gym.agents.controller import LinearController
from dream_gym.checkpoint import save_json
from dream_gym.contract import seed_dreams
from dream_gym.evaluate import evaluate_controller
from dream_gym.zoo import load_model, resolve

BOX_TOLERANCE = 0.1
"""Box actions (CarRacing) are the same when every dimension is within this."""


@torch.no_grad()
def decision_drift(model, ctrl: LinearController, episodes: list[dict[str, np.ndarray]],
                   steps: int, temperature: float, window: int) -> list[dict]:
    """Per window of ``window`` steps: agreement and mean outputs over the episodes alive."""
    n = len(episodes)
    lengths = torch.tensor([len(e["actions"]) for e in episodes])
    T = min(steps, int(lengths.max()) - 1)
    alive = torch.arange(T)[None] < (lengths - 1)[:, None]

    def padded(key: str) -> torch.Tensor:  # an ended episode repeats its last step
        return torch.stack([torch.from_numpy(e[key][np.minimum(np.arange(T + 1), len(e[key]) - 1)])
                            for e in episodes])

    frames, actions = padded("frames"), padded("actions")
    real = model.initial_state(frames[:, :1], actions[:, :0])
    dream = seed_dreams({k: v.clone() for k, v in real.items()}, torch.arange(n))
    same, y_real, y_dream = [], [], []
    for t in range(T):
        yr, yd = ctrl.outputs(model.features(real)), ctrl.outputs(model.features(dream))
        a, b = (torch.as_tensor(ctrl.mapping.to_action(y)) for y in (yr, yd))
        same.append(a == b if ctrl.game.discrete else (a - b).abs() <= BOX_TOLERANCE)
        y_real.append(yr.mean(-1))
        y_dream.append(yd.mean(-1))
        real = model.observe(real, actions[:, t], frames[:, t + 1])
        dream, _ = model.imagine(dream, actions[:, t], temperature)
    same_t = torch.stack(same, 1).reshape(n, T, -1).all(-1)
    yr, yd = torch.stack(y_real, 1), torch.stack(y_dream, 1)
    rows = []
    for t0 in range(0, T, window):
        m = alive[:, t0 : t0 + window]
        if m.sum() == 0:
            break
        rows.append({"steps": [t0, min(T, t0 + window) - 1], "n": int(m.sum()),
                     "same_action": float(same_t[:, t0 : t0 + window][m].float().mean()),
                     "output_real": float(yr[:, t0 : t0 + window][m].mean()),
                     "output_dream": float(yd[:, t0 : t0 + window][m].mean())})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["takecover"],
                   help="zoo names or model folders, each with its controller")
    p.add_argument("--episodes", type=int, default=24)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--window", type=int, default=50)
    p.add_argument("--temperature", type=float, default=None,
                   help="dream temperature (default: the one each controller was evolved at)")
    p.add_argument("--seed", type=int, default=90000)
    p.add_argument("--out", default="benchmarks/results/decision_drift.json")
    args = p.parse_args()
    res = {"episodes": args.episodes, "seed": args.seed, "models": {}}
    for name in args.models:
        model = load_model(name)
        ctrl, meta = LinearController.load(resolve(name) / "controller")
        tau = args.temperature if args.temperature is not None else float(
            meta.get("temperature", meta.get("config", {}).get("temperature", 1.0)))
        record: list[dict[str, np.ndarray]] = []
        score = evaluate_controller(model, ctrl, args.episodes, seed=args.seed, record=record,
                                    progress=False)
        rows = decision_drift(model, ctrl, record, args.steps, tau, args.window)
        res["models"][name] = {"temperature": tau, "real_mean": score["mean"], "windows": rows}
        print(f"\n{name} (tau {tau}; its controller's real play: {score['mean']:.1f} over "
              f"{args.episodes} episodes)")
        print(f"{'steps':<12}{'same action':>12}{'output, game':>14}{'output, dream':>15}"
              f"{'n':>7}")
        for r in rows:
            print(f"{r['steps'][0]:>4}-{r['steps'][1]:<7}{r['same_action']:>12.2f}"
                  f"{r['output_real']:>+14.2f}{r['output_dream']:>+15.2f}{r['n']:>7}")
    save_json(args.out, res)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
