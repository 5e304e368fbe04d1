"""Evolve the linear controller with CMA-ES entirely inside the dream (World Models, Ha &
Schmidhuber 2018).

Every generation the whole population's rollouts (popsize x rollouts dreams) are stepped as
one batch. The controller never sees a real reward: its fitness is the mean dream return.

With an ensemble of dreams (several Ms over one V, e.g. those of the iterative rounds) each
candidate's rollouts are dealt across them, so its fitness is its mean return over all of
them: a flaw of one M that a controller could exploit pays only in that M's share (or,
with ``ensemble_fitness="min"``, its return in the M where it does worst: nothing).

With ``whiten`` CMA-ES searches in whitened feature coordinates (:class:`Whitening`). M's
features are mostly a constant offset (TakeCover: norm 11 of 13) over small per-unit
swings, so a raw candidate's action is set by W's product with the offset and barely
responds to what the dream shows; short raw runs then often stall on a fixed action
(TakeCover: hugging a wall). The controller found is the same ``tanh(W x + b)``. It is not
the default: a stronger search also finds a dream's flaws sooner (CarRacing: a whitened C
floored gas and brake together, 415 in the dream and -40 on real tracks; model cards).

With ``explore`` each training dream's controller is pushed now and then by a held random
action, the noise of World Models' data collection, so that fitness pays for recovering. It is
not the default either: in the CarRacing dream it gave a slower driver (model card).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dream_gym import cluster
from dream_gym.agents.controller import HeldDecisions, LinearController
from dream_gym.checkpoint import load_json, load_tensors, save_json, save_tensors
from dream_gym.contract import State, WorldModel, seed_dreams, select_rows
from dream_gym.explore import HeldRandomActions
from dream_gym.games import GameSpec, controller_mapping
from dream_gym.rollout import StopRule, state_returns
from dream_gym.training.common import make_writer, seed_everything
from dream_gym.training.off_track import OffTrackProbe, OffTrackStop
from dream_gym.zoo import load_contexts, load_model

with warnings.catch_warnings():  # cma warns that matplotlib (for cma.plot) is missing
    warnings.simplefilter("ignore", UserWarning)
    import cma

__all__ = ["ControllerTrainConfig", "Whitening", "train_in_dream", "dream_score",
           "starting_states", "with_rollout_cap"]


@dataclass
class ControllerTrainConfig:
    temperature: float = 1.0
    """Dream temperature tau. Game-specific values live in the recipes (TakeCover trains at
    1.15 and 1.3, World Models' best transfers)."""
    generations: int = 40
    """CMA-ES generations."""
    time_limit_minutes: float | None = None
    """A time budget that ends the run after the generation that passes it, whatever
    ``generations`` says (``dream-gym build`` sizes its CMA-ES so); None: none."""
    population: int = 64
    """Candidate controllers per generation (World Models: 64)."""
    rollouts: int = 16
    """Dream rollouts per candidate; fitness is their mean return."""
    sigma0: float = 0.1
    """CMA-ES's first step size on the raw parameters (``whiten = false``)."""
    whiten: bool = False
    """Search in whitened feature coordinates (:class:`Whitening`): TakeCover's short runs no
    longer stall, but in the CarRacing dream it found an exploit (see the module's doc)."""
    spread0: float = 1.0
    """With ``whiten``: the spread (std) of a first-generation candidate's tanh input."""
    max_steps: int | None = None
    """Cap on a dream rollout; None: the game's own limit (a game without one, such as
    TakeCover, must set it: its recipe caps at 2100, the paper's Doom episodes)."""
    eval_rollouts: int = 1024
    """Dream rollouts used to score the final controller."""
    ensemble_fitness: str = "mean"
    """With an ensemble: a candidate's fitness is its mean return over all dreams ("mean")
    or its mean return in the M where it does worst ("min"), a pessimistic score that
    pays nothing for a flaw the other Ms do not share (MOPO/MOReL's idea, without a
    learned penalty)."""
    off_track_patience: int = 0
    """End a dream once V's latent has shown the player off the track this many steps
    running, charging the game's off-track reward for the steps left (a pessimistic model
    of what the dream gets wrong there: dream_gym.training.off_track); 0: never."""
    off_track_grace: int = 50
    """Steps before the off-track stop looks (CarRacing's start zooms in over grass)."""
    explore: float = 0.0
    """Per-step chance that a training dream's controller is pushed: a random action held
    1..``max_hold`` steps replaces its own (:class:`~dream_gym.explore.HeldRandomActions`, the
    noise of World Models' data collection), so fitness pays for recovering; 0: never. The
    final dream score is measured without it."""
    max_hold: int = 12
    """With ``explore``: a push holds its random action 1..max_hold steps."""
    hold: int = 1
    """The controller decides every ``hold`` steps and repeats its action in between, in the
    dream and in the real game (saved with it: :class:`~dream_gym.agents.controller.
    LinearController`): the agent-side frame skip, which keeps a controller's play near
    data collected with held random actions. It did not rescue the TakeCover GameGAN dream
    (hold 4 and 8 both evolved always-left there: 174.6 in the game; model card)."""
    seed: int = 0
    """Seeds CMA-ES, the dreams' contexts and their noise."""

    def __post_init__(self) -> None:
        if self.ensemble_fitness not in ("mean", "min"):
            raise ValueError(f"ensemble_fitness must be 'mean' or 'min', got "
                             f"{self.ensemble_fitness!r}")


def starting_states(models: Sequence[WorldModel], frames: torch.Tensor, actions: torch.Tensor,
                    chunk: int = 256) -> list[State]:
    """Each model's state after each context, computed once for all the rollouts that start
    there (a 16-frame context costs V and M 16 steps; CMA-ES starts thousands of dreams)."""
    out = []
    for model in models:
        parts = [model.initial_state(frames[i : i + chunk], actions[i : i + chunk])
                 for i in range(0, len(frames), chunk)]
        out.append({k: torch.cat([p[k] for p in parts]) for k in parts[0]})
    return out


@dataclass
class Whitening:
    """CMA-ES's search vector -> controller params, with features centred and scaled.

    A search vector (W', b') is the controller ``tanh(W' (x - mean) / std + b')``, i.e.
    W = W' / std and b = b' - W mean: the same linear controller, searched in coordinates
    where every feature swings about as much as every other and the offset they share is
    absorbed by the bias. Zero maps to zero (CMA-ES starts from the same controller).
    """

    mean: np.ndarray  # (D,) float64
    std: np.ndarray  # (D,) float64

    def params(self, search: np.ndarray) -> np.ndarray:
        """(P, n_params) controller params for (P, n_params) search vectors (or one)."""
        theta = np.atleast_2d(search)
        d = len(self.mean)
        outputs = theta.shape[1] // (d + 1)  # n_params = (d + 1) * outputs
        W = theta[:, : d * outputs].reshape(-1, outputs, d) / self.std
        b = theta[:, d * outputs :] - W @ self.mean
        return np.concatenate([W.reshape(len(theta), -1), b], 1)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"feature_mean": torch.from_numpy(self.mean),
                "feature_std": torch.from_numpy(self.std)}

    @classmethod
    def measure(cls, model: WorldModel, start: State, temperature: float, seed: int,
                steps: int = 200) -> Whitening:
        """Mean and std of M's features over ``steps`` dream steps from every context in
        ``start``, driven by the game's data-collection random policy (a broad sample of
        what the controller will see; no real data). The std gets 1e-3 added, so a unit
        that barely moves in these dreams cannot blow up its weight."""
        rng = np.random.default_rng(seed)
        n = len(next(iter(start.values())))
        state = seed_dreams(start, seed * 1_000_003 + torch.arange(n))
        feats = []
        with torch.no_grad():
            for _ in range(steps):
                feats.append(model.features(state).double().cpu())
                actions = torch.as_tensor(model.spec.sample_actions(rng, n))
                state, _ = model.imagine(state, actions.to(model.device), temperature)
        f = torch.cat(feats)
        return cls(f.mean(0).numpy(), f.std(0).numpy() + 1e-3)


def _ensemble_returns(models: Sequence[WorldModel], controller: LinearController,
                      member: torch.Tensor | None, starts: Sequence[State], context: torch.Tensor,
                      temperature: float, max_steps: int, seeds: torch.Tensor,
                      stop: Callable[[int], StopRule] | None = None,
                      noise: Callable[[int, int], HeldRandomActions] | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns and lengths of dreams i = 0..B-1, dream i started from context ``context[i]``
    (of ``starts``), run by controller ``member[i]`` (None: controller 0 for all) in model
    ``i % len(models)`` (one batched rollout per model); ``noise(n, k)``: exploration noise
    for the n dreams of model k."""
    B = len(seeds)
    ret, lengths = torch.zeros(B), torch.zeros(B, dtype=torch.long)
    for k, model in enumerate(models):
        idx = torch.arange(k, B, len(models))
        m = None if member is None else member[idx].to(model.device)
        state = seed_dreams(select_rows(starts[k], context[idx].to(model.device)), seeds[idx])
        push = noise(len(idx), k) if noise is not None else None
        held = HeldDecisions(controller.hold, len(idx))

        def policy(x: torch.Tensor, rows: torch.Tensor, m=m, push=push,
                   held=held) -> torch.Tensor:
            actions = held(controller.act(x, None if m is None else m[rows]), rows)
            return actions if push is None else push(actions, rows)

        ret[idx], lengths[idx] = state_returns(model, policy, state, temperature, max_steps,
                                               stop)
    return ret, lengths


def _pushes(game: GameSpec, cfg: ControllerTrainConfig, gen: int, n: int, k: int
            ) -> HeldRandomActions:
    """Generation ``gen``'s exploration noise for the n dreams of ensemble member k, drawn
    from its own generator, so a resumed run pushes as the uninterrupted one would."""
    return HeldRandomActions(game, n, cfg.explore, cfg.max_hold,
                             np.random.default_rng((cfg.seed, gen, k)))


def dream_score(model: WorldModel | Sequence[WorldModel], controller: LinearController, n: int,
                temperature: float, max_steps: int, seed: int,
                contexts: tuple[torch.Tensor, torch.Tensor],
                stop: Callable[[int], StopRule] | None = None,
                starts: Sequence[State] | None = None) -> tuple[float, float]:
    """Mean and std of a controller's return over ``n`` dreams started from ``contexts``
    (dealt across the models of an ensemble), ended by ``stop`` where given. ``starts``:
    the models' :func:`starting_states` of ``contexts``, when already computed."""
    models = list(model) if isinstance(model, Sequence) else [model]
    frames, actions = contexts
    starts = starting_states(models, frames, actions) if starts is None else starts
    context = torch.from_numpy(np.random.default_rng(seed).integers(len(frames), size=n))
    ctrl = controller.to(models[0].device)
    ret, _ = _ensemble_returns(models, ctrl, None, starts, context, temperature, max_steps,
                               seed * 1_000_003 + torch.arange(n), stop)
    return float(ret.mean()), float(ret.std())


def load_dreams(model_dir: str | Path, ensemble: Sequence[str | Path],
                device: torch.device) -> list[WorldModel]:
    """The model of ``model_dir`` and those of ``ensemble``, checked to be interchangeable
    for one controller (same game, same features)."""
    models = [load_model(model_dir, device)] + [load_model(d, device) for d in ensemble]
    for d, m in zip(ensemble, models[1:], strict=True):
        if (m.game, m.feature_dim) != (models[0].game, models[0].feature_dim):
            raise ValueError(
                f"Ensemble member {d} is a {m.game} model with {m.feature_dim} features, but "
                f"{model_dir} is {models[0].game} with {models[0].feature_dim}: an ensemble "
                "needs models of one game sharing one V (e.g. the Ms of one recipe's rounds).")
    return models


def _off_track_stop(model_dir: str | Path, cfg: ControllerTrainConfig, game: GameSpec,
                    device: torch.device) -> Callable[[int], StopRule] | None:
    """The off-track stop the config asks for, as a factory of per-rollout rules."""
    if cfg.off_track_patience <= 0:
        return None
    probe = OffTrackProbe.load(model_dir, device)
    return partial(OffTrackStop, probe, cfg.off_track_patience, cfg.off_track_grace,
                   game.off_track_reward, cfg.max_steps)


def with_rollout_cap(cfg: ControllerTrainConfig, game: GameSpec) -> ControllerTrainConfig:
    """``cfg`` with ``max_steps`` set: its own, else the game's episode limit."""
    if cfg.max_steps is not None:
        return cfg
    if game.max_episode_steps is None:
        raise ValueError(f"{game.name} episodes have no step limit: set the controller's "
                         "max_steps (a recipe's [controller] max_steps, or --max-steps).")
    return replace(cfg, max_steps=game.max_episode_steps)


def train_in_dream(model_dir: str | Path, cfg: ControllerTrainConfig, run_dir: str | Path,
                   device: torch.device, export_dir: str | Path | None = None,
                   progress: bool = True, time_limit: float | None = None,
                   ensemble: Sequence[str | Path] = (), ray: bool | None = None) -> dict:
    """Run CMA-ES in the dream of ``model_dir``; resumable from ``run_dir/es.*``.

    ``ensemble``: more model folders (same game and V, e.g. earlier rounds' Ms) whose dreams
    share each candidate's rollouts; rollout r runs in dream ``r % (1 + len(ensemble))``.
    Contexts come from ``model_dir``.

    ``ray``: each generation's rollouts are dealt to the Ray cluster's dream actors (None:
    when :func:`dream_gym.cluster.init` was called), the same returns and so the same
    search (without ``explore``, whose noise is drawn per batch).

    Returns a summary (dream score of the final mean controller, generations, seconds) and,
    with ``export_dir``, saves it there as ``controller.safetensors`` + ``controller.json``.
    """
    seed_everything(cfg.seed)
    run_dir = Path(run_dir)
    models = load_dreams(model_dir, ensemble, device)
    cfg = with_rollout_cap(cfg, models[0].spec)
    if time_limit is None and cfg.time_limit_minutes is not None:
        time_limit = cfg.time_limit_minutes * 60
    if cfg.rollouts % len(models):
        raise ValueError(f"rollouts ({cfg.rollouts}) must be a multiple of the number of "
                         f"dreams in the ensemble ({len(models)}), so each weighs the same.")
    pool = None
    if cluster.use(ray):
        if cfg.explore > 0:
            raise ValueError("CMA-ES on a Ray cluster draws no exploration noise (explore = "
                             f"{cfg.explore}): run it in one process, or set explore = 0.")
        pool = cluster.DreamPool(model_dir, ensemble, cfg, models[0].game)
    model = models[0]
    ctx = load_contexts(model_dir)
    frames, actions = ctx["frames"], ctx["actions"]
    n_params = LinearController.num_params(model.feature_dim,
                                          controller_mapping(model.game).outputs)
    stop = _off_track_stop(model_dir, cfg, model.spec, device)
    with torch.no_grad():
        starts = starting_states(models, frames, actions)

    start_gen, x0, history = 0, np.zeros(n_params), []
    sigma0 = cfg.spread0 / np.sqrt(model.feature_dim + 1) if cfg.whiten else cfg.sigma0
    white = None
    if (run_dir / "es.json").exists():  # warm restart from the last generation's mean/sigma
        st = load_json(run_dir / "es.json")
        start_gen, sigma0, history = st["generation"], st["sigma"], st["history"]
        saved = load_tensors(run_dir / "es.safetensors")
        x0 = saved["mean"].double().numpy()
        if cfg.whiten != ("feature_mean" in saved):
            raise ValueError(
                f"{run_dir} holds a CMA-ES run {'with' if 'feature_mean' in saved else 'without'}"
                f" whitened features, but this config has whiten = {cfg.whiten}: resume it "
                "with the setting it started with, or start in an empty folder.")
        if cfg.whiten:  # the search coordinates the run started in
            white = Whitening(saved["feature_mean"].numpy(), saved["feature_std"].numpy())
    elif cfg.whiten:
        white = Whitening.measure(model, starts[0], cfg.temperature, cfg.seed)
    to_params = white.params if white is not None else np.atleast_2d
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
        params = to_params(np.stack(solutions))
        member = torch.arange(cfg.population, device=device).repeat_interleave(cfg.rollouts)
        context = torch.from_numpy(rng.integers(len(frames), size=len(member)))
        seeds = (cfg.seed * 100_003 + gen) * len(member) + torch.arange(len(member))
        if pool is not None:
            ret, lengths = pool.returns(params, cfg.rollouts, context, seeds)
        else:
            ctrl = LinearController(model.game, model.feature_dim, params, cfg.hold).to(device)
            noise = partial(_pushes, model.spec, cfg, gen) if cfg.explore > 0 else None
            ret, lengths = _ensemble_returns(models, ctrl, member, starts, context,
                                             cfg.temperature, cfg.max_steps, seeds, stop, noise)
        fitness = ret.view(cfg.population, cfg.rollouts).mean(1).numpy()
        if cfg.ensemble_fitness == "min":  # rollout r of a candidate ran in dream r % len(models)
            fitness = ret.view(cfg.population, -1, len(models)).mean(1).amin(1).numpy()
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
        save_tensors(run_dir / "es.safetensors", {"mean": torch.from_numpy(es.mean.copy()),
                                                  **(white.tensors() if white else {})})
        save_json(run_dir / "es.json", {"generation": gen + 1, "sigma": float(es.sigma),
                                        "history": history})
        if time_limit is not None and time.time() - t0 > time_limit:
            break
    if pool is not None:
        pool.close()
    final = LinearController(model.game, model.feature_dim, to_params(es.mean), cfg.hold)
    score, std = dream_score(models, final, cfg.eval_rollouts, cfg.temperature, cfg.max_steps,
                             cfg.seed + 12345, (frames, actions), stop, starts)
    writer.add_scalar("charts/final_dream_score", score, len(history))
    writer.close()
    summary = {"dream_score": score, "dream_std": std, "generations": len(history),
               "train_seconds": round(time.time() - t0, 1), "config": asdict(cfg)}
    if ensemble:
        summary["ensemble"] = [str(model_dir), *map(str, ensemble)]
        summary["dream_scores"] = [  # the final controller in each dream alone
            dream_score(m, final, cfg.eval_rollouts // len(models), cfg.temperature,
                        cfg.max_steps, cfg.seed + 12345, (frames, actions), stop, [s])[0]
            for m, s in zip(models, starts, strict=True)]
    if export_dir is not None:
        final.save(Path(export_dir) / "controller", {"temperature": cfg.temperature, **summary})
    return summary
