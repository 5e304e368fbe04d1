"""One iterative round's refit of a finished GameGAN recipe run, with other settings.

    python benchmarks/gamegan_refit.py runs/takecover_gamegan --round 2 \\
        --out runs/gamegan_refit/adv01 --set dynamics_adversarial_weight=0.1
    dream-gym evolve runs/gamegan_refit/adv01/model --recipe training/takecover_gamegan.toml \\
        --out runs/gamegan_refit/adv01/model
    dream-gym evaluate runs/gamegan_refit/adv01/model --seed 81000 --episodes 50 --json

A candidate change to how the dynamics engine is fitted costs one refit (about 13 minutes
for TakeCover's round 2 on 2 cores) instead of a recipe run from no data (about 2 hours):
the refit is the recipe's own (:meth:`GameGANRun.refit`: the engine and memory fitted again
from the trained generator's on all real data of rounds 1..k, then the encoding noise and the
episode heads), with each ``--set FIELD=VALUE`` replacing a ``[gamegan]`` training setting
(:class:`GameGANTrainConfig`) and each ``--heads FIELD=VALUE`` a ``[heads]`` one
(:class:`EpisodeHeadsConfig`). The dream is written to ``OUT/model`` with the run's contexts;
its controller is then evolved and scored with the commands above. Selection seeds (81000..)
are not the recipe's decisive ones (50000..).
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from pathlib import Path

from dream_gym.checkpoint import save_json
from dream_gym.config import pick
from dream_gym.data import save_contexts
from dream_gym.gamegan.heads import EpisodeHeadsConfig
from dream_gym.gamegan.model import GameGANConfig
from dream_gym.gamegan.training import GameGANRun, GameGANTrainConfig
from dream_gym.training.recipe import ContextConfig, load_recipe


def parse_settings(pairs: list[str], config: type = GameGANTrainConfig, flag: str = "--set"
                   ) -> dict:
    """``FIELD=VALUE`` pairs (VALUE in TOML: 0.1, true, "encoding") -> typed overrides of
    ``config``'s fields."""
    fields = {f.name for f in dataclasses.fields(config)}
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"{flag} {pair!r}: expected FIELD=VALUE with FIELD one of "
                             f"{config.__name__}'s fields ({', '.join(sorted(fields))}).")
        out[key] = tomllib.loads(f"v = {value}")["v"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="a finished GameGAN recipe run folder")
    p.add_argument("--recipe", default="training/takecover_gamegan.toml",
                   help="the recipe that run was made with")
    p.add_argument("--round", type=int, default=2, help="refit on the data of rounds 1..K")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="FIELD=VALUE",
                   help="replace a [gamegan] training setting; repeat or list several")
    p.add_argument("--heads", nargs="+", action="extend", default=[], metavar="FIELD=VALUE",
                   help='replace a [heads] setting (e.g. inputs="dream")')
    p.add_argument("--net", nargs="+", action="extend", default=[], metavar="FIELD=VALUE",
                   help="add a part to the generator (e.g. encoding_mixture=5)")
    args = p.parse_args()
    overrides = parse_settings(args.set)
    heads = parse_settings(args.heads, EpisodeHeadsConfig, "--heads")
    net = parse_settings(args.net, GameGANConfig, "--net")
    r = load_recipe(args.recipe)
    run = GameGANRun.load(r, args.run_dir)
    if not run.final.exists():
        raise SystemExit(f"{run.final} is missing: run the recipe to the end of its gamegan "
                         f"stage first (dream-gym train {args.recipe}).")
    model_dir = args.out / "model"
    report = run.refit(args.round, args.out, [model_dir], heads, net, **overrides)
    save_contexts(run.episodes, model_dir, pick(ContextConfig, r.get("context", {})).count,
                  run.seed)
    save_json(args.out / "refit.json", {"run_dir": str(args.run_dir), "recipe": args.recipe,
                                        "round": args.round, "overrides": overrides,
                                        "heads_overrides": heads, "net_overrides": net,
                                        **report})
    print(f"dream written to {model_dir}; next:\n"
          f"  dream-gym evolve {model_dir} --recipe {args.recipe} --out {model_dir}\n"
          f"  dream-gym evaluate {model_dir} --seed 81000 --episodes 50 --json")


if __name__ == "__main__":
    main()
