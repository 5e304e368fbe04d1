"""``dream-gym build ENV_ID``: any pixel Gymnasium env becomes a registered dream.

One call derives the game from the env's spaces (:mod:`dream_gym.games.derive`, which
refuses what cannot be dreamed before anything runs), writes a World Models recipe sized to
a time budget on this machine (each stage's step count from a few timed steps), runs it with
the same stages as the zoo's recipes (collect, V, M, CMA-ES in the dream, the real score
beside random; resumable: run the same call again), and writes a model folder with its card
and a side-by-side video. A folder under ``$DREAM_GYM_MODELS`` is a registered
``Dream-<Name>-v0`` in every new interpreter; any other one is with
:func:`dream_gym.register_dream`.

    from dream_gym.build import BuildConfig, build
    build("ALE/Breakout-v5", config=BuildConfig(minutes=60))                # an id
    build(lambda: MyWrapper(gym.make("MyEnv-v0")), "Mine")                  # a constructor
"""

from __future__ import annotations

import shutil
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from dream_gym.checkpoint import load_json, save_json
from dream_gym.games import register_game
from dream_gym.games.derive import game_from_env
from dream_gym.games.registry import PolicyFactory
from dream_gym.games.spec import GameSpec

__all__ = ["BuildConfig", "build", "check_family", "UnsupportedFamily", "plan_recipe",
           "pick_temperature", "SHARES"]

SHARES = {"collect": 0.15, "vae": 0.2, "mdnrnn": 0.25, "controller": 0.25}
"""Share of the time budget per training stage; the rest (about 15%) scores the controller
and the random policy in the real game and writes the video."""


@dataclass
class BuildConfig:
    """What ``dream-gym build`` chooses for a game it knows nothing about."""

    minutes: float = 60.0
    """The whole budget, all stages together (split by :data:`SHARES`)."""
    family: str = "world_models"
    max_steps: int = 1000
    """Cap on an episode, collected or dreamed (the game's own limit when shorter)."""
    z_dim: int = 32
    hidden: int = 256
    """M's LSTM size (World Models' TakeCover: 512; a smaller M trains more steps per minute)."""
    max_frames: int = 200_000
    """Cap on the collected frames (64x64x3 bytes each in memory)."""
    episodes: int = 100
    """Real episodes scoring the controller and the random policy."""
    eval_seed: int = 10_000
    """First seed of the real scoring episodes (written here, before any controller)."""
    seed: int = 0


class UnsupportedFamily(ValueError):
    """``build`` cannot train this model family yet."""


def check_family(family: str) -> None:
    """Raises :class:`UnsupportedFamily` unless ``build`` can train ``family``."""
    if family != "world_models":
        raise UnsupportedFamily(
            f"dream-gym build trains the World Models family only for now, not {family!r}: "
            "GameGAN's recipe does not yet give a TakeCover dream whose controller transfers "
            "(models/takecover/CARD.md).")


def _timed(step: Callable[[], Any], repeats: int = 3) -> float:
    """Seconds per call of ``step`` after one warm-up call."""
    step()
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - t0) / repeats


def _pilot_episode(spec: GameSpec, max_steps: int, seed: int) -> tuple[float, int]:
    """(seconds, length) of one random episode, frames resized as collection does."""
    env = spec.make()
    rng = np.random.default_rng(seed)
    t0, n, done = time.perf_counter(), 0, False
    try:
        obs, _ = env.reset(seed=seed)
        while not done and n < max_steps:
            spec.frame(obs)
            obs, _, term, trunc, _ = env.step(spec.env_action(spec.sample_actions(rng, 1)[0]))
            n, done = n + 1, term or trunc
    finally:
        env.close()
    return time.perf_counter() - t0, n


def _vae_step_seconds(z_dim: int, batch: int = 100) -> float:
    from dream_gym.world_models.vae import ConvVAE, VAEConfig

    vae = ConvVAE(VAEConfig(z_dim=z_dim))
    opt = torch.optim.Adam(vae.parameters())
    x = torch.rand(batch, 3, 64, 64)

    def step() -> None:
        out = vae(x)
        loss = sum(t.float().mean() for t in (out if isinstance(out, tuple) else (out,)))
        opt.zero_grad()
        loss.backward()
        opt.step()

    return _timed(step)


def _mdnrnn_step_seconds(z_dim: int, action_dim: int, hidden: int, batch: int = 32,
                         seq_len: int = 128) -> float:
    lstm = torch.nn.LSTM(z_dim + action_dim, hidden, batch_first=True)
    head = torch.nn.Linear(hidden, 3 * 5 * z_dim + 5 + 2)
    opt = torch.optim.Adam([*lstm.parameters(), *head.parameters()])
    x = torch.rand(batch, seq_len, z_dim + action_dim)

    def step() -> None:
        loss = head(lstm(x)[0]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return _timed(step)


def plan_recipe(spec: GameSpec, cfg: BuildConfig, name: str, env_id: str | None,
                policy: str = "random") -> dict[str, Any]:
    """A World Models recipe for ``spec`` whose stages fit ``cfg.minutes`` on this machine:
    episodes from a timed random episode, V's and M's steps from a few timed updates, and
    CMA-ES under a time limit."""
    budget = cfg.minutes * 60
    cap = min(cfg.max_steps, spec.max_episode_steps or cfg.max_steps)
    ep_seconds, ep_len = _pilot_episode(spec, cap, cfg.seed)
    episodes = int(np.clip(SHARES["collect"] * budget / max(ep_seconds, 1e-3), 4,
                           max(4, cfg.max_frames // max(ep_len, 1))))
    frames = episodes * ep_len
    encode_seconds = frames / 2000  # V encodes every frame once after training
    vae_steps = int(max(20, (SHARES["vae"] * budget - encode_seconds)
                        / _vae_step_seconds(cfg.z_dim)))
    seq_len = int(min(128, max(8, ep_len)))
    rnn_steps = int(max(20, SHARES["mdnrnn"] * budget / _mdnrnn_step_seconds(
        cfg.z_dim, spec.action_dim, cfg.hidden, seq_len=seq_len)))
    recipe: dict[str, Any] = {
        "name": name, "game": spec.name, "family": cfg.family, "seed": cfg.seed,
        "collect": {"episodes": episodes, "episodes_per_shard": max(1, min(20, episodes // 4)),
                    "workers": 0, "max_hold": 12, "max_steps": cap, "policy": policy},
        "vae": {"z_dim": cfg.z_dim, "kl_free_bits": 0.5, "steps": vae_steps,
                "batch_size": 100, "lr": 1e-3},
        "mdnrnn": {"latent": "mean", "hidden": cfg.hidden, "gaussians": 5, "done_window": 30,
                   "done_mode": "bernoulli", "steps": rnn_steps, "batch_size": 32,
                   "seq_len": seq_len, "lr": 1e-3, "gamevar_scale": "std"},
        "controller": {"features": "zh", "temperature": 1.0, "generations": 100_000,
                       "time_limit_minutes": round(SHARES["controller"] * cfg.minutes, 3),
                       "population": 32, "rollouts": 8, "whiten": True, "max_steps": cap,
                       "eval_rollouts": 256},
        "context": {"count": 64},
        "evaluate": {"episodes": cfg.episodes, "seed": cfg.eval_seed, "max_steps": cap},
    }
    if env_id is not None:
        recipe["env_id"] = env_id
    return recipe


def pick_temperature(model_dir: Path, data_dir: Path, max_steps: int, seed: int,
                     taus: tuple[float, ...] = (0.75, 1.0, 1.15, 1.3, 1.5),
                     dreams: int = 128) -> dict[str, Any]:
    """The dream temperature at which the collection's random policy (actions held 1..12
    steps) lives and scores in the dream as it did in the real game: the tau whose mean
    episode length and return are nearest the real data's, each in units of its real spread.
    Too cold a dream is easier than the game, too hot one harder (World Models' knob)."""
    from dream_gym.data import episode_returns
    from dream_gym.explore import HeldRandomActions
    from dream_gym.rollout import dream_returns
    from dream_gym.zoo import load_contexts, load_model

    real_returns, real_lengths = episode_returns(data_dir)
    real_len, real_ret = real_lengths.astype(np.float64), real_returns.astype(np.float64)
    model = load_model(model_dir)
    ctx = load_contexts(model_dir)
    rng = np.random.default_rng(seed)
    which = torch.from_numpy(rng.integers(len(ctx["frames"]), size=dreams))
    table = []
    for tau in taus:
        explorer = HeldRandomActions(model.spec, dreams, 1.0, 12, np.random.default_rng(seed))
        blank = torch.zeros((dreams, *model.spec.action_shape),
                            dtype=torch.long if model.spec.discrete else torch.float32)

        def policy(features: torch.Tensor, rows: torch.Tensor,
                   explorer=explorer, blank=blank) -> torch.Tensor:
            return explorer(blank[: len(rows)], rows)

        ret, length = dream_returns(model, policy, ctx["frames"][which], ctx["actions"][which],
                                    tau, max_steps, torch.arange(dreams) + seed * 100_003)
        gap = (abs(length.double().mean().item() - real_len.mean()) / _spread(real_len)
               + abs(ret.double().mean().item() - real_ret.mean()) / _spread(real_ret))
        table.append({"temperature": tau, "dream_length": float(length.double().mean()),
                      "dream_return": float(ret.double().mean()), "gap": float(gap)})
    best = min(table, key=lambda row: row["gap"])
    return {"temperature": best["temperature"], "real_length": float(real_len.mean()),
            "real_return": float(real_ret.mean()), "table": table}


def _spread(x: np.ndarray) -> float:
    """x's std, floored at 5% of its mean's size (a game whose episodes all last as long)."""
    return float(max(x.std(), 0.05 * abs(x.mean()), 1e-6))


def _write_toml(path: Path, recipe: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(_toml(recipe))
    tmp.replace(path)


def _toml(recipe: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in recipe.items() if not isinstance(v, dict)]
    for section, body in recipe.items():
        if isinstance(body, dict):
            lines += ["", f"[{section}]"] + [f"{k} = {value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def build(env: str | Callable[[], gym.Env], name: str | None = None, *,
          config: BuildConfig | None = None, out: str | Path | None = None,
          runs_root: str | Path = "runs", policy: PolicyFactory | None = None,
          video: bool = True, command: str | None = None,
          device: str | torch.device | None = None) -> Path:
    """Build a dream of ``env`` (a Gymnasium id, or a constructor with ``name``); returns
    the model folder. ``policy`` collects the data instead of random held actions: it is
    called as ``policy(rng, game, max_hold)`` per episode and returns ``screen -> action``.
    Rerun the same call to resume an interrupted build (its run folder is
    ``runs_root/<name>``). ``command``: how the card says this build was run (default: the
    ``dream-gym build`` line of an id). ``device``: where the models train (default: cuda
    when torch sees one). After :func:`dream_gym.cluster.init` (the CLI's ``--ray``),
    collection, CMA-ES and the real scores run on the Ray cluster, with the same results."""
    from dream_gym.families import get_family
    from dream_gym.registration import register_dream, user_zoo
    from dream_gym.training.common import default_device
    from dream_gym.training.recipe import Stages

    cfg = config or BuildConfig()
    check_family(cfg.family)
    spec = game_from_env(env, name)  # raises NotDreamable before anything runs
    register_game(spec, policies={"user": policy} if policy is not None else None)
    folder_name = spec.name.lower()
    run_dir = Path(runs_root) / folder_name
    run_dir.mkdir(parents=True, exist_ok=True)
    recipe_path = run_dir / "recipe.toml"
    if recipe_path.exists():  # resuming: the plan was made (and timed) the first time
        recipe = tomllib.loads(recipe_path.read_text())
    else:
        print(f"[build] {spec.name}: timing this machine to fit {cfg.minutes:g} minutes")
        recipe = plan_recipe(spec, cfg, folder_name, env if isinstance(env, str) else None,
                             "user" if policy is not None else "random")
        _write_toml(recipe_path, recipe)
    print(f"[build] recipe {recipe_path}: {recipe['collect']['episodes']} episodes, V "
          f"{recipe['vae']['steps']} steps, M {recipe['mdnrnn']['steps']} steps, CMA-ES "
          f"{recipe['controller']['time_limit_minutes']:g} min")
    family = get_family(cfg.family)
    device = torch.device(device) if device is not None else default_device()
    # data, V and M first; then the temperature at which random play in the dream lasts and
    # scores as it did in the real data; then CMA-ES at that temperature and the real score
    model_dir = family.run_stages({k: v for k, v in recipe.items()
                                   if k not in ("controller", "evaluate")}, run_dir,
                                  Stages(run_dir), device)
    stages = Stages(run_dir)
    stages.run("temperature", lambda: pick_temperature(model_dir, run_dir / "data",
                                                       recipe["controller"]["max_steps"],
                                                       cfg.seed))
    recipe["controller"]["temperature"] = stages.done["temperature"]["temperature"]
    _write_toml(recipe_path, recipe)
    family.run_stages(recipe, run_dir, Stages(run_dir), device)
    stages = load_json(run_dir / "stages.json")
    dest = Path(out) if out is not None else (user_zoo() or Path("dreams")) / folder_name
    dream_id = f"Dream-{spec.name}-v0"
    config_json = load_json(model_dir / "config.json")
    save_json(model_dir / "config.json", config_json | {
        "dream": {"id": dream_id, "max_episode_steps": spec.max_episode_steps,
                  "reward_threshold": spec.reward_threshold}})
    shutil.copyfile(recipe_path, model_dir / "recipe.toml")
    if video and not (model_dir / "video.mp4").exists():
        _video(model_dir, cfg.eval_seed)
    _write_card(model_dir, spec, recipe, stages, env, cfg, command)
    _install(model_dir, dest)
    register_dream(dest)
    print(f"[build] {dream_id}: {dest} (gymnasium.make('dream_gym:{dream_id}') in a new "
          f"interpreter when $DREAM_GYM_MODELS is {dest.parent})")
    return dest


def _video(model_dir: Path, seed: int) -> None:
    from dream_gym.agents.controller import LinearController
    from dream_gym.demo import side_by_side_video
    from dream_gym.zoo import load_model

    controller, _ = LinearController.load(model_dir / "controller")
    side_by_side_video(load_model(model_dir), controller, model_dir / "video.mp4", seed=seed,
                       max_frames=600, strip=model_dir / "strip.png")


def _install(model_dir: Path, dest: Path) -> None:
    """Copy the model folder to ``dest`` whole or not at all."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model_dir, tmp)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def _write_card(model_dir: Path, spec: GameSpec, recipe: dict[str, Any],
                stages: dict[str, Any], env: Any, cfg: BuildConfig,
                command: str | None) -> None:
    from dream_gym.evaluate import welch_t

    meta = load_json(model_dir / "controller.json")
    real, rand = meta["real_score"], meta["random_score"]
    t = welch_t(real, rand) if real["n"] > 1 and rand["n"] > 1 else float("nan")
    if command is None:
        command = (f"dream-gym build {env} --minutes {cfg.minutes:g}" if isinstance(env, str)
                   else f"dream_gym.build.build(<constructor>, name={spec.name!r}, "
                        f"config=BuildConfig(minutes={cfg.minutes:g}))")
    order = ["collect", "vae", "mdnrnn", "temperature", "controller", "evaluate"]
    rows = "\n".join(f"| {k} | {stages[k]['seconds']:.0f} s | "
                     f"{stages[k].get('real_frames', 0):,} |"
                     for k in [k for k in order if k in stages] + sorted(set(stages) - set(order)))

    cap = (f", each episode (controller and random alike) cut at {real['max_steps']} steps as "
           f"in the dream (the game's own limit: {spec.max_episode_steps or 'none'})"
           if real.get("max_steps") else "")
    seconds = sum(v["seconds"] for v in stages.values())
    temp = stages.get("temperature", {})
    taus = "\n".join(f"| {row['temperature']:g} | {row['dream_length']:.1f} | "
                     f"{row['dream_return']:.2f} | {row['gap']:.2f} |"
                     for row in temp.get("table", []))

    def score(label: str, d: dict) -> str:
        return f"| {label} | {d['mean']:.2f} | {d['std']:.2f} | {d['stderr']:.2f} | {d['n']} |"

    text = f"""# {spec.name.lower()}: World Models dream of `{spec.env_id}` (`Dream-{spec.name}-v0`)

## Summary

Built by `{command}` with dream-gym's generic recipe (not tuned for this game): random
held actions, ConvVAE V (z = {recipe['vae']['z_dim']}), MDN-RNN M (LSTM
{recipe['mdnrnn']['hidden']}), a linear controller evolved with CMA-ES only in the dream
(features [z, h], whitened, tau {recipe['controller']['temperature']}), then scored in the
real game on seeds {real['first_seed']}..{real['first_seed'] + real['n'] - 1}, fixed before
it existed{cap}.

| policy, real game | mean | std | stderr | episodes |
|---|---|---|---|---|
{score("controller trained only in the dream", real)}
{score("random", rand)}

Welch t (controller vs random): **{t:.2f}**; dream score of the controller
{meta.get('dream_score', float('nan')):.2f}. The stages took {seconds / 60:.1f} minutes on this
machine (the budget: {cfg.minutes:g}; the video and the timing before them come on top).
`video.mp4`: one real episode, real | the model's view | the dream fed the same actions.

Limitations: the frame is the whole screen at 64x64 (small objects may vanish); one round
of random data, no iterative rounds; scores replay bit for bit on the CPU that measured them.

## Temperature

Random play (actions held 1..12 steps, as collected) in 128 dreams at each temperature,
against the real data (episode length {temp.get('real_length', float('nan')):.1f}, return
{temp.get('real_return', float('nan')):.2f}); gap = the length's and the return's distance
from the real ones, each in units of its real spread. CMA-ES trained at the nearest.

| tau | dream length | dream return | gap |
|---|---|---|---|
{taus}

## Stages (the run folder's `stages.json`; `recipe.toml` beside this card reruns them with
`dream-gym train recipe.toml`)

| stage | wall time | real frames |
|---|---|---|
{rows}
"""
    tmp = model_dir / "CARD.md.tmp"
    tmp.write_text(text)
    tmp.replace(model_dir / "CARD.md")
