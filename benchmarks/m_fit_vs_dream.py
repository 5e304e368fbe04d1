"""Does a better-fitting M make a better dream? Held-out loss beside fixed-policy dream lifetimes.

    python benchmarks/m_fit_vs_dream.py --models DIR [DIR ...] --episodes 60

For each model folder: M's teacher-forced loss (next-z mixture NLL and the done head's BCE)
on fresh real random-policy episodes that no model trained on (collected once, seeded, into
``--data``), and the dream lifetimes of always-right and of sweeping (left/right every 50
steps) over ``--dreams`` dreams at tau 1.15. In the real game sweeping lives about 2.8x as
long as always-right; a dream that loses that contrast teaches a controller nothing.
Used to check whether early-stopping M's refits on held-out likelihood would keep the
iterative rounds from collapsing (TakeCover card).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import torch

from benchmarks.fixed_policies import POLICIES, dream_return
from dream_gym.checkpoint import load_tensors, save_json
from dream_gym.data import CollectConfig, collect, load_episodes
from dream_gym.training.mdnrnn import SequenceSampler, held_out_loss
from dream_gym.training.vae import encode_episodes
from dream_gym.zoo import load_contexts, load_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--episodes", type=int, default=60, help="held-out real random episodes")
    p.add_argument("--seed", type=int, default=777, help="collection seed (training used 0)")
    p.add_argument("--data", default="runs/held_out_random")
    p.add_argument("--dreams", type=int, default=256)
    p.add_argument("--temperature", type=float, default=1.15)
    p.add_argument("--out", default="benchmarks/results/m_fit_vs_dream.json")
    args = p.parse_args()
    torch.manual_seed(0)
    first = load_model(args.models[0])
    data = Path(args.data)
    collect(CollectConfig(game=first.game, episodes=args.episodes, seed=args.seed), data)
    episodes = load_episodes(data)
    policies = {k: POLICIES["TakeCover"][k]
                for k in ("always right", "sweep (left/right every 50 steps)")}
    rows = {}
    print(f"{'model':<40}{'z NLL':>9}{'done BCE':>10}{'right':>8}{'sweep':>8}{'ratio':>7}")
    for m in args.models:
        model, contexts = load_model(m), load_contexts(m)
        # each model's own V: the cache key is the V file, so models sharing a V share it
        key = hashlib.sha1((Path(m) / "vae.safetensors").read_bytes()).hexdigest()[:12]
        cache = data / f"latents_{key}.safetensors"
        lat = ({k: v.numpy() for k, v in load_tensors(cache).items()} if cache.exists()
               else encode_episodes(model.vae, episodes, cache, torch.device("cpu")))
        sampler = SequenceSampler(episodes, lat["mu"], lat["logvar"], model.game,
                                  model.gamevar_scale, 128, np.random.default_rng(0), "mean",
                                  model.rnn.cfg.done_window)
        loss = held_out_loss(model.rnn, [sampler.sample(64) for _ in range(8)],
                             torch.device("cpu"))
        life = {name: dream_return(model, contexts, pol, args.dreams, args.temperature)
                for name, pol in policies.items()}
        right, sweep = (life[k]["mean"] for k in policies)
        rows[m] = {"held_out": loss, "dream": life, "sweep_over_right": sweep / right}
        print(f"{m[-40:]:<40}{loss['z_nll']:>9.4f}{loss['done_bce']:>10.4f}{right:>8.0f}"
              f"{sweep:>8.0f}{sweep / right:>7.2f}", flush=True)
    save_json(args.out, {"episodes": args.episodes, "seed": args.seed,
                         "temperature": args.temperature, "models": rows})
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
