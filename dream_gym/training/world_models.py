"""World Models' recipe (``family = "world_models"``): collect, V, M, C, iterative rounds.

Stages in order, each recorded in ``runs/<name>/stages.json`` and skipped when done:
``collect`` (real episodes), ``vae``, ``mdnrnn`` (which also writes the model folder and its
starting contexts), ``off_track`` (a probe on V's latent, when the controller's off-track
stop is on), ``controller`` (CMA-ES in the dream), ``round_k`` stages of the paper's
iterative procedure, ``final_controller`` and ``evaluate`` (real-game scores).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dream_gym.checkpoint import load_tensors, save_tensors
from dream_gym.config import pick
from dream_gym.data import CollectConfig, collect, load_episodes
from dream_gym.games import get_game
from dream_gym.training import ddp
from dream_gym.training.controller import ControllerTrainConfig
from dream_gym.training.iterate import IterateConfig
from dream_gym.training.mdnrnn import MDNRNNTrainConfig, SequenceSampler, train_mdnrnn
from dream_gym.training.recipe import (
    ContextConfig,
    EvaluateConfig,
    Stages,
    controller_stage,
    final_stages,
    save_recipe_contexts,
)
from dream_gym.training.vae import VAETrainConfig, encode_episodes, train_vae
from dream_gym.world_models.mdnrnn import MDNRNNConfig
from dream_gym.world_models.model import WorldModelsDream
from dream_gym.world_models.vae import VAEConfig

__all__ = ["run_stages", "RECIPE_SECTIONS", "MDNRNNRecipe", "FeatureChoice", "ContextConfig",
           "EvaluateConfig"]


@dataclass
class MDNRNNRecipe:
    """What ``[mdnrnn]`` sets about the dream beyond M's shape and training."""

    done_mode: str = "bernoulli"
    """"bernoulli": done sampled from M's per-step hazard; "threshold": the logit's sign."""
    predict_gamevars: bool = True
    """Whether M predicts the game's variables (HEALTH, a dashboard's speed)."""
    gamevar_scale: str = "max"
    """What game-variable targets are divided by: "max" (largest magnitude) or "std"."""


@dataclass
class FeatureChoice:
    features: str = "zh"
    """What C and a latent agent see: "zh" ([z, h]) or "zhc" ([z, h, c])."""


RECIPE_SECTIONS: dict[str, tuple[type, ...]] = {
    "collect": (CollectConfig,),
    "vae": (VAEConfig, VAETrainConfig),
    "mdnrnn": (MDNRNNConfig, MDNRNNTrainConfig, MDNRNNRecipe),
    "controller": (ControllerTrainConfig, FeatureChoice),
    "iterate": (IterateConfig,),
    "final_controller": (ControllerTrainConfig,),
    "context": (ContextConfig,),
    "evaluate": (EvaluateConfig,),
}
"""Which dataclasses read each section of a World Models recipe."""


def run_stages(r: dict[str, Any], run_dir: Path, stages: Stages, device: torch.device) -> Path:
    """Every stage of a World Models recipe; returns the exported model folder."""
    seed = r.get("seed", 0)
    data_dir = run_dir / "data"
    model_dir = run_dir / "model"

    ccfg = pick(CollectConfig, r["collect"], game=r["game"], seed=seed)
    stages.run("collect", lambda: {"frames": collect(ccfg, data_dir)})
    episodes = load_episodes(data_dir)
    if not r["mdnrnn"].get("predict_gamevars", True):  # M without game-variable heads
        episodes = episodes.first_gamevars(0)

    vae_cfg = pick(VAEConfig, r["vae"])
    vae_path = run_dir / "vae" / "final.safetensors"

    def vae_stage():
        vae = train_vae(episodes, vae_cfg, pick(VAETrainConfig, r["vae"], seed=seed),
                        run_dir / "vae", device)
        if ddp.is_main():
            save_tensors(vae_path, vae.state_dict())
            encode_episodes(vae, episodes, run_dir / "vae" / "latents.safetensors", device)

    stages.run("vae", vae_stage, parallel=True)

    gamevar_scale = _gamevar_scale(episodes.gamevars, r["mdnrnn"].get("gamevar_scale", "max"))
    rnn_cfg = pick(MDNRNNConfig, r["mdnrnn"], z_dim=vae_cfg.z_dim,
                    action_dim=get_game(r["game"]).action_dim, gamevars=episodes.gamevars.shape[1])

    def rnn_stage():
        from dream_gym.world_models.vae import ConvVAE

        lat = load_tensors(run_dir / "vae" / "latents.safetensors")
        tcfg = pick(MDNRNNTrainConfig, r["mdnrnn"], seed=seed)
        sampler = SequenceSampler(episodes, lat["mu"].numpy(), lat["logvar"].numpy(), r["game"],
                                  gamevar_scale, tcfg.seq_len, np.random.default_rng(seed),
                                  tcfg.latent, rnn_cfg.done_window)
        rnn = train_mdnrnn(sampler, rnn_cfg, tcfg, run_dir / "mdnrnn", device)
        if not ddp.is_main():
            return
        save_tensors(run_dir / "mdnrnn" / "final.safetensors", rnn.state_dict())
        vae = ConvVAE(vae_cfg)
        vae.load_state_dict(load_tensors(vae_path))
        WorldModelsDream(r["game"], vae, rnn, gamevar_scale,
                         r["mdnrnn"].get("done_mode", "bernoulli"),
                         r.get("controller", {}).get("features", "zh")).save(model_dir)
        save_recipe_contexts(r, episodes, model_dir)

    stages.run("mdnrnn", rnn_stage, parallel=True)

    if r.get("controller", {}).get("off_track_patience", 0) > 0:
        def probe_stage():  # V's off-track probe, for the controller's off-track stop
            from dream_gym.training.off_track import fit_probe

            lat = load_tensors(run_dir / "vae" / "latents.safetensors")
            probe, metrics = fit_probe(lat["mu"].numpy(), episodes.frames, get_game(r["game"]),
                                       seed=seed)
            probe.save(model_dir, metrics)
            return metrics

        stages.run("off_track", probe_stage)

    if "controller" in r:
        ctrl_cfg = controller_stage(r, run_dir, model_dir, stages, device)
        if "iterate" in r:
            from dream_gym.training.iterate import IterateConfig, refit_mdnrnn, run_round

            icfg = pick(IterateConfig, r["iterate"], seed=seed)
            random_data = (episodes, run_dir / "vae" / "latents.safetensors")
            for k in range(1, icfg.rounds + 1):
                run_round(k, icfg, run_dir, model_dir, "mdnrnn", partial(
                    refit_mdnrnn, k, icfg, run_dir, model_dir, random_data, r["mdnrnn"],
                    device), ctrl_cfg, stages, device)
        final_stages(r, run_dir, model_dir, stages, device)
    return model_dir



def _gamevar_scale(gamevars: np.ndarray, how: str) -> float:
    """What M's game-variable targets are divided by: ``"max"``, their largest magnitude
    (at least 1; TakeCover's health), or ``"std"``, their spread, so that the head's loss
    weighs about as much as the latent's (CarRacing's speed, mostly far below its top)."""
    if not gamevars.size:
        return 1.0
    if how == "max":
        return float(max(1.0, np.abs(gamevars).max()))
    if how == "std":
        return float(gamevars.std()) or 1.0  # a constant variable: nothing to scale
    raise ValueError(f"[mdnrnn] gamevar_scale must be 'max' or 'std', got {how!r}")
