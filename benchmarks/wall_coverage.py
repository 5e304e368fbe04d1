"""How much of a TakeCover data set shows a side wall, and how early in its episodes.

    python benchmarks/wall_coverage.py --data runs/takecover_gamegan/data

Every dream starts at the spawn, in the middle of the room; where the player stands is not
in the frame until a side wall comes into view (about 50 steps of strafing away). A model
learns when the wall appears only from episodes that reach it, and learns it as a dream
needs it (counted from the spawn) only from episodes that reach it early. Prints the share
of frames with a side wall in view (``dream_gym.motion.side_wall_share``) over all frames,
over each episode's first ``--early`` steps, and by the net strafing since the spawn.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dream_gym.data import load_episodes
from dream_gym.motion import SIDE_WALL, side_wall_share, strafe_from_spawn


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="runs/takecover_gamegan/data")
    p.add_argument("--early", type=int, default=96)
    args = p.parse_args()
    ep = load_episodes(Path(args.data))
    wall = np.concatenate([side_wall_share(ep.frames[i:i + 4096]) > SIDE_WALL
                           for i in range(0, len(ep.frames), 4096)])
    t = np.concatenate([np.arange(n) for n in ep.lengths])
    net = strafe_from_spawn(ep.actions, ep.lengths)
    print(f"{args.data}: {len(ep.lengths)} episodes, {len(wall)} frames; side wall in view in "
          f"{wall.mean():.1%} of frames, {wall[t < args.early].mean():.1%} of the first "
          f"{args.early} steps' frames")
    print("| net steps left since the spawn | frames | side wall in view |")
    print("|---|---|---|")
    for lo in range(-100, 100, 25):
        m = (net >= lo) & (net < lo + 25)
        if m.any():
            print(f"| {lo} to {lo + 24} | {m.sum()} | {wall[m].mean():.0%} |")


if __name__ == "__main__":
    main()
