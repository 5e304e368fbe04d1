"""Evolve the linear controller with CMA-ES entirely inside the dream (seed 003).

Every generation the whole population's rollouts (popsize x rollouts dreams) are stepped as
one batch. The controller never sees a real reward: its fitness is the mean dream return.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cma
import numpy as np
import torch
from tqdm import tqdm

from dream_gym.agents.controller import LinearController
from dream_gym.checkpoint import load_json, load_tensors, save_json, save_tensors
from dream_gym.rollout import dream_returns
from dream_gym.training.common import make_writer, seed_everything
from dream_gym.zoo import load_contexts, load_model

__all__ = ["ControllerTrainConfig", "train_in_dream", "dream_score"]


@dataclass
class ControllerTrainConfig:
    temperature: float = 1.15
    """Dream temperature tau (seed 003's best TakeCover transfer was at 1.15)."""
    generations: int = 40
    population: int = 64
    rollouts: int = 16
    """Dream rollouts per candidate; fitness is their mean return."""
    sigma0: float = 0.1
    max_steps: int = 2100
    """Cap on a dream rollout (the length of the paper's Doom episodes)."""
    eval_rollouts: int = 1024
    """Dream rollouts used to score the final controller."""
    seed: int = 0


def _sample_contexts(frames, actions, n: int, rng: np.random.Generator):
    idx = torch.from_numpy(rng.integers(len(frames), size=n))
    return frames[idx], actions[idx]


def dream_score(model, controller: LinearController, n: int, temperature: float,
                max_steps: int, seed: int, contexts: tuple[torch.Tensor, torch.Tensor]
                ) -> tuple[float, float]:
    """Mean and std of a controller's return over ``n`` dreams started from ``contexts``."""
    frames, actions = contexts
    f, a = _sample_contexts(frames, actions, n, np.random.default_rng(seed))
    ctrl = controller.to(model.device)
    ret, _ = dream_returns(model, lambda x, rows: ctrl.act(x), f, a, temperature,
                           max_steps, seed * 1_000_003 + torch.arange(n))
    return float(ret.mean()), float(ret.std())


def train_in_dream(model_dir: str | Path, cfg: ControllerTrainConfig, run_dir: str | Path,
                   device: torch.device, export_dir: str | Path | None = None,
                   progress: bool = True, time_limit: float | None = None) -> dict:
    """Run CMA-ES in the dream of ``model_dir``; resumable from ``run_dir/es.*``.

    Returns a summary (dream score of the final mean controller, generations, seconds) and,
    with ``export_dir``, saves it there as ``controller.safetensors`` + ``controller.json``.
    """
    seed_everything(cfg.seed)
    run_dir = Path(run_dir)
    model = load_model(model_dir, device)
    ctx = load_contexts(model_dir)
    frames, actions = ctx["frames"], ctx["actions"]
    n_params = LinearController.num_params(model.feature_dim, model.spec.controller_outputs)

    start_gen, x0, sigma0, history = 0, np.zeros(n_params), cfg.sigma0, []
    if (run_dir / "es.json").exists():  # warm restart from the last generation's mean/sigma
        st = load_json(run_dir / "es.json")
        start_gen, sigma0, history = st["generation"], st["sigma"], st["history"]
        x0 = load_tensors(run_dir / "es.safetensors")["mean"].double().numpy()
    es = cma.CMAEvolutionStrategy(x0, sigma0, {"popsize": cfg.population,
                                               "seed": cfg.seed + start_gen + 1, "verbose": -9})
    writer = make_writer(run_dir, cfg)
    rng = np.random.default_rng(cfg.seed + start_gen)
    t0 = time.time()
    desc = f"CMA-ES in dream (tau={cfg.temperature})"
    if time_limit is not None:  # a time budget, not a generation count, ends the run
        desc += f", budget {time_limit / 60:g} min"
    gens = range(start_gen, cfg.generations)
    # under a time budget, hide the (nominal) generation total: iter() has no len for tqdm
    bar = tqdm(gens if time_limit is None else iter(gens), initial=start_gen,
               total=cfg.generations if time_limit is None else None, desc=desc,
               unit="gen", disable=not progress)
    for gen in bar:
        solutions = es.ask()
        ctrl = LinearController(model.game, model.feature_dim, np.stack(solutions)).to(device)
        member = torch.arange(cfg.population, device=device).repeat_interleave(cfg.rollouts)
        f, a = _sample_contexts(frames, actions, len(member), rng)
        seeds = (cfg.seed * 100_003 + gen) * len(member) + torch.arange(len(member))
        ret, lengths = dream_returns(
            model, lambda x, rows, c=ctrl, m=member: c.act(x, m[rows]),
            f, a, cfg.temperature, cfg.max_steps, seeds)
        fitness = ret.view(cfg.population, cfg.rollouts).mean(1).numpy()
        es.tell(solutions, (-fitness).tolist())
        row = {"generation": gen + 1, "mean": float(fitness.mean()),
               "best": float(fitness.max()), "sigma": float(es.sigma),
               "dream_steps": int(lengths.sum())}
        history.append(row)
        writer.add_scalar("charts/dream_return_mean", row["mean"], gen)
        writer.add_scalar("charts/dream_return_best", row["best"], gen)
        writer.add_scalar("charts/sigma", row["sigma"], gen)
        writer.add_scalar("charts/dream_steps", row["dream_steps"], gen)
        bar.set_postfix(mean=f"{row['mean']:.0f}", best=f"{row['best']:.0f}")
        save_tensors(run_dir / "es.safetensors", {"mean": torch.from_numpy(es.mean.copy())})
        save_json(run_dir / "es.json", {"generation": gen + 1, "sigma": float(es.sigma),
                                        "history": history})
        if time_limit is not None and time.time() - t0 > time_limit:
            break
    final = LinearController(model.game, model.feature_dim, es.mean)
    score, std = dream_score(model, final, cfg.eval_rollouts, cfg.temperature, cfg.max_steps,
                             cfg.seed + 12345, (frames, actions))
    writer.add_scalar("charts/final_dream_score", score, len(history))
    writer.close()
    summary = {"dream_score": score, "dream_std": std, "generations": len(history),
               "train_seconds": round(time.time() - t0, 1), "config": asdict(cfg)}
    if export_dir is not None:
        final.save(Path(export_dir) / "controller", {"temperature": cfg.temperature, **summary})
    return summary
