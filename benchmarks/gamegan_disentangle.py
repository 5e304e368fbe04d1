"""Does a Ms. Pac-Man GameGAN draw the maze and the characters apart?

GameGAN's renderer mixes a static component (drawn from the memory) and a dynamic one
(from the engine's state) by their masks. On fresh real episodes (seeds not in the
training data), the model is run two ways: watching the game (fed the true frames, as a
dream is started or an agent's features are computed in the real game) and dreaming (open
loop after the first ``--warm`` true frames, the real actions replayed, noise at its mean).
At every step the static component alone, the mix, and the real frame are scored by
:func:`dream_gym.games.mspacman.character_pixels` (pixels nearer a character's colour than
any maze colour); a frame "shows characters" with at least ``--min-pixels`` of them.
Acceptance (issue #39): the static component alone shows none in at least 90% of frames
while the mix keeps them. With keypoints in the encoding (``GameGANConfig.keypoints``), the
share of the real frames' keypoints within ``--near`` pixels of a character pixel too.
Writes a JSON and a picture: real | static | dynamic (masked) | mask | mix rows, watching
and dreaming.

    python benchmarks/gamegan_disentangle.py --model mspacman_gamegan
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dream_gym.gamegan.dream import to_uint8, to_unit
from dream_gym.gamegan.model import keypoint_pixels
from dream_gym.games import collection_policy, get_game
from dream_gym.games.mspacman import character_mask, character_pixels
from dream_gym.zoo import load_model


def real_episodes(n: int, seed: int, steps: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` real episodes (model frames (T, S, S, 3), actions (T,)) of the recipe's
    collection policy, each at most ``steps`` long, seeds ``seed``.."""
    game = get_game("MsPacman")
    env = game.make()
    out = []
    for i in range(n):
        rng = np.random.default_rng(seed + i)
        policy = collection_policy("random_or_maze", "MsPacman")(rng, game, 12)
        obs, _ = env.reset(seed=seed + i)
        frames, actions = [], []
        for _ in range(steps):
            frames.append(game.frame(obs))
            actions.append(policy(obs))
            obs, _, terminated, truncated, _ = env.step(actions[-1])
            if terminated or truncated:
                break
        out.append((np.stack(frames), np.asarray(actions)))
    env.close()
    return out


@torch.no_grad()
def run(net, spec, frames: np.ndarray, actions: np.ndarray, warm: int | None
        ) -> dict[str, np.ndarray]:
    """The generator over one episode: fed the true frames throughout (``warm`` None) or
    only the first ``warm``; per step the real next frame, the mix, the static component,
    the dynamic one times its mask and the mask (uint8, (T, S, S, 3))."""
    x = to_unit(torch.from_numpy(frames))
    a = spec.action_features(torch.from_numpy(actions))
    zero = torch.zeros(1, net.cfg.z_dim)
    state = net.initial(x[:1])
    out: dict[str, list] = {k: [] for k in ("real", "mix", "static", "dynamic", "mask")}
    for t in range(len(x) - 1):
        state, o = net.step(state, a[t:t + 1], zero)
        mask = o.masks[:, 1:2]
        out["real"].append(frames[t + 1])
        out["mix"].append(to_uint8(o.frame)[0].numpy())
        out["static"].append(to_uint8(o.images[0])[0].numpy())
        out["dynamic"].append(to_uint8(o.images[1] * mask + (mask - 1))[0].numpy())
        out["mask"].append(to_uint8(mask.expand(-1, 3, -1, -1) * 2 - 1)[0].numpy())
        seen = warm is None or t + 1 < warm
        s = net.encoder(x[t + 1:t + 2]) if seen else net.next_encoding(o.frame, o.inputs[-1])
        state = net.feed(state, s, seen)
    return {k: np.stack(v) for k, v in out.items()}


@torch.no_grad()
def keypoints_near_characters(net, frames: np.ndarray, near: float) -> float:
    """Share of the keypoints the encoder puts on real frames (T, S, S, 3) that lie within
    ``near`` pixels of a character pixel (frames without a character left out)."""
    k, side = net.cfg.keypoints, frames.shape[1]
    points = net.encoder(to_unit(torch.from_numpy(frames)))[:, -2 * k:].reshape(-1, k, 2)
    points = keypoint_pixels(points, side).numpy()  # (T, K, (row, column))
    shares = []
    for mask, p in zip(character_mask(frames), points, strict=True):
        at = np.argwhere(mask)  # (N, 2)
        if len(at):
            distance = np.linalg.norm(p[:, None] - at[None], axis=-1).min(1)
            shares.append(np.mean(distance <= near))
    return float(np.mean(shares))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mspacman_gamegan")
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--steps", type=int, default=400, help="steps per episode at most")
    p.add_argument("--seed", type=int, default=70_000)
    p.add_argument("--warm", type=int, default=8, help="true frames before a dream")
    p.add_argument("--min-pixels", type=int, default=4)
    p.add_argument("--near", type=float, default=3.0,
                   help="pixels from a character at which a keypoint is on it")
    p.add_argument("--out", default="benchmarks/results/gamegan_disentangle")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    dream = load_model(args.model)
    net, spec = dream.net, dream.spec
    if len(net.renderer.components) != 2:
        raise SystemExit(f"{args.model} has one rendering component (no memory): nothing to "
                         "disentangle.")
    report: dict = {"model": args.model, "episodes": args.episodes, "seed": args.seed,
                    "min_pixels": args.min_pixels}
    rows = []
    episodes = real_episodes(args.episodes, args.seed, args.steps)
    if net.cfg.keypoints:
        near = keypoints_near_characters(net, np.concatenate([f for f, _ in episodes]),
                                         args.near)
        report["keypoints_near_characters"] = {"share": near, "pixels": args.near}
        print(f"keypoints within {args.near:g} pixels of a character: {near:.1%}")
    for mode, warm in (("watching", None), ("dreaming", args.warm)):
        runs = [run(net, spec, f, a, warm) for f, a in episodes]
        shown = {}
        for k in ("real", "mix", "static"):
            counts = np.concatenate([character_pixels(r[k]) for r in runs])
            shown[k] = float(np.mean(counts >= args.min_pixels))
        report[mode] = {"frames": int(sum(len(r["real"]) for r in runs)),
                        "share_of_frames_showing_characters": shown}
        print(f"{mode:9s} frames {report[mode]['frames']:5d}  showing characters: real "
              f"{shown['real']:.1%}  mix {shown['mix']:.1%}  static alone {shown['static']:.1%}")
        first = runs[0]
        for t in np.linspace(args.warm + 4, len(first["real"]) - 1, 3).astype(int):
            rows.append(np.concatenate([first[k][t] for k in
                                        ("real", "static", "dynamic", "mask", "mix")], 1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid = np.concatenate(rows, 0)
    Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3),
                                 Image.NEAREST).save(out.with_suffix(".png"))
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')} (rows: watching x3, "
          "dreaming x3; columns: real, static, dynamic x mask, mask, mix)")


if __name__ == "__main__":
    main()
