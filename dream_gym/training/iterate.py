"""World Models' iterative training procedure: the real game corrects the dream's blind spots.

A controller evolved in a dream exploits whatever the dream gets wrong (ours learned to hug
a wall, where the dream's fireballs never arrive). Each round therefore (1) plays the
current controller in the real game, with random held actions mixed in for exploration, and
records those episodes; (2) fits M on all real data so far, V fixed, starting from the
last round's M, from the M of the first data (``refit_from = "first"``) or from scratch
(``"scratch"``); (3) evolves a fresh controller in the corrected dream; (4) scores it on a
few real episodes, for the log only: nothing in the loop is chosen by its real score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dream_gym.agents.controller import LinearController
from dream_gym.checkpoint import load_tensors
from dream_gym.data import Episodes, concat_episodes, load_episodes, write_shard
from dream_gym.evaluate import evaluate_controller
from dream_gym.training.common import pick
from dream_gym.training.controller import ControllerTrainConfig, train_in_dream
from dream_gym.training.mdnrnn import MDNRNNTrainConfig, SequenceSampler, train_mdnrnn
from dream_gym.training.vae import encode_episodes
from dream_gym.zoo import load_model

__all__ = ["RoundsConfig", "IterateConfig", "collect_round", "run_round", "refit_mdnrnn"]


@dataclass
class RoundsConfig:
    """The rounds themselves, any family: real play, refit, a new controller, a check."""

    rounds: int = 3
    episodes: int = 200
    """Real episodes collected per round with the current controller."""
    explore: float | list[float] = 0.05
    """Per-step chance of starting a random action held 1..max_hold steps; a list gives
    each round its own (CarRacing: 0.05, then 0.01 once the driver is good enough that a
    quarter of random steps would hide it)."""
    max_hold: int = 12
    episodes_per_shard: int = 20
    check_episodes: int = 20
    """Real episodes that score each round's controller (logged, never used to choose)."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in self._per_round:
            value = getattr(self, name)
            if isinstance(value, list) and len(value) != self.rounds:
                raise ValueError(f"[iterate] {name} lists {len(value)} values for "
                                 f"{self.rounds} rounds: give one per round, or a single value.")

    _per_round = ("explore",)

    def at(self, name: str, k: int) -> Any:
        """Round k's (1-based) value of a setting that may be given per round."""
        value = getattr(self, name)
        return value[k - 1] if isinstance(value, list) else value

    def round_seed(self, k: int) -> int:
        """First real seed of round k's collection (clear of data, eval and check seeds)."""
        return 100_000 + 10_000 * k + self.seed * 1_000_003


@dataclass
class IterateConfig(RoundsConfig):
    """World Models' rounds: M is refit on all real data so far, V fixed."""

    mdnrnn_steps: int = 600
    """Training steps of M per round, on windows from all real data so far."""
    lr: float = 3e-4
    refit_from: str | list[str] = "last"
    """Where each round's fine-tuning of M starts: "last" (the previous round's M),
    "first" (the M trained on the first data, so every round's M has trained equally long:
    on TakeCover, stacking refits made the dream stop telling sweeping from wall-hugging) or
    "scratch" (a fresh M, trained ``mdnrnn_steps`` at ``lr`` on all data: on CarRacing a
    fine-tuned M kept paying the exploit the round's data had just shown, two rounds on);
    a list gives each round its own."""

    _per_round = ("explore", "refit_from")

    def __post_init__(self) -> None:
        super().__post_init__()
        starts = self.refit_from if isinstance(self.refit_from, list) else [self.refit_from]
        for start in starts:
            if start not in ("last", "first", "scratch"):
                raise ValueError(f"refit_from must be 'last', 'first' or 'scratch', got {start!r}")


def collect_round(model_dir: Path, cfg: RoundsConfig, k: int, out_dir: Path,
                  device: torch.device) -> dict[str, Any]:
    """Play the model's controller (plus exploration) in the real game; write the shards."""
    model = load_model(model_dir, device)
    controller, _ = LinearController.load(model_dir / "controller")
    episodes: list[dict[str, np.ndarray]] = []
    score = evaluate_controller(model, controller, cfg.episodes, seed=cfg.round_seed(k),
                                explore=cfg.at("explore", k), max_hold=cfg.max_hold,
                                record=episodes)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = 0
    for i in range(0, len(episodes), cfg.episodes_per_shard):
        frames += write_shard(episodes[i : i + cfg.episodes_per_shard],
                              out_dir / f"shard_{i // cfg.episodes_per_shard:05d}.npz")
    return {"frames": frames, "collect_score": {k2: score[k2] for k2 in ("mean", "std", "n")}}


def all_latents(vae, parts: list[tuple[Episodes, Path]], device: torch.device
                ) -> tuple[np.ndarray, np.ndarray]:
    """V's posterior for every part, encoded once and cached beside it."""
    mus, logvars = [], []
    for episodes, path in parts:
        if path.exists():
            lat = {k: v.numpy() for k, v in load_tensors(path).items()}
        else:
            lat = encode_episodes(vae, episodes, path, device)
        mus.append(lat["mu"])
        logvars.append(lat["logvar"])
    return np.concatenate(mus), np.concatenate(logvars)


def refit_mdnrnn(k: int, cfg: IterateConfig, run_dir: Path, model_dir: Path,
                 random_data: tuple[Episodes, Path], rnn_section: dict[str, Any],
                 device: torch.device) -> dict[str, Any]:
    """World Models' refit of round k: M on V's latents of all real data so far."""
    rdir = run_dir / f"round{k}"
    model = load_model(model_dir, device)
    parts = [random_data] + [(ep, run_dir / f"round{j}" / "latents.safetensors")
                             for j, ep in enumerate(round_episodes(run_dir, k), 1)]
    mu, logvar = all_latents(model.vae, parts, device)
    episodes = concat_episodes([p[0].first_gamevars(model.rnn.cfg.gamevars) for p in parts])
    tcfg = pick(MDNRNNTrainConfig, rnn_section, steps=cfg.mdnrnn_steps, lr=cfg.lr,
                seed=cfg.seed + k)
    sampler = SequenceSampler(episodes, mu, logvar, model.game, model.gamevar_scale,
                              tcfg.seq_len, np.random.default_rng(tcfg.seed), tcfg.latent,
                              model.rnn.cfg.done_window)
    init = None  # "scratch": a fresh M
    if cfg.at("refit_from", k) == "first":
        init = load_tensors(run_dir / "mdnrnn" / "final.safetensors")
    elif cfg.at("refit_from", k) == "last":
        init = model.rnn.state_dict()
    model.rnn = train_mdnrnn(sampler, model.rnn.cfg, tcfg, rdir / "mdnrnn", device,
                             init=init)
    model.save(model_dir)
    model.save(rdir / "model")  # each round's dream stays available, e.g.
    # for benchmarks/m_fit_vs_dream.py or `dream-gym evolve --ensemble`
    return {"real_frames_total": int(episodes.lengths.sum())}


def round_episodes(run_dir: Path, k: int) -> list[Episodes]:
    """The real episodes rounds 1..k collected."""
    return [load_episodes(run_dir / f"round{j}" / "data") for j in range(1, k + 1)]


def run_round(k: int, cfg: RoundsConfig, run_dir: Path, model_dir: Path, refit_name: str,
              refit: Callable[[], dict[str, Any] | None], ctrl_cfg: ControllerTrainConfig,
              stages, device: torch.device) -> None:
    """Round k (1-based) of iterative training; each step is a resumable recipe stage:
    ``round{k}_collect``, ``round{k}_{refit_name}`` (the family's refit of its dream on all
    real data so far, exported to ``model_dir``), ``round{k}_controller``, ``round{k}_check``."""
    rdir = run_dir / f"round{k}"
    stages.run(f"round{k}_collect", lambda: collect_round(model_dir, cfg, k, rdir / "data",
                                                            device))
    stages.run(f"round{k}_{refit_name}", refit)
    stages.run(f"round{k}_controller", lambda: train_in_dream(
        model_dir, ctrl_cfg, rdir / "controller", device, export_dir=model_dir))

    def check():
        model = load_model(model_dir, device)
        controller, _ = LinearController.load(model_dir / "controller")
        s = evaluate_controller(model, controller, cfg.check_episodes,
                                seed=cfg.round_seed(k) + 5_000)
        return {"real_score": {k2: s[k2] for k2 in ("mean", "std", "stderr", "n")}}

    stages.run(f"round{k}_check", check)
