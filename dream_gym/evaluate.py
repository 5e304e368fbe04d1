"""Score policies in the real game: many episodes with distinct seeds, lockstep-batched."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from dream_gym import cluster
from dream_gym.agents.controller import HeldDecisions, LinearController
from dream_gym.contract import WorldModel, merge_rows
from dream_gym.explore import HeldRandomActions
from dream_gym.games import get_game

__all__ = ["RealGames", "evaluate_controller", "evaluate_random", "evaluate_policy", "summarize",
           "welch_t", "default_num_envs"]


def summarize(returns: list[float]) -> dict:
    r = np.asarray(returns, np.float64)
    return {"mean": float(r.mean()), "std": float(r.std()), "n": len(r),
            "stderr": float(r.std(ddof=1) / np.sqrt(len(r))) if len(r) > 1 else float("nan"),
            "returns": [float(x) for x in r]}


def welch_t(a: dict, b: dict) -> float:
    """Welch's t statistic of mean(a) - mean(b) for two :func:`summarize` results."""
    return (a["mean"] - b["mean"]) / float(np.sqrt(a["stderr"] ** 2 + b["stderr"] ** 2))


def evaluate_policy(env: gym.Env, policy: Callable[[Any], Any], episodes: int,
                    seed: int = 0, progress: bool = True, desc: str = "real game") -> dict:
    """Any policy (observation -> action) on any env, episode i seeded ``seed + i``."""
    returns = []
    for ep in tqdm(range(episodes), desc=desc, disable=not progress):
        obs, _ = env.reset(seed=seed + ep)
        env.action_space.seed(seed + ep)
        done, ret = False, 0.0
        while not done:
            obs, r, term, trunc, _ = env.step(policy(obs))
            ret += float(r)
            done = term or trunc
        returns.append(ret)
    env.close()
    return summarize(returns)


def default_num_envs() -> int:
    """Real games run side by side: one worker process per core, at least 8 (on 2 cores, 8
    lockstep games still give the model a batch worth encoding at once)."""
    return max(8, os.cpu_count() or 1)


class RealGames:
    """``episodes`` real episodes (episode i seeded ``seed + i``) played by ``num_envs`` games
    in worker processes, Gymnasium's :class:`~gymnasium.vector.AsyncVectorEnv` with autoreset
    off: when a slot's episode ends it is reset onto the next episode of the queue, so every
    episode has the same seed and the same result whatever slot or machine plays it.

    :meth:`step` takes one action per slot; slots whose queue ran dry keep playing throwaway
    episodes (``active`` False) until the last real one ends.
    """

    def __init__(self, game: str, episodes: int, seed: int = 0, num_envs: int | None = None,
                 progress: bool = True, desc: str = "real game",
                 processes: bool = True) -> None:
        self.spec = get_game(game)
        self.n = n = min(num_envs or default_num_envs(), episodes)
        self.seed, self.episodes = seed, episodes
        # processes=False: the games step in this process (a Ray actor's own games: a fork
        # inside a Ray worker hangs)
        vector = gym.vector.AsyncVectorEnv if processes else gym.vector.SyncVectorEnv
        self.envs = vector([self.spec.make] * n,
                           autoreset_mode=gym.vector.AutoresetMode.DISABLED)
        self.episode = np.arange(n)
        self._next = n
        self.active = np.ones(n, bool)
        self.returns: list[float | None] = [None] * episodes
        self.ret, self.steps = np.zeros(n), np.zeros(n, np.int64)
        self.obs, _ = self.envs.reset(seed=[seed + int(e) for e in self.episode])
        self.bar = tqdm(total=episodes, desc=desc, disable=not progress)

    def row(self, obs: Any, i: int) -> Any:
        """Slot i's observation out of a batched one (a Dict space batches per key)."""
        return {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]

    def frames(self) -> torch.Tensor:
        """The model's (n, 64, 64, 3) view of every slot's current screen."""
        return torch.from_numpy(np.stack([self.spec.frame(self.row(self.obs, i))
                                          for i in range(self.n)]))

    def step(self, actions: np.ndarray, max_steps: int | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step every slot; returns (rewards, terminated, ended, fresh): ``ended`` slots
        finished an episode this step (``max_steps`` cuts one short), ``fresh`` ones now
        start a queued episode. Afterwards ``obs`` holds each slot's next observation."""
        obs, r, term, trunc, _ = self.envs.step(actions)
        self.ret += r
        self.steps += 1
        ended = term | trunc
        if max_steps is not None:
            ended |= self.steps >= max_steps
        fresh = np.zeros(self.n, bool)
        seeds: list[int | None] = [None] * self.n
        for i in np.flatnonzero(ended):
            if self.active[i]:
                self.returns[self.episode[i]] = float(self.ret[i])
                self.bar.update()
                if self._next < self.episodes:
                    self.episode[i], self._next = self._next, self._next + 1
                    fresh[i] = True
                    seeds[i] = self.seed + int(self.episode[i])
                else:
                    self.active[i] = False
            self.ret[i], self.steps[i] = 0.0, 0
        if ended.any():
            obs, _ = self.envs.reset(seed=seeds, options={"reset_mask": ended})
        self.obs = obs
        return r, term, ended, fresh

    @property
    def done(self) -> bool:
        return not self.active.any()

    def close(self) -> dict:
        """Close the games; the :func:`summarize` of all episode returns."""
        self.bar.close()
        self.envs.close()
        return summarize(self.returns)


def evaluate_random(game: str, episodes: int, seed: int = 0, progress: bool = True,
                    num_envs: int | None = None, max_steps: int | None = None,
                    ray: bool | None = None, processes: bool = True) -> dict:
    """The uniform random policy (a fresh action every step of the real action space, drawn
    by a generator seeded with the episode's seed), episode i seeded ``seed + i``;
    ``max_steps`` cuts an episode short, as :func:`evaluate_controller`'s. ``ray``: on the
    Ray cluster (None: when :func:`dream_gym.cluster.init` was called), the same returns;
    ``processes=False``: the games step in this process."""
    if cluster.use(ray):
        return summarize(cluster.evaluate_random(game, episodes, seed, num_envs, max_steps))
    games = RealGames(game, episodes, seed, num_envs, progress, "real game, random policy",
                      processes)
    space = games.envs.single_action_space
    spaces = [copy.deepcopy(space) for _ in range(games.n)]
    for sp, ep in zip(spaces, games.episode, strict=True):
        sp.seed(seed + int(ep))
    while not games.done:
        _, _, _, fresh = games.step(np.stack([sp.sample() for sp in spaces]), max_steps)
        for i in np.flatnonzero(fresh):
            spaces[i].seed(seed + int(games.episode[i]))
    return games.close()


@torch.no_grad()
def evaluate_controller(model: WorldModel,
                        controller: LinearController | Callable[[torch.Tensor], torch.Tensor],
                        episodes: int,
                        seed: int = 0, num_envs: int | None = None, progress: bool = True,
                        max_steps: int | None = None,
                        on_step: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
                        explore: float = 0.0, max_hold: int = 12,
                        record: list[dict[str, np.ndarray]] | None = None,
                        ray: bool | None = None, processes: bool = True) -> dict:
    """Run ``controller`` on the model's latent features of the real game.

    ``controller`` is a :class:`LinearController` or any function from a batch of features
    (B, feature_dim) to actions (B, *action_shape), e.g. a stable-baselines3 policy's ``predict``.

    The games run in worker processes (:class:`RealGames`) in lockstep, so the model encodes
    and steps them in one batch; episode i always uses seed ``seed + i`` whatever slot runs it.
    ``on_step(slot, real_screen, model_frame)`` sees each real screen beside what the model
    makes of it (its 64x64 reconstruction), e.g. to record video.

    Data collection for World Models' iterative training uses three more knobs: with
    ``explore`` > 0 each step starts, with that probability, a random action held for
    1..``max_hold`` steps in place of the controller's; with ``record`` a list, every
    episode is appended to it (in episode order) in the shard format of :mod:`dream_gym.data`.

    ``ray``: the episodes are dealt to the Ray cluster's actors (None: when
    :func:`dream_gym.cluster.init` was called), each loading the model from its folder; the
    same returns. For a :class:`LinearController` without the knobs above (those run here).
    ``processes=False``: the games step in this process instead of worker processes.
    """
    on_cluster = cluster.use(ray) and isinstance(controller, LinearController) \
        and on_step is None and record is None and explore == 0
    if ray and not on_cluster:
        raise ValueError("evaluate_controller(ray=True) plays a LinearController on the "
                         "cluster without on_step, record or explore; pass ray=False for those.")
    if on_cluster:
        folder = getattr(model, "folder", None)
        if folder is None:
            raise ValueError("evaluate_controller on a Ray cluster needs a model loaded from "
                             "its folder (dream_gym.zoo.load_model): the workers load it there.")
        return summarize(cluster.evaluate_controller(folder, controller, episodes, seed,
                                                     num_envs, max_steps))
    games = RealGames(model.game, episodes, seed, num_envs, progress, "real game, controller",
                      processes)
    spec, n = games.spec, games.n
    no_actions = spec.no_actions(n)
    f = games.frames()  # the model's view of every slot's current screen
    state = model.initial_state(f[:, None], no_actions)
    act = (controller.to(model.device).act if isinstance(controller, LinearController)
           else controller)
    held = HeldDecisions(getattr(controller, "hold", 1), n)

    def episode_rng(ep: int) -> np.random.Generator:
        # exploration draws from the episode's own generator: the data do not depend on slots
        return np.random.default_rng((seed, int(ep)))

    rngs = [episode_rng(ep) for ep in games.episode]
    slots = np.arange(n)
    noise = HeldRandomActions(spec, n, explore, max_hold)
    recorder = _Recorder(n, episodes, spec.action_dtype) if record is not None else None
    while not games.done:
        actions = torch.as_tensor(act(model.features(state))).cpu()
        actions = held(actions.long() if spec.discrete else actions.float(), slots)
        if explore > 0:
            noise.start(slots, rngs)
            actions = noise.override(actions, slots)
        obs, episode, live = games.obs, games.episode.copy(), games.active.copy()
        env_actions = np.stack([spec.env_action(a) for a in actions.numpy()])
        r, term, ended, fresh = games.step(env_actions, max_steps)
        if recorder is not None:
            for i in np.flatnonzero(live):
                recorder.add(i, int(episode[i]), f[i].numpy(), spec.gamevars(games.row(obs, i)),
                             actions[i].numpy(), float(r[i]), bool(term[i]), bool(ended[i]))
        f = games.frames()
        state = model.observe(state, actions, f)
        if fresh.any():
            state = merge_rows(state, model.initial_state(f[:, None], no_actions),
                               torch.from_numpy(fresh).to(model.device))
            for i in np.flatnonzero(fresh):
                rngs[i] = episode_rng(games.episode[i])
            noise.reset(np.flatnonzero(fresh))
            held.reset(np.flatnonzero(fresh))
        if on_step is not None:
            seen = model.render(state).cpu().numpy()
            for i in np.flatnonzero(games.active):
                on_step(int(i), spec.screen(games.row(games.obs, i)), seen[i])
    result = games.close()
    if recorder is not None:
        record.extend(recorder.episodes)
    return result


class _Recorder:
    """Per-slot buffers that become whole episodes (the shard format) when they end."""

    def __init__(self, slots: int, episodes: int, action_dtype: type) -> None:
        self.action_dtype = action_dtype
        self.buf: list[dict[str, list]] = [self._empty() for _ in range(slots)]
        self._done: list[dict[str, np.ndarray] | None] = [None] * episodes

    @staticmethod
    def _empty() -> dict[str, list]:
        return {k: [] for k in ("frames", "gamevars", "actions", "rewards", "dones")}

    def add(self, slot: int, episode: int, frame: np.ndarray, gamevars: np.ndarray,
            action: np.ndarray, reward: float, terminated: bool, ended: bool) -> None:
        """One transition of ``episode`` played in ``slot``: what was seen, done and paid."""
        b = self.buf[slot]
        b["frames"].append(frame)
        b["gamevars"].append(gamevars)
        b["actions"].append(action)
        b["rewards"].append(reward)
        b["dones"].append(terminated)
        if ended:
            self._done[episode] = {
                "frames": np.stack(b["frames"]), "gamevars": np.stack(b["gamevars"]),
                "actions": np.asarray(b["actions"], self.action_dtype),
                "rewards": np.asarray(b["rewards"], np.float32),
                "dones": np.asarray(b["dones"], bool),
            }
            self.buf[slot] = self._empty()

    @property
    def episodes(self) -> list[dict[str, np.ndarray]]:
        return [e for e in self._done if e is not None]
