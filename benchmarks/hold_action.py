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
    p.add_argument("--out", default="benchmarks/results/hold_action.png")
    args = p.parse_args()
    model, contexts = load_model(args.model), load_contexts(args.model)
    spec = get_game(model.game)
    state = seed_dreams(model.initial_state(contexts["frames"][:1], contexts["actions"][:1, :-1]),
                        torch.arange(1))
    size = model.render(state).shape[1]
    env = spec.make()
    obs, _ = env.reset(seed=args.seed)
    real, dream = [], []
    for t in range(args.steps):
        if t % args.every == 0:
            real.append(np.asarray(Image.fromarray(spec.screen(obs)).resize((size, size))))
        obs, _, terminated, truncated, _ = env.step(args.action)
        if terminated or truncated:
            break
    env.close()
    lived = t + 1
    for t in range(len(real) * args.every):
        if t % args.every == 0:
            dream.append(model.render(state)[0].numpy())
        state, _ = model.imagine(state, torch.tensor([args.action]), args.temperature)
    img = np.concatenate([np.concatenate(real, 1), np.concatenate(dream, 1)], 0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).resize((3 * img.shape[1], 3 * img.shape[0]), Image.NEAREST).save(out)
    ended = f"ended at step {lived}" if lived < args.steps else f"still alive at {args.steps}"
    print(f"action {args.action} held: the game {ended} (seed {args.seed}); "
          f"frames every {args.every} steps, game above, dream below: {out}")


if __name__ == "__main__":
    main()
