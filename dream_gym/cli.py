"""The ``dream-gym`` command: demo, build, evolve, evaluate, video, play, train, zoo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


def _cluster(args: argparse.Namespace) -> None:
    """``--ray [ADDRESS]``: the stages that fan out run on that Ray cluster (a local one
    without an address)."""
    if getattr(args, "ray", None) is not None:
        from dream_gym import cluster

        n = cluster.init(args.ray or None)
        print(f"[ray] {n} workers ({args.ray or 'local cluster'})", file=sys.stderr)


def _device(name: str):
    from dream_gym.training.common import torch_device

    try:
        return torch_device(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def _add_scale_out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run collection, real-game scoring and CMA-ES on a Ray cluster "
                   "(ADDRESS, or 'auto'; no address: a local one); pip install 'dream-gym[ray]'")
    p.add_argument("--device", default=None, type=_device,
                   help="torch device for the models: cpu, cuda, cuda:1, ... (default: cuda "
                   "when torch sees one, else cpu)")


def _cmd_zoo(args: argparse.Namespace) -> int:
    from dream_gym.checkpoint import load_json
    from dream_gym.zoo import list_models, resolve, zoo_root

    print(f"zoo: {zoo_root()}")
    for name in list_models():
        d = resolve(name)
        cfg = load_json(d / "config.json")
        dream = cfg.get("dream", {}).get("id", "(not a dream)")
        print(f"  {name:<12} {dream:<22} family={cfg['family']:<13} game={cfg['game']}")
        if "card" in cfg:  # the card's headline figure, kept beside it in config.json
            print(f"  {'':<12} {cfg['card']['headline']}\n  {'':<12} ({cfg['card']['command']};"
                  f" {d / 'CARD.md'})")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from dream_gym.training.recipe import run_recipe

    _cluster(args)
    recipe = Path(args.recipe)
    if recipe.is_dir():
        tomls = sorted(recipe.glob("*.toml"))
        if len(tomls) != 1:
            print(f"{recipe} holds {len(tomls)} recipes; name one .toml file.", file=sys.stderr)
            return 2
        recipe = tomls[0]
    out = run_recipe(recipe, args.runs, device=args.device)
    print(f"model written to {out}")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from dream_gym.build import BuildConfig, UnsupportedFamily, build
    from dream_gym.games.derive import NotDreamable

    cfg = BuildConfig(minutes=args.minutes, family=args.family, episodes=args.episodes,
                      seed=args.seed)
    _cluster(args)
    try:
        build(args.env_id, args.name, config=cfg, out=args.out, runs_root=args.runs,
              device=args.device)
    except (NotDreamable, UnsupportedFamily) as e:
        print(f"dream-gym build: {e}", file=sys.stderr)
        return 2
    return 0


def _cmd_evolve(args: argparse.Namespace) -> int:
    import dataclasses

    from dream_gym.training.common import default_device
    from dream_gym.training.controller import ControllerTrainConfig, train_in_dream
    from dream_gym.training.recipe import final_controller_config, load_recipe, model_recipe
    from dream_gym.zoo import resolve

    _cluster(args)
    recipe = load_recipe(args.recipe) if args.recipe else model_recipe(resolve(args.model))
    if recipe is None:
        print(f"[evolve] {args.model} names no recipe: CMA-ES with the library's defaults and "
              "your flags (pass --recipe for a game's settings).", file=sys.stderr)
    else:
        print(f"[evolve] settings of recipe {recipe['name']!r} ([controller] and "
              "[final_controller]), overridden by your flags", file=sys.stderr)
    cfg = final_controller_config(recipe) if recipe else ControllerTrainConfig()
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(ControllerTrainConfig)
             if getattr(args, f.name, None) is not None}
    cfg = dataclasses.replace(cfg, **flags)
    out = Path(args.out)
    device = args.device or default_device()
    summary = train_in_dream(resolve(args.model), cfg, out / "es", device,
                             export_dir=out, ensemble=[resolve(d) for d in args.ensemble])
    print(f"dream score {summary['dream_score']:.1f} +- {summary['dream_std']:.1f} "
          f"(tau {cfg.temperature}, {summary['generations']} generations); "
          f"controller written to {out / 'controller.safetensors'}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from dream_gym.agents.controller import LinearController
    from dream_gym.evaluate import evaluate_controller, evaluate_random
    from dream_gym.training.common import default_device
    from dream_gym.zoo import load_model, resolve

    _cluster(args)
    d = resolve(args.model)
    model = load_model(d, args.device or default_device())
    controller, meta = LinearController.load(d / "controller")
    seed = args.seed if args.seed is not None \
        else meta.get("real_score", {}).get("first_seed", 10_000)
    real = evaluate_controller(model, controller, args.episodes, seed=seed,
                               progress=not args.json)
    rand = evaluate_random(model.game, args.episodes, seed=seed, progress=not args.json)
    result = {"model": str(args.model), "game": model.game, "episodes": args.episodes,
              "seed": seed, "temperature": meta.get("temperature"),
              "real": {k: real[k] for k in ("mean", "std", "stderr")},
              "random": {k: rand[k] for k in ("mean", "std", "stderr")},
              "n": args.episodes}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{model.game}: controller {real['mean']:.1f} +- {real['std']:.1f}, "
              f"random {rand['mean']:.1f} +- {rand['std']:.1f} over {args.episodes} episodes")
    return 0


def _cmd_video(args: argparse.Namespace) -> int:
    from dream_gym.agents.controller import LinearController
    from dream_gym.demo import side_by_side_video
    from dream_gym.zoo import load_model, resolve

    d = resolve(args.model)
    controller, _ = LinearController.load(Path(args.controller) if args.controller
                                          else d / "controller")
    n = side_by_side_video(load_model(d), controller, Path(args.out), seed=args.seed,
                           max_frames=args.max_frames, temperature=args.temperature,
                           strip=Path(args.strip) if args.strip else None)
    print(f"{n} frames (real | model's view | open-loop dream) written to {args.out}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from dream_gym.demo import run_demo

    run_demo(args.model, minutes=args.minutes, episodes=args.episodes,
             temperature=args.temperature, video=Path(args.video), seed=args.seed)
    return 0


def _cmd_play(args: argparse.Namespace) -> int:
    from dream_gym.play import play

    env_id = args.env_id if ":" in args.env_id or not args.env_id.startswith("Dream-") \
        else f"dream_gym:{args.env_id}"
    returns = play(env_id, temperature=args.temperature, scale=args.scale, fps=args.fps)
    print(f"episode returns: {[round(r, 1) for r in returns]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from dream_gym.config import add_arguments
    from dream_gym.training.controller import ControllerTrainConfig

    parser = argparse.ArgumentParser(prog="dream-gym", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="evolve a controller in the dream, then play the real game")
    p.add_argument("--model", default="takecover")
    p.add_argument("--minutes", type=float, default=3.0, help="CMA-ES time budget")
    p.add_argument("--episodes", type=int, default=20, help="real episodes per policy")
    p.add_argument("--temperature", type=float, default=1.15)
    p.add_argument("--video", default="dream_gym_demo.mp4")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=_cmd_demo)

    p = sub.add_parser("build", help="a dream of any pixel Gymnasium env: collect, train, "
                       "evolve a controller, score it in the real env, write card and video")
    p.add_argument("env_id", help="a Gymnasium id whose observation is an RGB image "
                   "(ALE/Pong-v5; other packages' ids as 'package:Id')")
    p.add_argument("--name", default=None, help="<Name> of Dream-<Name>-v0 (default: from "
                   "the id, ALE/Pong-v5 -> Pong)")
    p.add_argument("--family", default="world_models", choices=["world_models", "gamegan"])
    p.add_argument("--minutes", type=float, default=60.0, help="the whole time budget")
    p.add_argument("--episodes", type=int, default=100, help="real scoring episodes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="model folder (default: $DREAM_GYM_MODELS/"
                   "<name>, else dreams/<name>)")
    p.add_argument("--runs", default="runs", help="where data, logs and checkpoints go")
    _add_scale_out(p)
    p.set_defaults(fn=_cmd_build)

    p = sub.add_parser("evolve", help="evolve a controller with CMA-ES inside a model's dream "
                       "(resumable)")
    p.add_argument("model", help="zoo name or model folder")
    p.add_argument("--out", required=True, help="folder for the controller and ES checkpoints")
    p.add_argument("--recipe", help="take the settings of this recipe's shipped controller "
                   "(a file or a shipped recipe's name; default: the recipe the model names)")
    g = p.add_argument_group("CMA-ES settings (each overrides the recipe's)")
    add_arguments(g, ControllerTrainConfig)
    p.add_argument("--ensemble", nargs="+", default=[], metavar="DIR",
                   help="more model folders (same game and V) whose dreams share each "
                   "candidate's rollouts, e.g. the Ms of earlier iterative rounds")
    _add_scale_out(p)
    p.set_defaults(fn=_cmd_evolve)

    p = sub.add_parser("evaluate", help="score a zoo controller in the real game")
    p.add_argument("model")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=None,
                   help="first real seed (default: the one the model card's figure used)")
    p.add_argument("--json", action="store_true")
    _add_scale_out(p)
    p.set_defaults(fn=_cmd_evaluate)

    p = sub.add_parser("video", help="one real episode of a controller: real | model's view | "
                       "open-loop dream, side by side")
    p.add_argument("model", help="zoo name or model folder")
    p.add_argument("--out", required=True, help="video file, e.g. run.mp4")
    p.add_argument("--controller", help="controller path stem (DIR/controller); default: the "
                   "model's own")
    p.add_argument("--seed", type=int, default=0, help="the real episode's seed")
    p.add_argument("--temperature", type=float, default=1.0, help="tau of the open-loop dream")
    p.add_argument("--max-frames", type=int, default=1500, dest="max_frames")
    p.add_argument("--strip", help="also a PNG of 4 moments of the episode, one row each")
    p.set_defaults(fn=_cmd_video)

    p = sub.add_parser("play", help="drive a dream (or its real game) with the keyboard")
    p.add_argument("env_id", help="e.g. Dream-CarRacing-v0, Dream-TakeCover-v0, CarRacing-v3")
    p.add_argument("--temperature", type=float, default=1.0, help="starting tau ([ / ] change it)")
    p.add_argument("--scale", type=int, default=None,
                   help="window pixels per observation pixel (default: ~480 pixels tall)")
    p.add_argument("--fps", type=int, default=30)
    p.set_defaults(fn=_cmd_play)

    p = sub.add_parser("train", help="run a recipe from training/ (resumable)")
    p.add_argument("recipe", help="a recipe file, or a shipped recipe's name (takecover)")
    p.add_argument("--runs", default="runs", help="where data, logs and checkpoints go")
    _add_scale_out(p)
    p.set_defaults(fn=_cmd_train)

    p = sub.add_parser("zoo", help="list the shipped models")
    p.set_defaults(fn=_cmd_zoo)

    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
