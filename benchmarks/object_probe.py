"""What a model's latent keeps of the things that kill: a fireball and monster probe on TakeCover.

    python benchmarks/object_probe.py --models real takecover runs/takecover_gamegan/model

Real TakeCover frames are collected with ViZDoom's labels buffer on (random actions held
1..12 steps, as the recipes' data): for each frame, which of ``--bins`` vertical strips of
the screen hold the centre of a fireball (``DoomImpBall``) and of a monster (``DoomImp``).
A probe, the same small MLP for every input, learns those labels from a frame's features
on the training episodes (their last tenth chooses when to stop) and is scored on held-out
episodes by the share of the labels' uncertainty it removes,
``info = 1 - BCE(probe) / BCE(base rate)`` (0: knows nothing beyond how often a strip is
occupied; 1: knows exactly). Inputs: ``real`` is the model's own input
frame (S x S x 3 pixels, the ceiling at that size); a model name or folder gives the
features the dream hands a controller (:meth:`WorldModel.features`) of that frame, through
the model contract, so every family is probed alike. Writes JSON to ``--out``
(default ``benchmarks/results/object_probe[_rows_FIRST_END].json``).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dream_gym.checkpoint import save_json
from dream_gym.explore import random_held_actions
from dream_gym.games import get_game
from dream_gym.zoo import load_model

OBJECTS = {"fireball": "DoomImpBall", "monster": "DoomImp"}


def strips(labels, names: str, bins: int, width: int) -> np.ndarray:
    """(bins,) 0/1: which vertical strips hold the centre of an object called ``names``."""
    out = np.zeros(bins, np.float32)
    for lab in labels:
        if lab.object_name == names:
            out[min(bins - 1, int((lab.x + lab.width / 2) / width * bins))] = 1.0
    return out


def collect(episodes: int, seed: int, bins: int, crop_rows: tuple[int, int] | None = None,
            frame_size: int | None = None, max_steps: int = 2100) -> dict[str, np.ndarray]:
    """Frames (N, S, S, 3), episode index (N,) and per-object strip labels (N, bins);
    ``crop_rows``: the frames show only those screen rows (a model that sees a band);
    ``frame_size``: S (default the game's, 64)."""
    game = get_game("TakeCover")
    env = game.make()
    if crop_rows is not None:
        game = dataclasses.replace(game, crop_rows=crop_rows)
    if frame_size is not None:
        game = dataclasses.replace(game, frame_size=frame_size)
    env.unwrapped.game.set_labels_buffer_enabled(True)  # before the engine starts
    actions = random_held_actions(np.random.default_rng(seed), game, max_hold=12)
    frames, episode, labels = [], [], {k: [] for k in OBJECTS}
    for e in tqdm(range(episodes), desc="labelled TakeCover episodes"):
        obs, _ = env.reset(seed=seed + e)
        for _ in range(max_steps):
            state = env.unwrapped.state
            width = state.screen_buffer.shape[1]
            frames.append(game.frame(obs))
            episode.append(e)
            for k, name in OBJECTS.items():
                labels[k].append(strips(state.labels, name, bins, width))
            obs, _, terminated, truncated, _ = env.step(int(next(actions)))
            if terminated or truncated:
                break
    env.close()
    return {"frames": np.stack(frames), "episode": np.asarray(episode),
            **{k: np.stack(v) for k, v in labels.items()}}


@torch.no_grad()
def features(name: str, frames: np.ndarray, chunk: int = 1024) -> torch.Tensor:
    """(N, F) float: the frames' pixels (``real``) or a model's features of each frame."""
    if name == "real":
        return torch.from_numpy(frames).flatten(1).float() / 255.0
    model = load_model(name)
    out = []
    for i in range(0, len(frames), chunk):
        x = torch.from_numpy(frames[i:i + chunk])[:, None]
        state = model.initial_state(x, torch.zeros(len(x), 0, dtype=torch.long))
        out.append(model.features(state).float().cpu())
    return torch.cat(out)


def probe_info(X: torch.Tensor, Y: torch.Tensor, train: torch.Tensor, epochs: int,
               seed: int) -> float:
    """Held-out ``1 - BCE(probe) / BCE(base rate)`` of an MLP probe X -> Y (multi-label),
    trained on ``train`` rows; its last tenth of them chooses the epoch (early stopping)."""
    torch.manual_seed(seed)
    fit = train.clone()
    fit[train.nonzero()[-max(1, int(train.sum()) // 10):]] = False
    val, test = train & ~fit, ~train
    mean, std = X[fit].mean(0), X[fit].std(0) + 1e-3
    X = (X - mean) / std
    probe = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, Y.shape[1]))
    opt = torch.optim.Adam(probe.parameters(), lr=1e-3, weight_decay=1e-4)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    Xf, Yf = X[fit], Y[fit]
    best, best_state = float("inf"), None
    for _ in range(epochs):
        for idx in torch.randperm(len(Xf)).split(256):
            loss = bce(probe(Xf[idx]), Yf[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            v = float(bce(probe(X[val]), Y[val]))
        if v < best:
            best, best_state = v, {k: t.clone() for k, t in probe.state_dict().items()}
    probe.load_state_dict(best_state)
    with torch.no_grad():
        p = Y[fit].mean(0).clamp(1e-4, 1 - 1e-4).expand_as(Y[test])
        base = torch.nn.functional.binary_cross_entropy(p, Y[test])
        return float(1.0 - bce(probe(X[test]), Y[test]) / base)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["real", "takecover"],
                   help="'real' (the input frame's pixels), zoo names or model folders")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=70000)
    p.add_argument("--bins", type=int, default=8)
    p.add_argument("--crop-rows", type=int, nargs=2, default=None, metavar=("FIRST", "END"),
                   help="frames of these screen rows only (models trained on such frames)")
    p.add_argument("--frame-size", type=int, default=None,
                   help="side of the square frames (default the game's, 64): the ceiling a "
                        "larger model frame could reach (real pixels only)")
    p.add_argument("--held-out", type=float, default=0.25, help="share of episodes scored")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--cache", default=None,
                   help="labelled frames, collected once per (episodes, seed, bins, crop); "
                        "default runs/object_probe/labelled[_rows_A_B].npz")
    p.add_argument("--out", default=None,
                   help="default benchmarks/results/object_probe[_rows_A_B].json")
    args = p.parse_args()

    crop = "_rows_{}_{}".format(*args.crop_rows) if args.crop_rows else ""
    crop += f"_{args.frame_size}px" if args.frame_size else ""
    cache = Path(args.cache or f"runs/object_probe/labelled{crop}.npz")
    key = np.asarray([args.episodes, args.seed, args.bins, *(args.crop_rows or []),
                      *([args.frame_size] if args.frame_size else [])])
    data = dict(np.load(cache)) if cache.exists() else {}
    if not data or not np.array_equal(data.get("key"), key):
        data = {**collect(args.episodes, args.seed, args.bins,
                          tuple(args.crop_rows) if args.crop_rows else None, args.frame_size),
                "key": key}
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache.with_suffix(".tmp.npz"), **data)
        cache.with_suffix(".tmp.npz").replace(cache)
    train = torch.from_numpy(data["episode"] < round(args.episodes * (1 - args.held_out)))
    rates = {k: float(data[k].mean()) for k in OBJECTS}
    print(f"{len(train)} frames ({int((~train).sum())} held out); strips occupied: "
          + ", ".join(f"{k} {v:.3f}" for k, v in rates.items()))
    rows = {}
    print(f"{'input':40s} " + " ".join(f"{k + ' info':>14s}" for k in OBJECTS))
    for name in args.models:
        X = features(name, data["frames"])
        rows[name] = {k: probe_info(X, torch.from_numpy(data[k]), train, args.epochs, args.seed)
                      for k in OBJECTS}
        print(f"{name[-40:]:40s} " + " ".join(f"{v:14.3f}" for v in rows[name].values()))
    save_json(args.out or f"benchmarks/results/object_probe{crop}.json", {
        "episodes": args.episodes, "seed": args.seed, "bins": args.bins,
        "crop_rows": args.crop_rows, "frame_size": args.frame_size, "frames": len(train),
        "held_out_frames": int((~train).sum()), "strip_rates": rates, "info": rows})


if __name__ == "__main__":
    main()
