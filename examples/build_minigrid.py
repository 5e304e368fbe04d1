"""``dream-gym build`` from Python, on an env it was never tuned on: a MiniGrid room as RGB.

    pip install minigrid
    python examples/build_minigrid.py --minutes 15

MiniGrid's own observation is a Dict with a symbolic 7x7 view and a text mission, which
``dream-gym build MiniGrid-Empty-5x5-v0`` refuses (it names the entries a model cannot
predict). Its wrappers make it a pixel game: ``RGBImgObsWrapper`` draws the whole room
(40x40x3), ``ImgObsWrapper`` keeps only that image. The constructor, wrappers included,
is what :func:`dream_gym.build.build` takes; the rest is the command's pipeline: data,
V, M, temperature, CMA-ES in the dream, the real score beside random, card and video.
"""

from __future__ import annotations

import argparse

import gymnasium as gym

from dream_gym.build import BuildConfig, build

ENV_ID = "MiniGrid-Empty-5x5-v0"


def make_env(**kwargs) -> gym.Env:
    from minigrid.wrappers import ImgObsWrapper, RGBImgObsWrapper

    return ImgObsWrapper(RGBImgObsWrapper(gym.make(ENV_ID, **kwargs)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=15.0)
    p.add_argument("--out", default=None, help="model folder (default: $DREAM_GYM_MODELS/"
                   "minigridempty5x5, else dreams/minigridempty5x5)")
    p.add_argument("--runs", default="runs")
    args = p.parse_args()
    build(make_env, "MiniGridEmpty5x5", config=BuildConfig(minutes=args.minutes),
          out=args.out, runs_root=args.runs,
          command=f"python examples/build_minigrid.py --minutes {args.minutes:g}")


if __name__ == "__main__":
    main()
