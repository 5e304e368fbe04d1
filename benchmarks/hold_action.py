"""Real game against dream while one action is held: does the dream reach the wall the game does?

    python benchmarks/hold_action.py --model takecover_gamegan --action 2 --steps 120

In TakeCover a policy that holds MOVE_LEFT reaches the room's side wall within about 60
steps and dies there quickly (fixed_policies.py: 160 steps); a dream that never shows the
wall cannot teach a controller not to hug it. The real game is reset with ``--seed`` and the
action held; the dream starts from the model's first shipped context and holds it at tau 0.
Writes a picture: top row the game, bottom row the dream, every ``--every`` steps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dream_gym.contract import seed_dreams
from dream_gym.games import get_game
from dream_gym.motion import SIDE_WALL, side_wall_share
from dream_gym.zoo import load_contexts, load_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="takecover_gamegan")
    p.add_argument("--action", type=int, default=2, help="TakeCover: 0 no-op, 1 right, 2 left")
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--every", type=int, default=20)
    p.add_argument("--seed", type=int, default=50000)
    p.add_argument("--temperature", type=float, default=0.0,
                   help="the dream's randomness knob (0: the mean future)")
    p.add_argument("--dreams", type=int, default=1, help="dreams held alike (own noise each)")
    p.add_argument("--share", type=float, default=1.0,
                   help="each step takes the action with this chance, else no-op (the same "
                        "steps in game and dream): the right-strafing bursts a dream-trained "
                        "controller plays, which held random actions never show")
    p.add_argument("--out", default="benchmarks/results/hold_action.png")
    args = p.parse_args()
    model, contexts = load_model(args.model), load_contexts(args.model)
    spec = get_game(model.game)
    n = args.dreams
    first = torch.zeros(n, dtype=torch.long)  # every dream from the first context
    state = seed_dreams(model.initial_state(contexts["frames"][first],
                                            contexts["actions"][first, :-1]), torch.arange(n))
    size = model.render(state).shape[1]
    actions = np.where(np.random.default_rng(args.seed).random(args.steps) < args.share,
                       args.action, 0)
    env = spec.make()
    obs, _ = env.reset(seed=args.seed)
    real = []
    for a in actions:
        real.append(np.asarray(Image.fromarray(spec.screen(obs)).resize((size, size))))
        obs, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            break
    env.close()
    dream = []
    for a in actions:
        dream.append(model.render(state).numpy())
        state, _ = model.imagine(state, torch.full((n,), int(a)), args.temperature)
    real, dream = np.stack(real), np.stack(dream, 1)  # (T, S, S, 3), (n, steps, S, S, 3)

    def first_wall(frames: np.ndarray) -> str:
        seen = np.flatnonzero(side_wall_share(frames) > SIDE_WALL)
        return str(seen[0]) if len(seen) else "never"

    shown = range(0, len(real), args.every)
    img = np.concatenate([np.concatenate([real[t] for t in shown], 1),
                          np.concatenate([dream[0, t] for t in shown], 1)], 0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).resize((3 * img.shape[1], 3 * img.shape[0]), Image.NEAREST).save(out)
    ended = f"ended at step {len(real)}" if len(real) < args.steps \
        else f"still alive at {args.steps}"
    print(f"action {args.action} held (share {args.share:g} of steps): the game {ended} "
          f"(seed {args.seed}); frames every {args.every} steps, game above, dream 0 below: {out}")
    print(f"first step with a side wall in view: game {first_wall(real)}; dreams at "
          f"temperature {args.temperature}: {[first_wall(d) for d in dream]}")

if __name__ == "__main__":
    main()
