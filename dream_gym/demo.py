"""``dream-gym demo``: evolve a controller inside a shipped dream, then play the real game."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch
from PIL import Image

from dream_gym.agents.controller import LinearController
from dream_gym.contract import seed_dreams
from dream_gym.evaluate import evaluate_controller, evaluate_random
from dream_gym.games import get_game, resize_frame
from dream_gym.training.controller import ControllerTrainConfig, train_in_dream
from dream_gym.training.recipe import final_controller_config, model_recipe
from dream_gym.zoo import load_model, resolve

__all__ = ["run_demo", "side_by_side_video"]

PANEL = 256


def _panel(frame: np.ndarray) -> np.ndarray:
    return np.asarray(resize_frame(frame, PANEL))


def side_by_side_video(model, controller: LinearController | Callable, path: Path, seed: int,
                       max_frames: int = 1500, temperature: float = 1.0,
                       strip: Path | None = None, strip_rows: int = 4) -> int:
    """One real episode as three panels: the real screen | what the model makes of it (V's
    reconstruction while M follows the real frames) | the dream alone, started from the
    episode's first frame and fed the same actions (open loop at ``temperature``), so where
    the dream drifts from the game shows. ``controller``: a :class:`LinearController` or any
    function from features to actions. ``strip``: also a PNG of ``strip_rows`` moments
    spread over the episode, one row each. Returns the number of frames written."""
    real: list[tuple[np.ndarray, np.ndarray]] = []
    episodes: list[dict[str, np.ndarray]] = []

    def record(slot: int, screen: np.ndarray, seen: np.ndarray) -> None:
        if len(real) < max_frames:
            real.append((_panel(screen), _panel(seen)))

    evaluate_controller(model, controller, 1, seed=seed, num_envs=1, progress=False,
                        max_steps=max_frames + 1,  # the cut step's frame is not shown
                        on_step=record, record=episodes)
    ep = episodes[0]
    spec = get_game(model.game)
    with torch.no_grad():
        state = model.initial_state(torch.from_numpy(ep["frames"][:1, None]),
                                    spec.no_actions(1))
        state = seed_dreams(state, torch.tensor([seed]))
        frames = []
        for (screen, seen), action in zip(real, ep["actions"], strict=False):
            state, _ = model.imagine(state, torch.from_numpy(action[None]), temperature)
            dream = model.render(state)[0].cpu().numpy()
            frames.append(np.concatenate([screen, seen, _panel(dream)], axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimwrite(path, frames, fps=spec.fps, macro_block_size=1)
    if strip is not None:
        at = np.linspace(0, len(frames) - 1, strip_rows).round().astype(int)
        strip.parent.mkdir(parents=True, exist_ok=True)
        grid = Image.fromarray(np.concatenate([frames[i] for i in at], axis=0))
        grid.resize((grid.width // 2, grid.height // 2), Image.BILINEAR).save(strip)
    return len(frames)


def run_demo(model_name: str = "takecover", minutes: float = 3.0, episodes: int = 20,
             temperature: float = 1.15, video: Path = Path("dream_gym_demo.mp4"),
             seed: int = 0, population: int = 32, rollouts: int = 8) -> dict:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model_dir = resolve(model_name)
    model = load_model(model_dir)
    print(f"[demo] evolving a fresh controller inside the {model.game} dream for "
          f"{minutes:g} min (CMA-ES on whitened features, population {population} x {rollouts} "
          f"dreams, tau={temperature})")
    recipe = model_recipe(model_dir)
    base = final_controller_config(recipe) if recipe else ControllerTrainConfig()
    cfg = replace(base, temperature=temperature, generations=10_000, population=population,
                  rollouts=rollouts, seed=seed, eval_rollouts=256,
                  whiten=True)  # raw search: short runs stall
    with tempfile.TemporaryDirectory() as tmp:
        summary = train_in_dream(model_dir, cfg, Path(tmp) / "run", model.device,
                                 export_dir=tmp, time_limit=minutes * 60)
        controller, _ = LinearController.load(Path(tmp) / "controller")
    print(f"[demo] {summary['generations']} generations; dream score "
          f"{summary['dream_score']:.0f} +- {summary['dream_std']:.0f}")
    print(f"[demo] playing {episodes} real {model.game} episodes with it and with a random "
          "policy (never-seen seeds)")
    real = evaluate_controller(model, controller, episodes, seed=20_000 + seed)
    rand = evaluate_random(model.game, episodes, seed=20_000 + seed)
    rows = [("dream-trained controller, in the dream", summary["dream_score"],
             summary["dream_std"], 256),
            ("dream-trained controller, real game", real["mean"], real["std"], real["n"]),
            ("random policy, real game", rand["mean"], rand["std"], rand["n"])]
    print(f"\n{'policy':<42}{'mean':>8}{'std':>8}{'n':>6}")
    for name, mean, std, n in rows:
        print(f"{name:<42}{mean:>8.1f}{std:>8.1f}{n:>6}")
    n_frames = side_by_side_video(model, controller, Path(video), seed=20_000 + seed)
    print(f"\n[demo] video ({n_frames} frames, real | model's view | open-loop dream) "
          f"written to {video}")
    return {"dream": summary, "real": real, "random": rand, "video": str(video)}
