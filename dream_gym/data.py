"""Real-game rollouts on disk: collection in worker processes, and loading for training.

A shard holds a few whole episodes as flat arrays plus their lengths, in an ``.npz`` written
with ``allow_pickle=False`` semantics (plain arrays only). Each shard is written to a
temporary name and renamed, so a crash never leaves a half-written shard; collection resumes
by skipping the shards that already exist, and shard ``i`` always uses the same seeds.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
from dataclasses import dataclass
from pathlib import Path

import cloudpickle
import numpy as np
from tqdm import tqdm

from dream_gym import cluster
from dream_gym.explore import random_held_actions
from dream_gym.games import GameSpec, collection_policy, get_entry, get_game
from dream_gym.games.registry import register_entry

__all__ = ["CollectConfig", "Episodes", "collect", "load_episodes", "save_contexts",
           "random_held_actions", "shard_episodes", "shard_path",
           "write_shard", "concat_episodes", "episode_returns"]


@dataclass
class CollectConfig:
    """Real-game data collection (World Models: random rollouts, actions held for a while)."""

    game: str
    """The game (:func:`dream_gym.games.get_game`); a recipe's top-level ``game``."""
    episodes: int = 1000
    """Total episodes to collect."""
    episodes_per_shard: int = 20
    workers: int = 0
    """Worker processes; 0: one per CPU core."""
    max_hold: int = 12
    """Each random action is held for 1..max_hold steps."""
    long_hold_share: float = 0.0
    """Share of episodes whose random actions are held for 1..``long_max_hold`` steps instead:
    held long, the player gets far from the spawn (TakeCover: to the side walls, about 50
    steps of strafing away; with 1..12-step holds a side wall is in view in 1.6% of the
    frames of episodes' first 96 steps, with a third of episodes held 1..60 in 6.9%:
    ``benchmarks/wall_coverage.py``)."""
    long_max_hold: int = 60
    max_steps: int | None = None
    """Cap on a collected episode's length; None: the game's own limit, else 10,000 (the
    TakeCover recipe caps at 2100, which a random policy rarely gets near)."""
    policy: str = "random"
    """Collection policy by name: "random" (World Models' held random actions, any game) or
    one the game registered (CarRacing: "road", a noisy pixel road follower, since random
    data barely shows the road, and "road_modes", the follower also standing, coasting,
    locking the wheel and flooring it; :mod:`dream_gym.games.carracing`)."""
    seed: int = 0

    def __post_init__(self) -> None:
        collection_policy(self.policy, self.game)  # raises, naming the choices


@dataclass
class Episodes:
    """Flat arrays of transitions: ``frames[t]`` was seen, ``actions[t]`` taken, then
    ``rewards[t]`` and ``dones[t]`` came back. ``lengths`` splits them into episodes."""

    frames: np.ndarray  # (N, 64, 64, 3) uint8
    actions: np.ndarray  # (N,) int64 discrete, (N, A) float32 continuous
    rewards: np.ndarray  # (N,) float32
    dones: np.ndarray  # (N,) bool
    gamevars: np.ndarray  # (N, G) float32
    lengths: np.ndarray  # (E,) int64

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    def first_gamevars(self, n: int) -> Episodes:
        """The same episodes with only the first ``n`` game variables: what an M that
        predicts ``n`` of them trains on (a recipe can leave the game's out of M)."""
        return dataclasses.replace(self, gamevars=self.gamevars[:, :n])


def _rollout(game: GameSpec, env, seed: int, cfg: CollectConfig) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    long = cfg.long_hold_share > 0 and rng.random() < cfg.long_hold_share
    policy = collection_policy(cfg.policy, game.name)(
        rng, game, cfg.long_max_hold if long else cfg.max_hold)
    obs, _ = env.reset(seed=seed)
    frames, actions, rewards, dones, gamevars = [], [], [], [], []
    for _ in range(cfg.max_steps or game.max_episode_steps or 10_000):
        screen = game.screen(obs)  # the policy and the model's frame share one screen read
        action = policy(screen)
        frames.append(game.screen_frame(screen))
        gamevars.append(game.gamevars(obs))
        obs, reward, terminated, truncated, _ = env.step(game.env_action(action))
        actions.append(action)
        rewards.append(reward)
        dones.append(terminated)
        if terminated or truncated:
            break
    return {
        "frames": np.stack(frames),
        "actions": np.asarray(actions, game.action_dtype),
        "rewards": np.asarray(rewards, np.float32),
        "dones": np.asarray(dones, bool),
        "gamevars": np.stack(gamevars),
    }


def shard_episodes(cfg: CollectConfig, shard: int, env=None) -> list[dict[str, np.ndarray]]:
    """The episodes of shard ``shard``: the same seeds, so the same data, wherever it is
    played (a worker process, a Ray actor that keeps its game ``env`` between shards)."""
    game = get_game(cfg.game)
    own = env is None
    env = game.make() if own else env
    try:
        return [_rollout(game, env, cfg.seed * 1_000_003 + shard * cfg.episodes_per_shard + i,
                         cfg) for i in range(cfg.episodes_per_shard)]
    finally:
        if own:
            env.close()


def shard_path(out_dir: str | Path, shard: int) -> Path:
    return Path(out_dir) / f"shard_{shard:05d}.npz"


def _write_shard(task: tuple[CollectConfig, str, int]) -> int:
    cfg, out_dir, shard = task
    return write_shard(shard_episodes(cfg, shard), shard_path(out_dir, shard))


def _adopt(entry: bytes) -> None:
    """Collection worker's initializer: register the parent's entry of the game, sent
    cloudpickled as Gymnasium's AsyncVectorEnv sends env constructors, so that a game
    registered at run time (``register_game``, ``dream-gym build``) collects here too."""
    register_entry(cloudpickle.loads(entry))


def write_shard(episodes: list[dict[str, np.ndarray]], path: str | Path) -> int:
    """Write whole episodes (dicts of per-step arrays) as one shard, atomically; returns the
    number of transitions written."""
    arrays = {k: np.concatenate([e[k] for e in episodes]) for k in episodes[0]}
    arrays["lengths"] = np.asarray([len(e["actions"]) for e in episodes], np.int64)
    path = Path(path)
    tmp = path.with_suffix(".npz.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
    return int(arrays["lengths"].sum())


def collect(cfg: CollectConfig, out_dir: str | Path, ray: bool | None = None) -> int:
    """Collect ``cfg.episodes`` random episodes into ``out_dir``; returns total frames on disk.

    Safe to call again after a crash: finished shards are kept, the rest are (re)written.
    ``ray``: the shards are played by the Ray cluster's game actors (None: when
    :func:`dream_gym.cluster.init` was called), the same data as here.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.tmp"):
        stale.unlink()
    num_shards = -(-cfg.episodes // cfg.episodes_per_shard)
    todo = [i for i in range(num_shards) if not shard_path(out, i).exists()]
    tasks = [(cfg, str(out), i) for i in todo]
    with tqdm(total=num_shards, initial=num_shards - len(todo), desc="collect shards") as bar:
        workers = cfg.workers or os.cpu_count() or 1
        if cluster.use(ray):
            for shard, episodes in cluster.collect_shards(cfg, todo):
                write_shard(episodes, shard_path(out, shard))
                bar.update()
        elif workers <= 1:
            for t in tasks:
                _write_shard(t)
                bar.update()
        else:
            entry = cloudpickle.dumps(get_entry(cfg.game))
            with mp.get_context("spawn").Pool(workers, _adopt, (entry,)) as pool:
                for _ in pool.imap_unordered(_write_shard, tasks):
                    bar.update()
    return int(sum(np.load(p)["lengths"].sum() for p in sorted(out.glob("shard_*.npz"))))


def load_episodes(data_dir: str | Path, max_shards: int | None = None) -> Episodes:
    """Load every shard in ``data_dir`` (in shard order) into one :class:`Episodes`."""
    paths = sorted(Path(data_dir).glob("shard_*.npz"))[:max_shards]
    if not paths:
        raise FileNotFoundError(
            f"No shards in {data_dir}. Collect data first (`dream-gym train RECIPE` does)."
        )
    parts = [dict(np.load(p, allow_pickle=False)) for p in paths]
    return Episodes(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


def episode_returns(data_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(returns, lengths) of every episode in ``data_dir``, read without the frames."""
    rewards, lengths = [], []
    for path in sorted(Path(data_dir).glob("shard_*.npz")):
        with np.load(path, allow_pickle=False) as shard:  # an npz reads one array at a time
            rewards.append(shard["rewards"])
            lengths.append(shard["lengths"])
    lengths_all = np.concatenate(lengths)
    starts = np.cumsum(lengths_all) - lengths_all
    return np.add.reduceat(np.concatenate(rewards), starts), lengths_all


def concat_episodes(parts: list[Episodes]) -> Episodes:
    """One :class:`Episodes` holding all of ``parts`` in order (e.g. the random data set and
    the rounds of iterative training)."""
    return Episodes(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                       for f in dataclasses.fields(Episodes)})


def save_contexts(episodes: Episodes, model_dir: Path, count: int, seed: int,
                  length: int = 1) -> None:
    """Ship the first ``length`` frames (and the actions between them) of ``count`` real
    episodes at least that long: the dream's starting contexts."""
    import torch  # here: collection workers import this module and need no torch

    from dream_gym.checkpoint import save_tensors

    rng = np.random.default_rng(seed)
    long_enough = np.flatnonzero(episodes.lengths >= length)
    if not len(long_enough):
        raise ValueError(f"No episode has {length} frames for a context: lower [context] "
                         "length or collect longer episodes.")
    eps = rng.choice(long_enough, size=min(count, len(long_enough)), replace=False)
    t = episodes.starts[eps][:, None] + np.arange(length)
    save_tensors(model_dir / "contexts.safetensors", {
        "frames": torch.from_numpy(np.ascontiguousarray(episodes.frames[t])),
        "actions": torch.from_numpy(np.ascontiguousarray(episodes.actions[t[:, :-1]])),
        "gamevars": torch.from_numpy(np.ascontiguousarray(episodes.gamevars[t[:, -1]])),
    })
