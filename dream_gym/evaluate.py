"""Score policies in the real game: many episodes with distinct seeds, lockstep-batched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from dream_gym.agents.controller import LinearController
from dream_gym.contract import WorldModel, merge_rows
from dream_gym.games import get_game

__all__ = ["evaluate_controller", "evaluate_random", "evaluate_policy", "summarize",
           "welch_t"]


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


def evaluate_random(game: str, episodes: int, seed: int = 0, progress: bool = True) -> dict:
    """The uniform random policy (a fresh action every step), episode i seeded ``seed + i``."""
    env = get_game(game).make()
    return evaluate_policy(env, lambda _: env.action_space.sample(), episodes, seed, progress,
                           "real game, random policy")


@torch.no_grad()
def evaluate_controller(model: WorldModel,
                        controller: LinearController | Callable[[torch.Tensor], torch.Tensor],
                        episodes: int,
                        seed: int = 0, num_envs: int = 8, progress: bool = True,
                        max_steps: int | None = None,
                        on_step: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
                        explore: float = 0.0, max_hold: int = 12,
                        record: list[dict[str, np.ndarray]] | None = None) -> dict:
    """Run ``controller`` on the model's latent features of the real game.

    ``controller`` is a :class:`LinearController` or any function from a batch of features
    (B, feature_dim) to actions (B, *action_shape), e.g. a stable-baselines3 policy's ``predict``.

    ``num_envs`` real games run in lockstep so the model encodes and steps them in one batch;
    episode i always uses seed ``seed + i`` whatever env runs it.
    ``on_step(slot, real_screen, model_frame)`` sees each real screen beside what the model
    makes of it (its 64x64 reconstruction), e.g. to record video.

    Data collection for iterative training (seed 003) uses the other two knobs: with
    ``explore`` > 0 each step starts, with that probability, a random action held for
    1..``max_hold`` steps in place of the controller's; with ``record`` a list, every
    episode is appended to it (in episode order) in the shard format of :mod:`dream_gym.data`.
    """
    spec = get_game(model.game)
    n = min(num_envs, episodes)
    envs = [spec.make() for _ in range(n)]
    queue = list(range(episodes))
    episode = [queue.pop(0) for _ in range(n)]
    returns: list[float | None] = [None] * episodes
    ret, steps = np.zeros(n), np.zeros(n, dtype=np.int64)
    active = np.ones(n, bool)
    obs = [env.reset(seed=seed + ep)[0] for env, ep in zip(envs, episode, strict=True)]
    no_actions = spec.no_actions(n)

    def frames() -> torch.Tensor:
        return torch.from_numpy(np.stack([spec.frame(o) for o in obs]))

    state = model.initial_state(frames()[:, None], no_actions)
    act = (controller.to(model.device).act if isinstance(controller, LinearController)
           else controller)
    rng = np.random.default_rng(seed)
    held = np.zeros(n, np.int64)  # steps left of a random exploration action, per slot
    held_action = np.zeros((n, *spec.action_shape), spec.action_dtype)
    mask_shape = (n,) + (1,) * len(spec.action_shape)
    recorder = _Recorder(n, episodes, spec.action_dtype) if record is not None else None
    bar = tqdm(total=episodes, desc="real game, controller", disable=not progress)
    while active.any():
        actions = torch.as_tensor(act(model.features(state))).cpu()
        actions = actions.long() if spec.discrete else actions.float()
        if explore > 0:
            start = (held == 0) & (rng.random(n) < explore)
            held_action[start] = spec.sample_actions(rng, int(start.sum()))
            held[start] = rng.integers(1, max_hold + 1, size=int(start.sum()))
            actions = torch.where(torch.from_numpy(held > 0).view(mask_shape),
                                  torch.from_numpy(held_action), actions)
            held = np.maximum(held - 1, 0)
        fresh = torch.zeros(n, dtype=torch.bool)
        for i, env in enumerate(envs):
            if not active[i]:
                continue
            if recorder is not None:
                recorder.before(i, spec.frame(obs[i]), spec.gamevars(obs[i]))
            obs[i], r, term, trunc, _ = env.step(spec.env_action(actions[i].numpy()))
            ret[i] += float(r)
            steps[i] += 1
            ended = term or trunc or (max_steps is not None and steps[i] >= max_steps)
            if recorder is not None:
                recorder.after(i, actions[i].numpy(), float(r), bool(term), episode[i], ended)
            if ended:
                returns[episode[i]] = ret[i]
                bar.update()
                ret[i], steps[i] = 0.0, 0
                if queue:
                    episode[i] = queue.pop(0)
                    obs[i] = env.reset(seed=seed + episode[i])[0]
                    fresh[i] = True
                else:
                    active[i] = False
        f = frames()
        state = model.observe(state, actions, f)
        if fresh.any():
            state = merge_rows(state, model.initial_state(f[:, None], no_actions),
                               fresh.to(model.device))
        if on_step is not None:
            seen = model.render(state).cpu().numpy()
            for i in np.flatnonzero(active):
                on_step(int(i), spec.screen(obs[i]), seen[i])
    bar.close()
    for env in envs:
        env.close()
    if recorder is not None:
        record.extend(recorder.episodes)
    return summarize(returns)


class _Recorder:
    """Per-slot buffers that become whole episodes (the shard format) when they end."""

    def __init__(self, slots: int, episodes: int, action_dtype: type) -> None:
        self.action_dtype = action_dtype
        self.buf: list[dict[str, list]] = [self._empty() for _ in range(slots)]
        self._done: list[dict[str, np.ndarray] | None] = [None] * episodes

    @staticmethod
    def _empty() -> dict[str, list]:
        return {k: [] for k in ("frames", "gamevars", "actions", "rewards", "dones")}

    def before(self, slot: int, frame: np.ndarray, gamevars: np.ndarray) -> None:
        self.buf[slot]["frames"].append(frame)
        self.buf[slot]["gamevars"].append(gamevars)

    def after(self, slot: int, action: np.ndarray, reward: float, terminated: bool, episode: int,
              ended: bool) -> None:
        b = self.buf[slot]
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
