"""Does the dream rank simple policies as the real game does? Returns of fixed policies.

    python benchmarks/fixed_policies.py --model takecover --dreams 256 --episodes 15
    python benchmarks/fixed_policies.py --model DIR --temperature 1.0 --out car.json  # CarRacing

In VizDoom TakeCover (return = lifetime) a policy that runs into a wall and stays there dies
quickly, while one that sweeps from wall to wall makes the fireballs miss. A dream that gets
this order wrong teaches a controller to hug the wall. In CarRacing standing still loses
0.1 a step while driving collects tiles: a dream that pays both alike has nothing to teach.
Dreams start from the model's shipped contexts (dream i seeded i); real episodes are seeded
5000.. . Writes JSON beside the table.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from dream_gym.checkpoint import save_json
from dream_gym.evaluate import summarize
from dream_gym.games import get_game
from dream_gym.rollout import dream_returns
from dream_gym.zoo import load_contexts, load_model, resolve

POLICIES = {  # per game: name -> (step t -> action)
    "TakeCover": {
        "always right": lambda t: 1,
        "always left": lambda t: 2,
        "no-op": lambda t: 0,
        "sweep (left/right every 50 steps)": lambda t: 1 if (t // 50) % 2 == 0 else 2,
    },
    "CarRacing": {
        "stand still": lambda t: np.array([0.0, 0.0, 0.0], np.float32),
        "gas 0.3, straight": lambda t: np.array([0.0, 0.3, 0.0], np.float32),
        "full gas, straight": lambda t: np.array([0.0, 1.0, 0.0], np.float32),
        "gas 0.3, steer left 0.5": lambda t: np.array([-0.5, 0.3, 0.0], np.float32),
    },
}
MAX_STEPS = {"TakeCover": 2100, "CarRacing": 1000}


def dream_return(model, contexts, policy, n: int, temperature: float) -> dict:
    idx = torch.arange(n) % len(contexts["frames"])
    step = {"t": 0}

    def act(features: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        a = torch.as_tensor(policy(step["t"]))
        step["t"] += 1
        return a.expand(len(rows), *a.shape)

    ret, _ = dream_returns(model, act, contexts["frames"][idx], contexts["actions"][idx],
                           temperature, MAX_STEPS[model.game], torch.arange(n))
    return {"mean": float(ret.mean()), "stderr": float(ret.std() / n**0.5), "n": n}


def real_return(game: str, policy, episodes: int) -> dict:
    env = get_game(game).make()
    returns = []
    for ep in range(episodes):
        env.reset(seed=5000 + ep)
        t, ret, done = 0, 0.0, False
        while not done:
            _, r, term, trunc, _ = env.step(policy(t))
            t, ret, done = t + 1, ret + float(r), term or trunc
        returns.append(ret)
    env.close()
    r = summarize(returns)
    return {k: r[k] for k in ("mean", "stderr", "n")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="takecover")
    p.add_argument("--temperature", type=float, default=1.15)
    p.add_argument("--dreams", type=int, default=256)
    p.add_argument("--episodes", type=int, default=15, help="real episodes per policy")
    p.add_argument("--out", default="benchmarks/results/fixed_policies.json")
    args = p.parse_args()
    model, contexts = load_model(args.model), load_contexts(args.model)
    res = {"model": str(resolve(args.model)), "temperature": args.temperature, "policies": {}}
    print(f"{'policy':<36}{'dream':>16}{'real':>16}")
    for name, policy in POLICIES[model.game].items():
        d = dream_return(model, contexts, policy, args.dreams, args.temperature)
        r = real_return(model.game, policy, args.episodes)
        res["policies"][name] = {"dream": d, "real": r}
        print(f"{name:<36}{d['mean']:>9.0f} +- {d['stderr']:<4.0f}{r['mean']:>9.0f} +- "
              f"{r['stderr']:<4.0f}")
    save_json(args.out, res)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
