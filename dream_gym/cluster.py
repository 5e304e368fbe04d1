"""The stages that fan out, on a Ray cluster: real-game collection and scoring on actors that
own their games, and CMA-ES whose population is dealt to actors that each step a batched
dream for their share.

Ray is an optional extra (``pip install "dream-gym[ray]"``). Nothing changes until
:func:`init` is called (the CLI's ``--ray [ADDRESS]``); after it, :func:`dream_gym.data.collect`,
:func:`dream_gym.evaluate.evaluate_random`, :func:`~dream_gym.evaluate.evaluate_controller`
and :func:`dream_gym.training.controller.train_in_dream` run on the cluster, with the same
results as in one process: a shard, an episode and a dream draw from their own seeds, and
the work is split at those boundaries (``tests/test_cluster.py`` checks it bit for bit).

    import dream_gym.cluster
    dream_gym.cluster.init()            # a local cluster, one worker per core
    dream_gym.cluster.init("auto")      # or the cluster this node belongs to (``ray start``)

Model folders and data paths are read by the workers: on several machines they must be on
storage every node sees (a zoo name works everywhere dream-gym is installed). Shards come back
to the driver, which writes them. Each call carries the driver's registry entry of its game
(:func:`dream_gym.games.register_game`), which the worker registers before it plays: a game
registered at run time (``dream-gym build`` of a user's constructor, a script's own
``register_game``) is known on the cluster too. Ray pickles it with cloudpickle: a constructor
defined in a script is sent by value, one in a module must be importable on every node.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["init", "shutdown", "active", "use", "workers", "collect_shards", "evaluate_random",
           "evaluate_controller", "DreamPool"]

_STATE: dict[str, Any] = {"workers": 0, "actors": {}}


def _ray():
    try:
        import ray
    except ImportError as e:
        raise ImportError('Ray is an optional extra: pip install "dream-gym[ray]".') from e
    return ray


def init(address: str | None = None, num_workers: int | None = None) -> int:
    """Connect to the Ray cluster at ``address`` ("auto": the one this node belongs to), or
    start a local one with ``num_workers`` CPUs (default: this machine's cores). Returns the
    number of workers the stages will use (the cluster's CPUs, or ``num_workers``)."""
    ray = _ray()
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_workers or os.cpu_count() or 1, include_dashboard=False,
                     log_to_driver=False)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    _STATE["workers"] = max(1, min(num_workers or cpus, cpus))
    _STATE["actors"] = {}
    return _STATE["workers"]


def shutdown() -> None:
    """Leave the cluster (a local one stops); the stages run in this process again."""
    if active():
        _ray().shutdown()
    _STATE.update(workers=0, actors={})


def active() -> bool:
    """Whether :func:`init` was called: the stages then run on the cluster."""
    return _STATE["workers"] > 0 and _ray().is_initialized()


def use(ray: bool | None) -> bool:
    """Whether a stage runs on the cluster: ``ray`` as given, or (None) whether :func:`init`
    was called."""
    return active() if ray is None else ray


def workers() -> int:
    if not active():
        raise RuntimeError("No Ray cluster: call dream_gym.cluster.init(address) first "
                           "(CLI: --ray [ADDRESS]).")
    return _STATE["workers"]


def _entry(game: str) -> Any:
    """The driver's registry entry of ``game`` in the object store, sent with the calls (see
    :func:`_know`; Ray hands the workers the entry itself; TakeCover's is about 1 MB)."""
    from dream_gym.games.registry import get_entry

    return _ray().put(get_entry(game))


def _know(entry: Any) -> None:
    """In a worker: register the driver's entry of a game (the driver's registry is the
    truth; a worker's own import knows only the games dream-gym ships)."""
    from dream_gym.games.registry import register_entry

    register_entry(entry)


def _chunks(n: int, parts: int) -> list[tuple[int, int]]:
    """[start, stop) of ``parts`` contiguous, near-equal pieces of range(n) (empty ones
    dropped)."""
    edges = np.linspace(0, n, min(parts, n) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


class _GameWorker:
    """A Ray actor that owns its real games: collection shards and scoring episodes."""

    def __init__(self) -> None:
        self.envs: dict[str, Any] = {}
        self.models: dict[str, Any] = {}

    def shard(self, cfg: Any, shard: int, entry: Any
              ) -> tuple[int, list[dict[str, np.ndarray]]]:
        from dream_gym.data import shard_episodes
        from dream_gym.games import get_game

        _know(entry)
        if cfg.game not in self.envs:
            self.envs[cfg.game] = get_game(cfg.game).make()
        return shard, shard_episodes(cfg, shard, self.envs[cfg.game])

    def random(self, entry: Any, max_steps: int | None, episodes: int, seed: int,
               num_envs: int) -> list[float]:
        from dream_gym.evaluate import evaluate_random

        _know(entry)
        return evaluate_random(entry.spec.name, episodes, seed, progress=False, num_envs=num_envs,
                               max_steps=max_steps, ray=False, processes=False)["returns"]

    def controller(self, model: str, entry: Any, params: np.ndarray, hold: int,
                   max_steps: int | None, episodes: int, seed: int, num_envs: int
                   ) -> list[float]:
        from dream_gym.agents.controller import LinearController
        from dream_gym.evaluate import evaluate_controller
        from dream_gym.zoo import load_model

        _know(entry)
        if model not in self.models:
            self.models[model] = load_model(model)
        loaded = self.models[model]
        ctrl = LinearController(loaded.game, loaded.feature_dim, params, hold)
        return evaluate_controller(loaded, ctrl, episodes, seed, num_envs, progress=False,
                                   max_steps=max_steps, ray=False, processes=False)["returns"]


def _game_workers() -> list[Any]:
    n = workers()
    actors = _STATE["actors"]
    if "games" not in actors:
        remote = _ray().remote(num_cpus=1)(_GameWorker)
        actors["games"] = [remote.remote() for _ in range(n)]
    return actors["games"]


def collect_shards(cfg: Any, shards: Sequence[int]):
    """Yields (shard, episodes) as the cluster's game actors finish them (any order)."""
    ray = _ray()
    actors = _game_workers()
    entry = _entry(cfg.game)
    pending = [actors[i % len(actors)].shard.remote(cfg, s, entry)
               for i, s in enumerate(shards)]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])


def _scatter(method: str, episodes: int, seed: int, num_envs: int | None,
             *args: Any) -> list[float]:
    """Episodes seed .. seed + episodes - 1 in contiguous chunks, one per actor (each playing
    its share of ``num_envs`` games side by side); their returns in episode order."""
    ray = _ray()
    actors = _game_workers()
    chunks = _chunks(episodes, len(actors))
    per = max(1, (num_envs or 8) // len(chunks))
    calls = [getattr(actors[i], method).remote(*args, b - a, seed + a, per)
             for i, (a, b) in enumerate(chunks)]
    return [r for part in ray.get(calls) for r in part]


def evaluate_random(game: str, episodes: int, seed: int, num_envs: int | None,
                    max_steps: int | None) -> list[float]:
    """:func:`dream_gym.evaluate.evaluate_random`'s returns, played on the cluster."""
    return _scatter("random", episodes, seed, num_envs, _entry(game), max_steps)


def evaluate_controller(model: str | Path, controller: Any, episodes: int, seed: int,
                        num_envs: int | None, max_steps: int | None) -> list[float]:
    """:func:`dream_gym.evaluate.evaluate_controller`'s returns for a
    :class:`~dream_gym.agents.controller.LinearController` on the model of folder (or zoo
    name) ``model``, played on the cluster."""
    params = controller.flat().cpu().numpy()
    return _scatter("controller", episodes, seed, num_envs, str(model),
                    _entry(controller.game.name), params, controller.hold, max_steps)


class _DreamWorker:
    """A Ray actor holding the dreams of one CMA-ES run: it rolls out its share of each
    generation's candidates in one batch."""

    def __init__(self, model_dir: str, ensemble: list[str], cfg: Any, entry: Any) -> None:
        from dream_gym.training.controller import _off_track_stop, load_dreams, starting_states
        from dream_gym.zoo import load_contexts

        _know(entry)
        torch.set_num_threads(1)
        self.cfg = cfg
        self.models = load_dreams(model_dir, ensemble, torch.device("cpu"))
        ctx = load_contexts(model_dir)
        with torch.no_grad():
            self.starts = starting_states(self.models, ctx["frames"], ctx["actions"])
        self.stop = _off_track_stop(model_dir, cfg, self.models[0].spec, torch.device("cpu"))

    def returns(self, params: np.ndarray, member: np.ndarray, context: np.ndarray,
                seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from dream_gym.agents.controller import LinearController
        from dream_gym.training.controller import _ensemble_returns

        m = self.models[0]
        ctrl = LinearController(m.game, m.feature_dim, params, self.cfg.hold)
        ret, lengths = _ensemble_returns(
            self.models, ctrl, torch.from_numpy(member), self.starts,
            torch.from_numpy(context), self.cfg.temperature, self.cfg.max_steps,
            torch.from_numpy(seeds), self.stop)
        return ret.numpy(), lengths.numpy()


class DreamPool:
    """CMA-ES fitness on the cluster: candidate c's rollouts go to the actor holding c's
    contiguous share of the population; each actor's rows keep their global order, seeds
    and ensemble member, so the returns are those of one batched rollout in one process."""

    def __init__(self, model_dir: str | Path, ensemble: Sequence[str | Path], cfg: Any,
                 game: str) -> None:
        for actor in _STATE["actors"].pop("games", []):  # their CPUs, for the dream actors
            _ray().kill(actor)
        remote = _ray().remote(num_cpus=1)(_DreamWorker)
        entry = _entry(game)
        self.actors = [remote.remote(str(model_dir), [str(e) for e in ensemble], cfg, entry)
                       for _ in range(workers())]

    def returns(self, params: np.ndarray, rollouts: int, context: torch.Tensor,
                seeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ray = _ray()
        calls = []
        for i, (a, b) in enumerate(_chunks(len(params), len(self.actors))):
            rows = slice(a * rollouts, b * rollouts)
            member = np.repeat(np.arange(b - a), rollouts)
            calls.append(self.actors[i].returns.remote(
                params[a:b], member, context[rows].numpy(), seeds[rows].numpy()))
        parts = ray.get(calls)
        return (torch.from_numpy(np.concatenate([p[0] for p in parts])),
                torch.from_numpy(np.concatenate([p[1] for p in parts])))

    def close(self) -> None:
        for a in self.actors:
            _ray().kill(a)
