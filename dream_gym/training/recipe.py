"""Run a zoo recipe (a TOML file in ``training/``) from no data to a shippable model folder.

Each stage writes its output atomically and records its wall time and real frames in
``runs/<name>/stages.json``; running the recipe again skips finished stages and resumes the
unfinished one from its last checkpoint. A recipe is checked against its family's schema
when it is loaded: a key no stage reads is an error, not a silent no-op.
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from dream_gym.checkpoint import load_json, save_json
from dream_gym.config import RecipeError, check_recipe, pick
from dream_gym.families import get_family
from dream_gym.games import game_names, register_game
from dream_gym.games.derive import game_from_env
from dream_gym.training import ddp
from dream_gym.training.common import default_device

if TYPE_CHECKING:
    from dream_gym.training.controller import ControllerTrainConfig

__all__ = ["run_recipe", "load_recipe", "find_recipe", "recipe_root", "model_recipe",
           "final_controller_config", "controller_stage", "final_stages", "Stages",
           "ContextConfig", "EvaluateConfig",
           "save_recipe_contexts"]


def recipe_root() -> Path:
    """``dream_gym/recipes`` inside an installed wheel, else ``training/`` of a checkout."""
    installed = Path(__file__).parent.parent / "recipes"
    return installed if installed.is_dir() else Path(__file__).parent.parent.parent / "training"


def find_recipe(name: str | Path) -> Path:
    """A recipe file, or the name of a shipped one (``carracing`` -> ``carracing.toml``)."""
    p = Path(name)
    if p.is_file():
        return p
    shipped = recipe_root() / f"{Path(name).stem}.toml"
    if shipped.is_file():
        return shipped
    raise FileNotFoundError(f"No recipe {str(name)!r}: not a file and not one of the shipped "
                            f"recipes {sorted(q.stem for q in recipe_root().glob('*.toml'))}.")


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Read a recipe and check every key against its family's schema.

    Raises:
        RecipeError: an unknown section or key (naming the nearest allowed one), or a
            recipe without ``name``.
    """
    path = find_recipe(path)
    with open(path, "rb") as f:
        r = tomllib.load(f)
    family = get_family(r.get("family", "world_models"))
    check_recipe(r, family.recipe_sections(), source=str(path))
    if "name" not in r:
        raise RecipeError(f"{path} has no top-level 'name' (the run folder's name).")
    return r


@dataclass
class ContextConfig:
    count: int = 64
    """Real starting contexts shipped with the model (the starts of random episodes)."""
    length: int = 1
    """Frames per context, from its episode's first: 1 starts a dream from one real frame;
    a memory model's dream starts from a memorised walk (ImageNav's GameGAN: 257)."""


def save_recipe_contexts(r: dict[str, Any], episodes: Any, model_dir: Path) -> None:
    """Ship the recipe's ``[context]`` with its model: the dream's starting contexts
    (:func:`dream_gym.data.save_contexts`)."""
    from dream_gym.data import save_contexts

    ctx = pick(ContextConfig, r.get("context", {}))
    save_contexts(episodes, model_dir, ctx.count, r.get("seed", 0), ctx.length)


@dataclass
class EvaluateConfig:
    episodes: int = 100
    """Real episodes scoring the final controller (a measurement: it is final by then)."""
    seed: int = 10_000
    """First real seed (episode i uses seed + i), fixed before scoring."""
    max_steps: int | None = None
    """Cap on a scored episode, the same for the controller and the random policy; None:
    the game's own limit (Breakout's is 27,000 steps, which a controller that never
    serves plays out)."""


class Stages:
    """The finished stages of one run (``stages.json``): what each recorded, and its time."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "stages.json"
        self.done: dict[str, Any] = load_json(self.path) if self.path.exists() else {}

    def run(self, name: str, fn, parallel: bool = False) -> None:
        """Run stage ``name`` unless done; ``fn`` may return a dict to record, whose
        ``frames`` entry (real frames the stage collected) is kept as ``real_frames``.

        Under torchrun a ``parallel`` stage (data-parallel training) runs in every process,
        the others in process 0 alone while the rest wait; process 0 records them.
        """
        if name in self.done:
            print(f"[recipe] {name}: done earlier ({self.done[name]['seconds']:.0f} s), skipped")
            return
        t0 = time.time()
        extra = dict(fn() or {}) if parallel or ddp.is_main() else {}
        if ddp.is_main():
            self.done[name] = {"seconds": round(time.time() - t0, 1),
                               "real_frames": int(extra.pop("frames", 0)), **extra}
            save_json(self.path, self.done)
            print(f"[recipe] {name}: {self.done[name]}")
        ddp.barrier()


def run_recipe(recipe_path: str | Path, runs_root: str | Path = "runs",
               device: torch.device | None = None) -> Path:
    """Run every stage of a recipe with its family's stages (:mod:`dream_gym.families`);
    returns the exported model folder. Under ``torchrun`` V and M train data-parallel
    (:mod:`dream_gym.training.ddp`) and process 0 runs the other stages."""
    path = find_recipe(recipe_path)
    r = load_recipe(path)
    if "env_id" in r and r["game"] not in game_names():  # a game of `dream-gym build`
        register_game(game_from_env(r["env_id"], r["game"]))
    device = ddp.setup(device or default_device())  # joins torchrun's processes, if any
    run_dir = Path(runs_root) / r["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    model_dir = get_family(r.get("family", "world_models")).run_stages(r, run_dir,
                                                                        Stages(run_dir), device)
    if ddp.is_main():
        config = load_json(model_dir / "config.json")  # which recipe made it (`evolve` reads it)
        save_json(model_dir / "config.json", config | {"recipe": path.stem})
    return model_dir


def model_recipe(model_dir: str | Path) -> dict[str, Any] | None:
    """The recipe a model folder was trained with (its config's ``recipe``), if shipped."""
    name = load_json(Path(model_dir) / "config.json").get("recipe")
    if name is None:
        return None
    try:
        return load_recipe(name)
    except FileNotFoundError:
        return None


def final_controller_config(recipe: dict[str, Any]) -> ControllerTrainConfig:
    """The shipped controller's CMA-ES settings: ``[controller]`` overridden by
    ``[final_controller]`` (the recipe's last stage, run once on the last round's M)."""
    from dream_gym.training.controller import ControllerTrainConfig

    return pick(ControllerTrainConfig, recipe["controller"] | recipe.get("final_controller", {}),
                seed=recipe.get("seed", 0))


def controller_stage(recipe: dict[str, Any], run_dir: Path, model_dir: Path, stages: Stages,
                     device: torch.device) -> ControllerTrainConfig:
    """``controller``: CMA-ES in the model's dream with ``[controller]``'s settings (any
    family: it sees the contract only); returns those settings."""
    from dream_gym.training.controller import ControllerTrainConfig, train_in_dream

    cfg = pick(ControllerTrainConfig, recipe["controller"], seed=recipe.get("seed", 0))
    stages.run("controller", lambda: train_in_dream(
        model_dir, cfg, run_dir / "controller", device, export_dir=model_dir))
    return cfg


def final_stages(recipe: dict[str, Any], run_dir: Path, model_dir: Path, stages: Stages,
                 device: torch.device) -> None:
    """``final_controller`` (when the recipe has one) and ``evaluate`` (the real score)."""
    from dream_gym.training.controller import train_in_dream

    if "final_controller" in recipe:
        cfg = final_controller_config(recipe)
        stages.run("final_controller", lambda: train_in_dream(
            model_dir, cfg, run_dir / "final_controller", device, export_dir=model_dir))
    if "evaluate" in recipe:
        stages.run("evaluate", lambda: _evaluate_stage(model_dir, recipe["evaluate"], device))


def _evaluate_stage(model_dir: Path, section: dict[str, Any], device: torch.device) -> dict:
    """Score the dream-trained controller in the real game (a measurement, not training:
    the controller is final before this runs) and record it in controller.json."""
    from dream_gym.agents.controller import LinearController
    from dream_gym.evaluate import evaluate_controller, evaluate_random
    from dream_gym.zoo import load_model

    model = load_model(model_dir, device)
    controller, meta = LinearController.load(model_dir / "controller")
    cfg = pick(EvaluateConfig, section)
    real = evaluate_controller(model, controller, cfg.episodes, seed=cfg.seed,
                               max_steps=cfg.max_steps)
    rand = evaluate_random(model.game, cfg.episodes, seed=cfg.seed, max_steps=cfg.max_steps)
    keep = ("mean", "std", "stderr", "n")
    run = {"first_seed": cfg.seed} | ({"max_steps": cfg.max_steps} if cfg.max_steps else {})
    meta["real_score"] = {k: real[k] for k in keep} | run
    meta["random_score"] = {k: rand[k] for k in keep} | run
    controller.save(model_dir / "controller", {k: v for k, v in meta.items()
                                               if k not in ("game", "in_dim")})
    return {"real": meta["real_score"], "random": meta["random_score"]}
