"""A pixel policy taught by a latent teacher inside the dream (DAgger, Ross et al. 2011).

In a dream the model's state is known at every step, so an agent that reads it (a World
Models controller evolved on [z, h], a PPO agent on the latent observation) can label the
frames a pixel agent sees. :func:`dagger` trains an SB3 policy's heads to act as the teacher
would on the frames the *student's own* play reaches: round ``r`` lets the teacher act in a
share ``beta ** r`` of the steps and the student in the rest, labels every step with the
teacher's action, and fits the student on all rounds' labels. Everything happens in the
dream; the student then trains on with PPO and plays the real game on pixels alone.
Why: a pixel PPO agent learning from the dream's reward alone reached half the latent
agent's dream score in 75 minutes (TakeCover card), while the latent teacher's actions are
recoverable from a few stacked frames (94% from 8).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecEnv
from tqdm import tqdm

from dream_gym.envs.vector import DreamVectorEnv

__all__ = ["DaggerConfig", "dagger", "dream_of", "controller_teacher"]

Teacher = Callable[[torch.Tensor], torch.Tensor]
"""Latent features (N, F) of the dreams' current states -> their actions (N, ...)."""


@dataclass
class DaggerConfig:
    rounds: int = 4
    steps: int = 256
    """Vector steps per round (each gives ``num_envs`` labelled frames)."""
    beta: float = 0.5
    """Round r lets the teacher act in a share beta ** r of the steps (1 in the first)."""
    epochs: int = 3
    """Passes over all rounds' labels after each round."""
    batch_size: int = 2048
    lr: float = 1e-3
    seed: int = 0


def dream_of(venv: VecEnv) -> DreamVectorEnv:
    """The :class:`DreamVectorEnv` under an SB3 vector env (through its wrappers)."""
    inner = getattr(venv.unwrapped, "venv", None)
    dreams = getattr(inner, "unwrapped", None)
    if not isinstance(dreams, DreamVectorEnv):
        raise TypeError("dagger needs a dream as an SB3 VecEnv (dream_gym.sb3."
                        "make_sb3_vec_env, SB3 wrappers allowed): the teacher reads the "
                        f"dreams' latent state; got {type(venv).__name__}.")
    return dreams


def controller_teacher(model: str | Path) -> Teacher:
    """The controller shipped with a model (a zoo name or a model folder holding
    ``controller.json``), evolved in that model's dream, as a teacher."""
    from dream_gym.agents.controller import LinearController
    from dream_gym.zoo import resolve

    stem = resolve(model) / "controller"
    if not stem.with_suffix(".json").exists():
        raise FileNotFoundError(f"{stem}.json: no controller in {model!r} to teach with; "
                                "evolve one first (dream-gym evolve).")
    controller, _ = LinearController.load(stem)
    if controller.hold != 1:  # act() gives fresh decisions; a held one repeats them
        raise ValueError(f"{stem}.json decides every {controller.hold} steps; dagger labels "
                         "every step, so teach with a controller evolved with hold 1.")
    return controller.act


def _features(policy: ActorCriticPolicy, obs: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        tensor, _ = policy.obs_to_tensor(obs)
        return policy.extract_features(tensor, policy.pi_features_extractor)


def _distribution(policy: ActorCriticPolicy, features: torch.Tensor):
    return policy._get_action_dist_from_latent(policy.mlp_extractor.forward_actor(features))


def dagger(policy: ActorCriticPolicy, venv: VecEnv, teacher: Teacher,
           cfg: DaggerConfig | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Fit ``policy``'s actor (its MLP and action head; the features extractor must be frozen,
    e.g. :class:`~dream_gym.sb3.ModelEncoder`) to ``teacher``'s actions on the dream frames
    of ``venv``. Returns per round: the teacher's share of the actions, the labels so far,
    the dreams that ended and their mean return (under SB3's ``VecMonitor``; mixed play),
    for discrete actions the student's agreement with the teacher on the round's frames
    before it is fitted on them and the best constant action's, and the fitted loss."""
    cfg = cfg or DaggerConfig()
    if any(p.requires_grad for p in policy.features_extractor.parameters()):
        raise ValueError("dagger fits the policy's heads on stored features: give the policy "
                         "a frozen features extractor (dream_gym.sb3.ModelEncoder), or freeze "
                         "it (requires_grad_(False)).")
    dreams = dream_of(venv)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    actor = [*policy.mlp_extractor.policy_net.parameters(), *policy.action_net.parameters()]
    opt = torch.optim.Adam(actor, cfg.lr)
    feats: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    log = []
    venv.seed(cfg.seed)
    obs = venv.reset()
    discrete = policy.action_space.dtype.kind in "iu"
    for r in range(cfg.rounds):
        share = cfg.beta ** r
        agree, returns = 0.0, []
        for _ in tqdm(range(cfg.steps), desc=f"DAgger round {r + 1}/{cfg.rounds}",
                      disable=not progress):
            f = _features(policy, obs)
            taught = teacher(dreams.latent_features()).cpu()
            with torch.no_grad():
                own = _distribution(policy, f).get_actions(deterministic=True).cpu() \
                    .reshape(taught.shape).to(taught.dtype)
            if discrete:
                agree += float((own == taught).float().mean())
            feats.append(f)
            labels.append(taught)
            use_teacher = torch.from_numpy(rng.random(len(taught)) < share)
            mask = use_teacher.reshape(-1, *([1] * (taught.dim() - 1)))
            act = torch.where(mask, taught, own)
            obs, _, _, infos = venv.step(act.numpy())
            returns += [i["episode"]["r"] for i in infos if "episode" in i]
        x, y = torch.cat(feats), torch.cat(labels)
        entry = {"round": r, "teacher_share": share, "labels": len(y),
                 "episodes": len(returns),
                 "dream_return": float(np.mean(returns)) if returns else None}
        if discrete:
            counts = torch.unique(y[-cfg.steps * venv.num_envs:], return_counts=True)[1]
            entry["agreement"] = agree / cfg.steps
            entry["constant_agreement"] = float(counts.max()) / float(counts.sum())
        entry["loss"] = _fit(policy, opt, x, y, cfg)
        log.append(entry)
        if progress:
            tqdm.write(f"DAgger round {r + 1}: " + ", ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                for k, v in entry.items() if k != "round"))
    return log


def _fit(policy: ActorCriticPolicy, opt: torch.optim.Optimizer, x: torch.Tensor,
         y: torch.Tensor, cfg: DaggerConfig) -> float:
    """Epochs of negative log-likelihood of the teacher's actions; the last epoch's mean."""
    total = 0.0
    for _ in range(cfg.epochs):
        perm, total = torch.randperm(len(x)), 0.0
        for i in range(0, len(x), cfg.batch_size):
            b = perm[i:i + cfg.batch_size]
            loss = -_distribution(policy, x[b]).log_prob(y[b]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
    return total / len(x)
