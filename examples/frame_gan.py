"""Draw Atari frames from the shipped frame GAN and score them against frames from the games.

    python examples/frame_gan.py --model atari_gan --frames 2000 --out samples.png

The score is the model card's figure: the Frechet distance between generated and real frames
in the shipped game classifier's feature space (floor: two sets of real frames; ceiling: an
untrained generator), the share of frames the classifier gives to one game with p >= 0.9,
and how those split between the games.
"""

from __future__ import annotations

import argparse

from PIL import Image

from dream_gym.checkpoint import load_json
from dream_gym.frame_gan import load_generator, load_quality_meter, sample
from dream_gym.frame_gan.images import image_grid, to_uint8
from dream_gym.zoo import resolve


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="atari_gan")
    p.add_argument("--frames", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="frame_gan_samples.png")
    args = p.parse_args()
    d = resolve(args.model)
    frames = sample(load_generator(d), args.frames, seed=args.seed)
    Image.fromarray(image_grid(to_uint8(frames[:64]))).save(args.out)
    score = load_quality_meter(d).score(frames)
    cfg = load_json(d / "config.json")
    floor, ceiling = cfg["floor"], cfg["ceiling"]
    closed = (ceiling - score["frechet"]) / (ceiling - floor)
    print(f"Frechet distance {score['frechet']:.0f} (floor {floor:.0f}, ceiling {ceiling:.0f}): "
          f"{100 * closed:.1f}% of the gap closed")
    print(f"confidently one game: {100 * score['confident_share']:.0f}%  split: "
          + ", ".join(f"{g} {100 * s:.0f}%" for g, s in score["game_split"].items()))
    print(f"64 samples written to {args.out}")


if __name__ == "__main__":
    main()
