"""Families side by side: dreams of one game measured alike, through the model contract only.

    python benchmarks/families.py --models takecover takecover_gamegan --episodes 32

Fresh real episodes of the random collection policy (seeds no recipe trains on) give the
starts (anywhere in an episode's first 300 steps) and the true actions. For each model:

- open-loop pixel error (64x64, [0, 1]) after one real frame, driven by the episode's true
  actions at tau 0 (each family's mean future), at steps 1, 5, 10, 25, 50 and 100, beside the
  baseline that holds the first frame;
- Frechet distance of its frames (the same rollouts at tau 1, what an agent sees) to the real
  frames of those steps, in a learned feature space shared by all models: the posterior mean
  of the World Models TakeCover V (``--feature-model``). Two references: a second set of
  real episodes (the real-vs-real floor) and the same model with every layer re-drawn by its
  default initialisation (untrained); "gap closed" is
  (FD_untrained - FD) / (FD_untrained - FD_floor);
- dream steps/s (batch 1 and 64, tau 1) beside the real game's, measured in this run
  (best of windows, as ``benchmarks/throughput.py``);
- the shipped controller's real score, as its recipe's evaluate stage recorded it.

Writes JSON and a picture of real vs dreamed frames (one row per model).
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.fidelity import held_out_episodes
from benchmarks.throughput import env_stepper, timed
from dream_gym.checkpoint import save_json
from dream_gym.contract import seed_dreams
from dream_gym.frame_gan.quality import frechet_distance, gaussian_stats
from dream_gym.world_models.vae import to_input
from dream_gym.zoo import load_model, locate

HORIZONS = (1, 5, 10, 25, 50, 100)


def held_out(game: str, n: int, seed: int, length: int):
    """Frames (B, length, S, S, 3) and actions (B, length): one window per fresh episode at
    least ``length`` long, starting anywhere in its first 300 steps (an episode's first
    frames barely change: starts there would flatter the held-frame baseline)."""
    eps = held_out_episodes(game, 2 * n, seed, max_steps=length + 300)
    keep = [i for i in range(len(eps.lengths)) if eps.lengths[i] >= length][:n]
    rng = np.random.default_rng(seed)
    first = [eps.starts[i] + rng.integers(eps.lengths[i] - length + 1) for i in keep]
    idx = np.stack([f + np.arange(length) for f in first])
    return torch.from_numpy(eps.frames[idx]), torch.from_numpy(eps.actions[idx])


@torch.no_grad()
def rollout(model, frames: torch.Tensor, actions: torch.Tensor, temperature: float,
            seed: int = 0) -> torch.Tensor:
    """Dream frames 1..T-1 (uint8) after the first real frame, with the true actions."""
    B, T = frames.shape[:2]
    state = seed_dreams(model.initial_state(frames[:, :1], actions[:, :0]),
                        torch.arange(B) + seed)
    out = []
    for t in range(T - 1):
        state, _ = model.imagine(state, actions[:, t], temperature)
        out.append(model.render(state))
    return torch.stack(out, 1)


def open_loop_mse(dream: torch.Tensor, real: torch.Tensor) -> np.ndarray:
    """Per-step MSE in [0, 1] units: dream (B, T-1, ...) against real frames 1..T-1."""
    d = dream.float() / 255
    r = real[:, 1:].float() / 255
    return ((d - r) ** 2).mean((0, 2, 3, 4)).numpy()


@torch.no_grad()
def v_features(vae, frames: torch.Tensor) -> np.ndarray:
    flat = frames.flatten(0, -4)
    mus = [vae.encode(to_input(flat[i:i + 512]))[0] for i in range(0, len(flat), 512)]
    return torch.cat(mus).double().numpy()


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (rows are samples)."""
    return float(frechet_distance(*gaussian_stats(a), *gaussian_stats(b)))


def untrained(model, seed: int = 0):
    """The same model with each layer re-drawn by its default initialisation."""
    torch.manual_seed(seed)
    fresh = copy.deepcopy(model)
    for m in fresh.modules():
        if hasattr(m, "reset_parameters") and m is not fresh:
            m.reset_parameters()
    return fresh


def dream_steps_per_s(model, frames: torch.Tensor, batch: int, seconds: float = 3.0) -> float:
    """Batched dream steps/s (imagine and render, random actions, tau 1), timed as
    ``benchmarks/throughput.py`` times (best of windows)."""
    space = model.spec.action_space
    space.seed(0)
    state = {"s": seed_dreams(model.initial_state(
        frames[:1, :1].expand(batch, -1, -1, -1, -1), torch.zeros(batch, 0, dtype=torch.long)),
        torch.arange(batch))}

    @torch.no_grad()
    def step() -> int:
        a = torch.as_tensor(np.stack([space.sample() for _ in range(batch)]))
        state["s"], _ = model.imagine(state["s"], a, 1.0)
        model.render(state["s"])
        return batch
    return timed(step, seconds)[0]


def real_steps_per_s(game: str, seconds: float = 3.0) -> float:
    from dream_gym.games import get_game

    env = get_game(game).make()
    rate = timed(env_stepper(env), seconds)[0]
    env.close()
    return rate


def controller_score(name: str) -> dict | None:
    path = Path(locate(name)) / "controller.json"
    if not path.exists():
        return None
    meta = json.loads(path.read_text())
    return {k: meta[k] for k in ("real_score", "random_score") if k in meta}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["takecover", "takecover_gamegan"])
    p.add_argument("--feature-model", default="takecover",
                   help="whose V encoder gives the Frechet feature space")
    p.add_argument("--episodes", type=int, default=32)
    p.add_argument("--length", type=int, default=101, help="frames per episode (context + 100)")
    p.add_argument("--seed", type=int, default=4242, help="real seeds of the dreams' starts")
    p.add_argument("--floor-seed", type=int, default=5353, help="real seeds of the floor set")
    p.add_argument("--out", default="benchmarks/results/families_takecover.json")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    models = {name: load_model(name) for name in args.models}
    game = next(iter(models.values())).game
    if any(m.game != game for m in models.values()):
        raise SystemExit(f"--models must dream one game; got {[m.game for m in models.values()]}")
    frames, actions = held_out(game, args.episodes, args.seed, args.length)
    floor_frames, _ = held_out(game, args.episodes, args.floor_seed, args.length)
    vae = load_model(args.feature_model).vae
    real_feat = v_features(vae, frames[:, 1:])
    floor = frechet(real_feat, v_features(vae, floor_frames[:, 1:]))
    held = open_loop_mse(frames[:, :1].expand(-1, args.length - 1, -1, -1, -1)
                         .contiguous(), frames)
    real_rate = real_steps_per_s(game)
    res = {"game": game, "episodes": len(frames), "seeds": [args.seed, args.floor_seed],
           "feature_model": args.feature_model, "frechet_floor": floor,
           "held_frame_mse": {h: float(held[h - 1]) for h in HORIZONS if h < args.length},
           "real_steps_per_s": real_rate, "models": {}}
    rows = [frames[:2, 1::10]]
    for name, model in models.items():
        print(f"[families] {name}: rollouts", flush=True)
        mse = open_loop_mse(rollout(model, frames, actions, 0.0), frames)
        sample = rollout(model, frames, actions, 1.0)
        fd = frechet(real_feat, v_features(vae, sample))
        fd0 = frechet(real_feat, v_features(vae, rollout(untrained(model), frames, actions, 1.0)))
        rows.append(sample[:2, ::10])
        params = sum(t.numel() for t in model.parameters())
        res["models"][name] = {
            "family": type(model).__name__, "parameters": params,
            "open_loop_mse": {h: float(mse[h - 1]) for h in HORIZONS if h < args.length},
            "frechet": fd, "frechet_untrained": fd0,
            "frechet_gap_closed": (fd0 - fd) / (fd0 - floor),
            "dream_steps_per_s": {b: dream_steps_per_s(model, frames, b) for b in (1, 64)},
            "controller": controller_score(name),
        }
    out = Path(args.out)
    save_json(out, res)
    grid = torch.cat([torch.cat(list(r.unbind(1)), 2) for r in rows], 0)
    Image.fromarray(torch.cat(list(grid), 0).numpy()).save(out.with_suffix(".png"))
    print(f"{game}: {len(frames)} held-out episodes (seeds from {args.seed}); Frechet in "
          f"{args.feature_model}'s V space, real-vs-real floor {floor:.2f}; real game "
          f"{real_rate:.0f} steps/s")
    hs = [h for h in HORIZONS if h < args.length]
    print(f"{'model':<20}" + "".join(f"{'mse@' + str(h):>9}" for h in hs)
          + f"{'FD':>8}{'FD untr.':>9}{'closed':>8}{'b1/s':>7}{'b64/s':>8}{'real C':>14}")
    print(f"{'(held frame)':<20}" + "".join(f"{held[h - 1]:>9.4f}" for h in hs))
    for name, m in res["models"].items():
        c = (m["controller"] or {}).get("real_score")
        cs = f"{c['mean']:.0f}+-{c['stderr']:.0f}" if c else "-"
        print(f"{name:<20}" + "".join(f"{m['open_loop_mse'][h]:>9.4f}" for h in hs)
              + f"{m['frechet']:>8.2f}{m['frechet_untrained']:>9.2f}"
              f"{m['frechet_gap_closed']:>8.0%}{m['dream_steps_per_s'][1]:>7.0f}"
              f"{m['dream_steps_per_s'][64]:>8.0f}{cs:>14}")
    print(f"saved {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
