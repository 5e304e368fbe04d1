"""Does M use the actions? Its teacher-forced loss on held-out real episodes with the true
actions, with the actions zeroed, and with them shuffled across the batch.

    python benchmarks/action_use.py --model takecover --episodes 16

If the next-latent NLL barely changes without the actions, M predicts the next frame from
the past frames alone and its dream will not answer a controller: every policy earns about
the same there (benchmarks/fixed_policies.py shows the consequence). Held-out episodes come
from a data-collection policy (``--policy``) with seeds no recipe trains on (``--seed``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.fidelity import add_policy_argument, held_out_episodes
from dream_gym.checkpoint import save_json
from dream_gym.training.mdnrnn import SequenceSampler, held_out_loss
from dream_gym.training.vae import encode_episodes
from dream_gym.zoo import load_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="takecover")
    p.add_argument("--episodes", type=int, default=16)
    p.add_argument("--max-steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=777, help="real seeds; recipes train on 0..")
    add_policy_argument(p)
    p.add_argument("--batches", type=int, default=8, help="held-out batches of 64 windows")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    model = load_model(args.model)
    eps = held_out_episodes(model.game, args.episodes, args.seed, args.max_steps, args.policy)
    lat = encode_episodes(model.vae, eps, None, torch.device("cpu"))
    sampler = SequenceSampler(eps, lat["mu"], lat["logvar"], model.game, model.gamevar_scale, 128,
                              np.random.default_rng(0), "mean", model.rnn.cfg.done_window)
    batches = [sampler.sample(64) for _ in range(args.batches)]
    shuffle = np.random.default_rng(1)
    variants = {
        "true actions": lambda a: a,
        "zeroed": torch.zeros_like,
        "shuffled across windows": lambda a: a[torch.from_numpy(shuffle.permutation(len(a)))],
    }
    res = {"model": args.model, "game": model.game, "frames": int(eps.lengths.sum()),
           "seed": args.seed, "policy": args.policy, "loss": {}}
    print(f"{model.game}: M's teacher-forced loss on {res['frames']} held-out frames")
    print(f"{'actions':<26}{'z NLL':>10}{'reward MSE':>12}{'done BCE':>10}")
    for name, f in variants.items():
        loss = held_out_loss(model.rnn, [{**b, "a": f(b["a"])} for b in batches],
                             torch.device("cpu"))
        res["loss"][name] = loss
        print(f"{name:<26}{loss['z_nll']:>10.4f}{loss['reward_mse']:>12.4f}"
              f"{loss['done_bce']:>10.4f}")
    gap = res["loss"]["zeroed"]["z_nll"] - res["loss"]["true actions"]["z_nll"]
    res["z_nll_gap_zeroed"] = gap
    print(f"z NLL lost without the actions: {gap:.4f} per latent dim per step")
    out = Path(args.out or f"benchmarks/results/action_use_{Path(args.model).name}.json")
    save_json(out, res)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
