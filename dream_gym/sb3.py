"""stable-baselines3 on batched dreams: an SB3 ``VecEnv`` over a Gymnasium ``VectorEnv``.

SB3 has its own vector interface (same-step autoreset, ``terminal_observation`` in infos,
seeds set before ``reset()``). :class:`SB3VecEnv` speaks it over a Gymnasium vector env in
``NEXT_STEP`` autoreset mode (Gymnasium's default, which its vector wrappers need): the
envs that end are reset at once with ``reset(options={"reset_mask": ...})``. The dreams keep
their single batched forward pass:

    venv = make_sb3_vec_env("Dream-TakeCover-v0", 64, obs_type="latent")
    PPO("MlpPolicy", venv).learn(100_000)
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)
from tqdm import tqdm

from dream_gym.envs.core import obs_row
from dream_gym.evaluate import summarize

__all__ = ["SB3VecEnv", "make_sb3_vec_env", "make_real_sb3_env", "evaluate_sb3",
           "TqdmCallback", "SaveCallback", "ModelEncoder"]


class TqdmCallback(BaseCallback):
    """A tqdm bar over ``learn(total_timesteps)`` (SB3's own bar needs ``rich``)."""

    def __init__(self, total: int, desc: str = "PPO in the dream") -> None:
        super().__init__()
        self.total, self.desc = total, desc
        self.bar: tqdm | None = None

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total, desc=self.desc, unit="step")

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


class SaveCallback(BaseCallback):
    """Calls ``save()`` each time it runs (under SB3's ``EveryNTimesteps``): a long
    training run leaves its latest policy behind."""

    def __init__(self, save: Callable[[], None]) -> None:
        super().__init__()
        self.save = save

    def _on_step(self) -> bool:
        self.save()
        return True


class SB3VecEnv(VecEnv):
    """A Gymnasium ``VectorEnv`` with ``NEXT_STEP`` autoreset (and ``reset_mask``
    support), as an SB3 ``VecEnv``."""

    def __init__(self, venv: gym.vector.VectorEnv) -> None:
        if venv.metadata.get("autoreset_mode") != AutoresetMode.NEXT_STEP:
            raise ValueError(
                "SB3VecEnv needs a vector env in NEXT_STEP autoreset mode (Gymnasium's "
                f"default); got {venv.metadata.get('autoreset_mode')}.")
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space,
                         venv.single_action_space)
        self.render_mode = venv.render_mode
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        seeds = None if all(s is None for s in self._seeds) else self._seeds
        options = self._options[0] if self._options[0] else None
        obs, _ = self.venv.reset(seed=seeds, options=options)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        # one action per env, in the single action space's shape: () for Discrete (SB3 may
        # hand (n, 1)), (A,) for a Box (CarRacing's steer, gas, brake)
        shape = self.venv.single_action_space.shape
        self._actions = np.asarray(actions).reshape(self.num_envs, *shape)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, _ = self.venv.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            for i in np.flatnonzero(dones):
                infos[i]["terminal_observation"] = obs_row(obs, i)
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            obs, _ = self.venv.reset(options={"reset_mask": dones})  # SB3: reset now
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        return list(self.venv.render())

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv.unwrapped, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError("The dreams of one vector env share one model and its settings; "
                             "make a new vector env to change them.")

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None,
                   **method_kwargs) -> list[Any]:
        raise AttributeError(f"{method_name}: the dreams of a batched vector env are rows of "
                             "one batch, not separate env objects.")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper],
                       indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


class ModelEncoder(BaseFeaturesExtractor):
    """A pixel policy's CNN that is the world model's own frame encoder, frozen.

    Each frame (the screen at the model's frame size, ``screen_size=S``) becomes the
    features the model gives it as a first frame (V's z for World Models; M's memory is
    not in one frame, so a recurrent policy such as sb3-contrib's ``CnnLstmPolicy`` keeps
    its own), standardised by their spread over dreamed frames of random play (64 dreams,
    seed 0, ``stats_steps`` steps); those constant for a first frame are dropped. Why: a
    CNN learnt from the dream's reward alone sat at a fixed action for 240k steps, and the
    encoder was trained on real frames, so the real screen reads as the dream's does.
    A stack of frames (SB3's ``VecFrameStack``: 3m channels) gives each frame's features
    side by side, oldest first.

        PPO("CnnPolicy", VecFrameStack(venv, 4), policy_kwargs={
            "features_extractor_class": ModelEncoder,
            "features_extractor_kwargs": {"model": "takecover"}})
        RecurrentPPO("CnnLstmPolicy", venv, policy_kwargs={
            "features_extractor_class": ModelEncoder,
            "features_extractor_kwargs": {"model": "takecover"}})

    Args:
        observation_space: (3m, S, S) images, as SB3 hands them to a CNN (m stacked frames).
        model: zoo name or folder of the model.
        bfloat16: encode in bfloat16 (about twice as fast where the CPU has it natively).
        stats_steps: dream steps whose frames set the standardisation.
        cache: frames whose features are remembered (0: none). The encoder is frozen, so a
            frame's features never change; a stack of m frames shows each frame m times and
            PPO's epochs show each stack again: with a cache each frame is encoded once
            (a 16-byte BLAKE2 digest of its pixels names it; least recently used first out).
    """

    def __init__(self, observation_space: gym.spaces.Box, model: str,
                 bfloat16: bool = False, stats_steps: int = 64, cache: int = 0) -> None:
        from dream_gym.envs.vector import DreamVectorEnv
        from dream_gym.zoo import load_contexts, load_model

        loaded = load_model(model)
        game, size = loaded.spec, loaded.spec.frame_size
        shape = tuple(observation_space.shape)
        if (len(shape) != 3 or shape[0] % 3 or shape[1:] != (size, size)
                or game.crop_rows is not None):
            raise ValueError(
                f"ModelEncoder reads the {game.name} model's {size}x{size} RGB frames "
                f"(uncropped games; 3m channels for m stacked frames), got images of shape "
                f"{observation_space.shape}: make "
                f"the dream with screen_size={size} and the real game with "
                f"make_real_sb3_env(game, {size}).")
        dreams = DreamVectorEnv(64, loaded, obs_type="pixels", screen_size=size,
                                contexts=load_contexts(model))
        dreams.action_space.seed(0)
        frames = [dreams.reset(seed=0)[0]]
        for _ in range(stats_steps - 1):
            frames.append(dreams.step(dreams.action_space.sample())[0])
        frames = torch.from_numpy(np.concatenate(frames))
        with torch.no_grad():
            f = loaded.features(loaded.initial_state(frames[:, None],
                                                     game.no_actions(len(frames))))
        keep = f.std(0) > 1e-6
        frames_per_obs = shape[0] // 3
        super().__init__(observation_space, int(keep.sum()) * frames_per_obs)
        self.frames = frames_per_obs
        # not a submodule: its weights stay the zoo's, out of the policy's state and optimiser
        object.__setattr__(self, "model", loaded)
        self.bfloat16 = bfloat16
        self.cache_size = int(cache)
        self._cache: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self.register_buffer("keep", keep)
        self.register_buffer("mean", f[:, keep].mean(0))
        self.register_buffer("std", f[:, keep].std(0))

    @torch.no_grad()
    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        b, c, h, w = observations.shape
        frames = (observations.reshape(b * self.frames, 3, h, w) * 255).round() \
            .to(torch.uint8).permute(0, 2, 3, 1)
        f = self._cached(frames) if self.cache_size else self._encode(frames)
        return f.reshape(b, -1)

    def _encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Standardised features (M, F) of uint8 frames (M, S, S, 3)."""
        with torch.autocast("cpu", torch.bfloat16, enabled=self.bfloat16):
            state = self.model.initial_state(frames[:, None],
                                             self.model.spec.no_actions(len(frames)))
            f = self.model.features(state)[:, self.keep].float()
        return (f - self.mean) / self.std

    def _cached(self, frames: torch.Tensor) -> torch.Tensor:
        pixels = frames.cpu().numpy()
        keys = [hashlib.blake2b(x.tobytes(), digest_size=16).digest() for x in pixels]
        new: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            if k not in self._cache and k not in new:
                new[k] = i
        if new:
            fresh = self._encode(frames[list(new.values())])
            for k, row in zip(new, fresh, strict=True):
                self._cache[k] = row
        for k in keys:
            self._cache.move_to_end(k)
        out = torch.stack([self._cache[k] for k in keys])
        while len(self._cache) > max(self.cache_size, len(keys)):
            self._cache.popitem(last=False)
        return out.to(frames.device)


def make_sb3_vec_env(env_id: str, num_envs: int,
                     wrappers: Sequence[Callable[[gym.vector.VectorEnv], gym.vector.VectorEnv]]
                     = (), **kwargs: Any) -> SB3VecEnv:
    """``num_envs`` dreams of a registered Dream id (batched) as one SB3 ``VecEnv``.

    ``wrappers`` are Gymnasium vector wrappers applied in order (e.g. a resize of the
    screen); ``kwargs`` go to the dream (``obs_type``, ``temperature``, ...).
    """
    import dream_gym  # noqa: F401  (registers the ids)

    venv = gym.make_vec(env_id if ":" in env_id else f"dream_gym:{env_id}", num_envs=num_envs,
                        vectorization_mode="vector_entry_point", **kwargs)
    for wrap in wrappers:
        venv = wrap(venv)
    return SB3VecEnv(venv)


def make_real_sb3_env(game: str, screen_size: int = 64, model: Any = None,
                      frame_skip: int = 1) -> VecEnv:
    """The real game as an SB3 ``VecEnv`` of one env, observed as a pixel agent observes the
    dream made with ``screen_size`` and ``frame_skip``: the screen alone at ``screen_size`` x
    ``screen_size`` (:class:`~dream_gym.envs.pixels.ScreenObservation`), through the model's
    eyes (:class:`~dream_gym.envs.pixels.ModelView`) when ``model`` (a loaded model, zoo name
    or folder) is given, each action held ``frame_skip`` steps (Gymnasium's
    ``MaxAndSkipObservation``, which the dream's ``frame_skip`` reproduces). The agent's own
    SB3 wrappers (``VecFrameStack``, ...) then go on it as on the dream's
    :func:`make_sb3_vec_env`, so the agent runs unchanged."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from dream_gym.envs.pixels import ModelView, ScreenObservation
    from dream_gym.games import get_game

    spec = get_game(game)

    def make() -> gym.Env:
        env = ScreenObservation(ModelView(spec.make(), model) if model is not None
                                else spec.make(), screen_size)
        return gym.wrappers.MaxAndSkipObservation(env, frame_skip) if frame_skip > 1 else env

    return DummyVecEnv([make])


def evaluate_sb3(agent: Any, venv: VecEnv, episodes: int, seed: int = 0,
                 deterministic: bool = True, progress: bool = True,
                 desc: str = "real game") -> dict:
    """An SB3 agent (anything with SB3's ``predict(obs, state, episode_start,
    deterministic)``, recurrent ones included) on a one-env
    ``venv``, episode i seeded ``seed + i``; the venv's wrappers (a frame stack) and the
    agent's memory start afresh with each episode.
    Returns :func:`~dream_gym.evaluate.summarize`'s dict."""
    if venv.num_envs != 1:
        raise ValueError(f"evaluate_sb3 plays one game at a time (seeded per episode); got a "
                         f"VecEnv of {venv.num_envs}.")
    returns = []
    for ep in tqdm(range(episodes), desc=desc, disable=not progress):
        venv.seed(seed + ep)
        obs, done, ret, memory = venv.reset(), False, 0.0, None
        start = np.ones(1, bool)
        while not done:
            action, memory = agent.predict(obs, state=memory, episode_start=start,
                                           deterministic=deterministic)
            obs, reward, dones, _ = venv.step(action)
            start = dones
            ret, done = ret + float(reward[0]), bool(dones[0])
        returns.append(ret)
    return summarize(returns)
