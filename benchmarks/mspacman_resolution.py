"""Which square resolution keeps Ms. Pac-Man's pellets and ghosts visible?

A model of ``ALE/MsPacman-v5`` works on a downsampled frame; its pellets (4x2 dashes in the
maze's own colour) and ghosts must survive that. On frames of random play, for each
resolution: the maze area (rows 0..171, above the lives and score) is area-downsampled to
SxS, and for every pellet (a patch of the maze colour with no wall around it) and
every ghost (the pixels of a ghost's colour) the contrast that reaches the small frame: the
largest change, over the small pixels it touches, from the background there, as a share of
its full-size contrast (1: kept whole; 0: gone).

    python benchmarks/mspacman_resolution.py --frames 200
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import ale_py
import gymnasium as gym
import numpy as np
from PIL import Image

MAZE_ROWS = 172
MAZE = np.array([228, 111, 111])
BACKGROUND = np.array([0, 28, 136])
GHOSTS = np.array([[200, 72, 72], [198, 89, 179], [84, 184, 153], [180, 122, 48]])
"""Blinky, Pinky, Inky, Sue (ALE's palette)."""


def random_frames(n: int, seed: int) -> np.ndarray:
    """Every 4th frame of random play (actions held 1..8 steps), maze rows only."""
    gym.register_envs(ale_py)
    env = gym.make("ALE/MsPacman-v5")
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    frames, a, hold, t = [], 0, 0, 0
    while len(frames) < n:
        if hold == 0:
            a, hold = int(rng.integers(9)), int(rng.integers(1, 9))
        obs, _, term, trunc, _ = env.step(a)
        hold, t = hold - 1, t + 1
        if t % 4 == 0:
            frames.append(obs[:MAZE_ROWS])
        if term or trunc:
            obs, _ = env.reset()
    env.close()
    return np.stack(frames)


def _window_count(mask: np.ndarray, r: int) -> np.ndarray:
    """How many pixels of ``mask`` lie in the (2r+1)x(2r+1) window around each pixel."""
    c = np.pad(mask.astype(np.int32), r + 1)[:-1, :-1].cumsum(0).cumsum(1)
    k = 2 * r + 1
    return c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]


def objects(frame: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Boolean masks of the pellets (maze-coloured pixels with at most 8 of that colour
    within 4 pixels: not a wall) and of the ghosts in one full-size frame."""
    maze = (frame == MAZE).all(-1)
    pellet = maze & (_window_count(maze, 4) <= 8)
    first = pellet & ~np.roll(pellet, 1, 0) & ~np.roll(pellet, 1, 1)  # a dash's top left
    out: dict[str, list[np.ndarray]] = {"pellet": [], "ghost": []}
    for r, c in zip(*np.nonzero(first), strict=True):
        mask = np.zeros_like(pellet)
        mask[r:r + 2, c:c + 4] = pellet[r:r + 2, c:c + 4]
        out["pellet"].append(mask)
    for colour in GHOSTS:
        mask = (frame == colour).all(-1)
        if mask.sum() >= 6:
            out["ghost"].append(mask)
    return out


def kept_contrast(frame: np.ndarray, mask: np.ndarray, size: int) -> float:
    """Share of the object's contrast against the background that the SxS frame keeps."""
    small = np.asarray(Image.fromarray(frame).resize((size, size), Image.BOX), np.float32)
    without = frame.copy()
    without[mask] = BACKGROUND
    plain = np.asarray(Image.fromarray(without).resize((size, size), Image.BOX), np.float32)
    full = np.abs(frame[mask].astype(np.float32) - BACKGROUND).sum(-1).mean()
    return float(np.abs(small - plain).sum(-1).max() / full)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--sizes", default="64,84,96,128")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args()
    frames = random_frames(args.frames, args.seed)
    sizes = [int(s) for s in args.sizes.split(",")]
    found = [objects(f) for f in frames]
    result: dict[str, dict] = {}
    for size in sizes:
        row = {}
        for kind in ("pellet", "ghost"):
            kept = np.array([kept_contrast(f, m, size)
                             for f, objs in zip(frames, found, strict=True)
                             for m in objs[kind][:: 8 if kind == "pellet" else 1]])
            row[kind] = {"objects": len(kept), "median_kept": float(np.median(kept)),
                         "share_kept_over_half": float((kept > 0.5).mean()),
                         "share_kept_over_quarter": float((kept > 0.25).mean())}
        result[str(size)] = row
        print(f"{size:4d}x{size:<4d} " + "  ".join(
            f"{k}: median {v['median_kept']:.2f}, >1/2 {v['share_kept_over_half']:.0%}, "
            f">1/4 {v['share_kept_over_quarter']:.0%} ({v['objects']})"
            for k, v in row.items()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "mspacman_resolution.json").write_text(json.dumps(
        {"frames": args.frames, "seed": args.seed, "maze_rows": MAZE_ROWS, "sizes": result},
        indent=1))
    print(f"wrote {out / 'mspacman_resolution.json'}")


if __name__ == "__main__":
    main()
