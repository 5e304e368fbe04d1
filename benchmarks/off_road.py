"""Does a CarRacing dream keep a car off the road once it has left it?

    python benchmarks/off_road.py --model runs/carracing/model

A controller evolved in a dream finds the dream's errors. The one that sank the first
CarRacing runs: steer off the road and the dream brings the road back under the car, paying
tile rewards the game never would. This measures it. On real tracks (``--seeds``), a fixed
action (full left lock, full right lock, straight at half gas, a gentle left) is held for
``--steps`` steps. After ``--observe`` real steps the model continues open-loop, ``--dreams``
dreams per track with the same action (tau ``--temperature``). Per 50-step segment: the share
of green (grass) pixels in a patch around the car, real frames against decoded dream frames,
and the reward summed after the dreams start, real against dreamed. A faithful dream keeps
the grass share and pays about what the game pays (-0.1 per frame off the road).
Writes JSON beside the printed table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from dream_gym.checkpoint import save_json
from dream_gym.contract import seed_dreams
from dream_gym.games import get_game
from dream_gym.games.carracing import carracing_grass_share as grass_share
from dream_gym.zoo import load_model

ACTIONS = {"left lock": (-1.0, 0.3, 0.0), "right lock": (1.0, 0.3, 0.0),
           "straight": (0.0, 0.5, 0.0), "gentle left": (-0.3, 0.4, 0.0)}
SEGMENT = 50


def segments(x: np.ndarray) -> list[float]:
    return [float(np.mean(x[i:i + SEGMENT])) for i in range(0, len(x), SEGMENT)]


@torch.no_grad()
def measure(model, action: tuple[float, float, float], seed: int, steps: int, observe: int,
            dreams: int, temperature: float) -> dict:
    game = get_game(model.game)
    env = game.make()
    obs, _ = env.reset(seed=seed)
    frames, rewards = [game.frame(obs)], []
    for _ in range(steps):
        obs, r, terminated, truncated, _ = env.step(np.array(action, np.float32))
        rewards.append(float(r))
        frames.append(game.frame(obs))
        if terminated or truncated:
            break
    env.close()
    fr, n = np.stack(frames), len(rewards)
    a = torch.tensor(action, dtype=torch.float32)
    ctx = torch.from_numpy(fr[:observe + 1])[None].expand(dreams, -1, -1, -1, -1).contiguous()
    state = seed_dreams(model.initial_state(ctx, a.expand(dreams, observe, len(a)).contiguous()),
                        torch.arange(dreams))
    dream_grass, dream_reward = [], 0.0
    for _ in range(observe, n):
        state, tr = model.imagine(state, a.expand(dreams, len(a)), temperature)
        dream_grass.append(float(grass_share(model.render(state).numpy()).mean()))
        dream_reward += float(tr.reward.mean())
    return {"grass_real": segments(grass_share(fr[observe + 1:n + 1])),
            "grass_dream": segments(np.array(dream_grass)),
            "reward_real": float(np.sum(rewards[observe:])), "reward_dream": dream_reward}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a CarRacing World Models folder")
    ap.add_argument("--seeds", type=int, nargs="+", default=[5000, 5001])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--observe", type=int, default=50)
    ap.add_argument("--dreams", type=int, default=32)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/off_road.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model)
    if model.game != "CarRacing":
        raise SystemExit(f"--model is a {model.game} model; this benchmark needs CarRacing.")
    rows = {}
    for name, action in ACTIONS.items():
        for seed in args.seeds:
            r = measure(model, action, seed, args.steps, args.observe, args.dreams,
                        args.temperature)
            rows[f"{name} {seed}"] = r
            fmt = " ".join(f"{g:4.2f}" for g in r["grass_real"])
            print(f"{name:<12}{seed:>6}  grass real  {fmt} | reward real  {r['reward_real']:7.1f}")
            fmt = " ".join(f"{g:4.2f}" for g in r["grass_dream"])
            print(f"{'':<18}  grass dream {fmt} | reward dream {r['reward_dream']:7.1f}",
                  flush=True)
    gap = np.mean([r["reward_dream"] - r["reward_real"] for r in rows.values()])
    print(f"mean dreamed minus real reward after step {args.observe}: {gap:+.1f}")
    save_json(args.out, {"model": str(args.model), "temperature": args.temperature,
                         "observe": args.observe, "dreams": args.dreams, "rows": rows,
                         "mean_reward_gap": float(gap)})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
