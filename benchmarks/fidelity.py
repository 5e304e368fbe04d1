"""How faithful is a dream? Open-loop frames and predicted rewards on held-out real episodes.

    python benchmarks/fidelity.py --model takecover --episodes 16 --horizon 100

Fresh real episodes of the random data-collection policy are played with seeds no recipe
trains on (``--seed``). For each one the model is conditioned on its first ``--context``
frames and then rolled open-loop with the episode's true actions (tau ``--temperature``);
the per-horizon mean squared pixel error (64x64, [0, 1]) and PSNR of the dream frames
against the real ones are reported beside two references: V's own reconstruction error (the
floor a dream cannot beat, per step) and "the last context frame, held" (a dream must beat it).

Rewards: teacher-forced (M sees the real frames up to t), the predicted reward of step t
against the real one: mean absolute error, correlation, and the summed-episode error. Writes
JSON and a picture of real vs dream frames.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dream_gym.checkpoint import save_json
from dream_gym.contract import seed_dreams
from dream_gym.data import CollectConfig, collect, load_episodes
from dream_gym.zoo import load_model


def add_policy_argument(parser: argparse.ArgumentParser) -> None:
    """``--policy``: which collection policy plays the held-out episodes."""
    parser.add_argument("--policy", default="random", help="held-out collection policy "
                        "(dream_gym.games.collection_policy; CarRacing's recipe: 'road_modes')")


def held_out_episodes(game: str, n: int, seed: int, max_steps: int, policy: str = "random"):
    """Fresh real episodes of a collection ``policy`` (see dream_gym.explore), with seeds no
    recipe trains on."""
    with tempfile.TemporaryDirectory() as d:
        collect(CollectConfig(game=game, episodes=n, episodes_per_shard=1, workers=0,
                              max_steps=max_steps, policy=policy, seed=seed), d)
        return load_episodes(d)


def psnr(mse: np.ndarray) -> np.ndarray:
    return 10 * np.log10(1.0 / np.maximum(mse, 1e-10))


@torch.no_grad()
def measure(model, eps, context: int, horizon: int, temperature: float, picture: Path):
    starts, lengths = eps.starts, eps.lengths
    keep = [i for i in range(len(lengths)) if lengths[i] >= context + horizon]
    if not keep:
        raise SystemExit(f"No held-out episode is {context + horizon} steps long; "
                         "lower --horizon or --context.")
    idx = np.stack([starts[i] + np.arange(context + horizon) for i in keep])  # (B, C+H)
    frames = torch.from_numpy(eps.frames[idx])
    actions = torch.from_numpy(eps.actions[idx])
    real = frames.float() / 255
    B = len(keep)

    # open loop from the context, true actions
    state = seed_dreams(model.initial_state(frames[:, :context], actions[:, :context - 1]),
                        torch.arange(B))
    dream = []
    for k in range(horizon - 1):
        state, _ = model.imagine(state, actions[:, context - 1 + k], temperature)
        dream.append(model.render(state).float() / 255)
    dream = torch.stack(dream, 1)  # frames context .. context + horizon - 2
    target = real[:, context : context + horizon - 1]
    mse = ((dream - target) ** 2).mean((0, 2, 3, 4)).numpy()
    held = ((real[:, context - 1 : context] - target) ** 2).mean((0, 2, 3, 4)).numpy()
    recon = []
    for k in range(horizon - 1):
        s = model.initial_state(frames[:, context + k : context + k + 1],
                                actions[:, :0])
        recon.append(((model.render(s).float() / 255 - target[:, k]) ** 2).mean().item())

    # teacher-forced rewards over whole episodes
    pred, true = [], []
    for i in range(len(lengths)):
        f = torch.from_numpy(eps.frames[starts[i] : starts[i] + lengths[i]])
        a = torch.from_numpy(eps.actions[starts[i] : starts[i] + lengths[i]])
        s = seed_dreams(model.initial_state(f[None, :1], a[None, :0]), torch.tensor([i]))
        p = []
        for t in range(lengths[i] - 1):
            p.append(float(model.imagine(s, a[t : t + 1], 1.0)[1].reward[0]))
            s = model.observe(s, a[t : t + 1], f[t + 1 : t + 2])
        pred.append(np.asarray(p))
        true.append(eps.rewards[starts[i] : starts[i] + lengths[i] - 1])
    p_all, t_all = np.concatenate(pred), np.concatenate(true)
    corr = float(np.corrcoef(p_all, t_all)[0, 1]) if t_all.std() > 0 else float("nan")

    # picture: for 4 episodes, real row over dream row, every horizon/10 steps
    cols = list(range(0, horizon - 1, max(1, (horizon - 1) // 10)))
    rows = []
    for b in range(min(4, B)):
        rows.append(np.concatenate([target[b, k].numpy() for k in cols], 1))
        rows.append(np.concatenate([dream[b, k].numpy() for k in cols], 1))
    picture.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.concatenate(rows, 0) * 255).astype(np.uint8)).save(picture)

    return {
        "episodes_open_loop": B, "context": context, "horizon": horizon,
        "temperature": temperature,
        "mse_by_horizon": mse.tolist(), "psnr_by_horizon": psnr(mse).tolist(),
        "held_frame_mse_by_horizon": held.tolist(), "vae_recon_mse_by_horizon": recon,
        "reward": {"mae": float(np.abs(p_all - t_all).mean()), "corr": corr,
                   "episode_sum_error": float(np.mean([p.sum() - t.sum()
                                                       for p, t in zip(pred, true, strict=True)])),
                   "real_episode_sum": float(np.mean([t.sum() for t in true]))},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="takecover")
    p.add_argument("--episodes", type=int, default=16)
    p.add_argument("--context", type=int, default=10)
    p.add_argument("--horizon", type=int, default=100)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=777, help="real seeds; recipes train on 0..")
    add_policy_argument(p)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    model = load_model(args.model)
    eps = held_out_episodes(model.game, args.episodes, args.seed, args.max_steps, args.policy)
    out = Path(args.out or f"benchmarks/results/fidelity_{Path(args.model).name}.json")
    res = {"model": args.model, "game": model.game,
           **measure(model, eps, args.context, args.horizon, args.temperature,
                     out.with_suffix(".png"))}
    h = res["horizon"] - 1
    print(f"{model.game}: open-loop pixel MSE (64x64, [0,1]) over {res['episodes_open_loop']} "
          f"held-out episodes, tau {args.temperature}")
    print(f"{'step':>6}{'dream MSE':>11}{'PSNR dB':>9}{'V recon':>10}{'held frame':>12}")
    for k in sorted({0, 4, 9, 24, 49, 99, 199, h - 1} & set(range(h))):
        print(f"{k + 1:>6}{res['mse_by_horizon'][k]:>11.5f}{res['psnr_by_horizon'][k]:>9.1f}"
              f"{res['vae_recon_mse_by_horizon'][k]:>10.5f}"
              f"{res['held_frame_mse_by_horizon'][k]:>12.5f}")
    r = res["reward"]
    print(f"reward (teacher-forced): MAE {r['mae']:.3f}, corr {r['corr']:.3f}, episode-sum "
          f"error {r['episode_sum_error']:+.1f} (real sums {r['real_episode_sum']:.1f})")
    save_json(out, res)
    print(f"saved {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
