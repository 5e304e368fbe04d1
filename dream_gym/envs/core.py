"""The dream engine: N dreams of one world model stepped as one batch.

:class:`~dream_gym.envs.dream_env.DreamEnv` is this engine with N = 1 and
:class:`~dream_gym.envs.vector.DreamVectorEnv` is it with N dreams; both therefore share every
rule (starting contexts, seeding, action checks, observations). Each dream draws its context
and its random stream from its own ``np.random.Generator``, so a seed gives the same dream
alone or in a batch of any size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from dream_gym.checkpoint import CheckpointError
from dream_gym.contract import State, WorldModel, seed_dreams, select_rows
from dream_gym.envs.latent import latent_space
from dream_gym.envs.upscale import upscale

__all__ = ["DreamCore", "obs_row", "load_dream"]

_CONTEXT_KEYS = ("frames", "actions", "gamevars")


def load_dream(model: WorldModel | str | Path, device: str = "cpu",
               game: str | None = None) -> WorldModel:
    """A loaded model as it is, or the model a zoo name or folder holds (checked to simulate
    ``game`` when given)."""
    if isinstance(model, str | Path):
        from dream_gym.zoo import load_model

        return load_model(model, device, game=game)
    if not isinstance(model, WorldModel):
        raise TypeError(f"model must be a WorldModel, a zoo name or a model folder; got "
                        f"{type(model).__name__}. See dream_gym.contract.WorldModel.")
    if game is not None and model.game != game:
        raise CheckpointError(f"This model simulates {model.game!r}, not {game!r}.")
    return model


def _contexts(model: WorldModel | str | Path, contexts: dict[str, Any] | None,
              loaded: WorldModel) -> dict[str, torch.Tensor]:
    """The starting contexts: those given, else those shipped in the model's folder."""
    if contexts is None:
        if not isinstance(model, str | Path):
            raise ValueError(
                "A model object comes without starting contexts: pass contexts={'frames': "
                "(N, T, S, S, 3) uint8, 'actions': (N, T - 1, ...), 'gamevars': (N, G)}, e.g. "
                "dream_gym.zoo.load_contexts(folder), or pass the model's folder instead.")
        from dream_gym.zoo import load_contexts

        return load_contexts(model)
    missing = [k for k in _CONTEXT_KEYS if k not in contexts]
    if missing:
        raise ValueError(f"contexts lacks {missing}; it needs {list(_CONTEXT_KEYS)}.")
    out = {k: torch.as_tensor(np.asarray(contexts[k])) for k in _CONTEXT_KEYS}
    size = loaded.spec.frame_size
    if out["frames"].dim() != 5 or tuple(out["frames"].shape[2:]) != (size, size, 3):
        raise ValueError(f"contexts['frames'] must be (N, T, {size}, {size}, 3) uint8, got "
                         f"{tuple(out['frames'].shape)}.")
    return out


def obs_row(obs: np.ndarray | dict[str, np.ndarray], i: int) -> np.ndarray | dict:
    """A copy of row ``i`` of a batched (array or Dict) observation."""
    return {k: v[i].copy() for k, v in obs.items()} if isinstance(obs, dict) else obs[i].copy()


class DreamCore:
    """N dreams, their states and the real game's interface around them."""

    def __init__(self, model: WorldModel | str | Path, num_dreams: int,
                 obs_type: str = "pixels", temperature: float = 1.0,
                 max_episode_steps: int | None = None, game: str | None = None,
                 device: str = "cpu", contexts: dict[str, Any] | None = None,
                 screen_size: int | None = None) -> None:
        if obs_type not in ("pixels", "latent"):
            raise ValueError(f"obs_type must be 'pixels' or 'latent', got {obs_type!r}.")
        if screen_size is not None and (obs_type != "pixels" or int(screen_size) < 1):
            raise ValueError(f"screen_size={screen_size!r}: it sizes pixel observations (a "
                             "positive int, e.g. 64, with obs_type='pixels').")
        self.model = load_dream(model, device, game)
        self.contexts = _contexts(model, contexts, self.model)
        self.game = self.model.spec
        self.device = self.model.device
        self.n = num_dreams
        self.obs_type = obs_type
        self.set_temperature(temperature)
        self.max_episode_steps = max_episode_steps or self.game.max_episode_steps
        self.real_observation_space, self.action_space = self.game.real_spaces()
        self.screen_size = screen_size
        screen_hw = tuple(self.game.screen_space.shape[:2])
        self.screen_hw: tuple[int, int] = screen_hw if screen_size is None \
            else (screen_size, screen_size)
        self.screen_rows = self.game.crop_rows if screen_size is None or not self.game.crop_rows \
            else tuple(round(r * screen_size / screen_hw[0]) for r in self.game.crop_rows)
        if obs_type == "latent":
            self.observation_space = latent_space(self.model)
        elif screen_size is not None:
            self.observation_space = gym.spaces.Box(0, 255, (*self.screen_hw, 3), np.uint8)
        else:
            self.observation_space = self.real_observation_space
        self.state: State | None = None
        self.steps = np.zeros(num_dreams, np.int64)
        self.gamevars = np.zeros((num_dreams, self.contexts["gamevars"].shape[-1]), np.float32)
        self._screens: np.ndarray | None = None
        self._initial: State | None = None

    def set_temperature(self, temperature: float) -> None:
        """tau of World Models for the next steps (mixture logits / tau, sigma * sqrt(tau))."""
        if not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"temperature must be a positive number, got {temperature!r}.")
        self.temperature = float(temperature)

    # --- episodes ---------------------------------------------------------------------------
    def reset_rows(self, rows: np.ndarray, rngs: list[np.random.Generator],
                   options: dict[str, Any] | None = None) -> None:
        """Start new dreams in ``rows``, row ``rows[i]`` drawing from ``rngs[i]``."""
        options = options or {}
        if "context" in options:
            frames, actions, gamevars = self._user_context(options["context"])
            n = len(rows)
            fresh = self.model.initial_state(frames.expand(n, *frames.shape),
                                             actions.expand(n, *actions.shape))
            gamevars = gamevars.expand(n, *gamevars.shape)
        else:
            which = torch.tensor([self._context_index(options, rng) for rng in rngs])
            fresh = select_rows(self._initial_states(), which.to(self.device))
            gamevars = self.contexts["gamevars"][which]
        seeds = torch.from_numpy(np.concatenate([rng.integers(2**31, size=1) for rng in rngs]))
        fresh = seed_dreams(fresh, seeds)
        idx = torch.as_tensor(rows, dtype=torch.long, device=self.device)
        if self.state is None:
            if len(rows) != self.n:
                raise RuntimeError("The first reset must start every dream.")
            self.state = fresh
        else:
            for k, v in self.state.items():  # the state's tensors are the engine's own
                v.index_copy_(0, idx, fresh[k])
        self.steps[rows] = 0
        self.gamevars = self.gamevars.copy()  # observations handed out keep their values
        self.gamevars[rows] = gamevars.numpy()
        self._screens = None

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance every dream one step; returns (rewards, terminated, truncated)."""
        if self.state is None:
            raise RuntimeError("Call reset() before step().")
        a = torch.from_numpy(actions).to(self.device)
        self.state, tr = self.model.imagine(self.state, a, self.temperature)
        self._screens = None
        self.gamevars = tr.gamevars.cpu().numpy().astype(np.float32)
        self.steps += 1
        terminated = tr.done.cpu().numpy()
        truncated = (np.zeros(self.n, bool) if self.max_episode_steps is None
                     else (self.steps >= self.max_episode_steps) & ~terminated)
        return tr.reward.cpu().numpy().astype(np.float32), terminated, truncated

    def check_actions(self, actions: Any, env_id: str) -> np.ndarray:
        """Validate N actions (one action when N = 1) against the real action space."""
        arr = np.asarray(actions)
        shape, space = self.game.action_shape, self.action_space
        if self.n == 1 and arr.shape == shape:
            arr = arr[None]
        if self.game.discrete:
            what = "an int" if self.n == 1 else f"{self.n} ints"
        else:
            what = f"an array of shape {shape}" if self.n == 1 else f"an array ({self.n}, *{shape})"
        if arr.dtype.kind == "f" and np.isnan(arr).any():
            raise ValueError(f"Action is NaN; {env_id} takes {what} in {space}. "
                             "Check your policy's output.")
        if arr.shape != (self.n, *shape):
            ok = False
        elif isinstance(space, gym.spaces.Discrete):
            ok = arr.dtype.kind in "iu" and bool(np.all((arr >= space.start)
                                                        & (arr < space.start + space.n)))
        else:  # any real dtype within the bounds, as the real Box2D game accepts
            ok = arr.dtype.kind in "iuf" and bool(np.all((arr >= space.low)
                                                           & (arr <= space.high)))
        if not ok:
            raise ValueError(
                f"Invalid action {actions!r} (type {type(actions).__name__}) for {env_id}: "
                f"it takes {what} in {space}, as the real {self.game.env_id} does.")
        return arr.astype(self.game.action_dtype)

    # --- observations -----------------------------------------------------------------------
    def screens(self) -> np.ndarray:
        """(N, H, W, 3) uint8 dream frames at the real screen size (or ``screen_size``),
        decoded once per step. A frame already at that size is handed out as decoded."""
        if self._screens is None:
            self._screens = self._render(self.state)
        return self._screens

    def observations(self) -> np.ndarray | dict[str, np.ndarray]:
        """Batched observations (N, ...) in the single observation space's layout."""
        if self.obs_type == "latent":
            # features are a new tensor (the contract): no second copy of N x F floats
            return self.model.features(self.state).cpu().numpy().astype(np.float32, copy=False)
        return self._layout(self.screens(), self.gamevars)

    def observations_of(self, rows: np.ndarray) -> np.ndarray | dict[str, np.ndarray]:
        """The observations of ``rows`` alone (a dream ending inside a skipped step), drawn
        without decoding the other dreams' frames."""
        state = select_rows(self.state, torch.as_tensor(rows, device=self.device))
        if self.obs_type == "latent":
            return self.model.features(state).cpu().numpy().astype(np.float32, copy=False)
        return self._layout(self._render(state), self.gamevars[rows])

    def _render(self, state: State) -> np.ndarray:
        frames = self.model.render(state)
        if frames.shape[1:3] == self.screen_hw and self.screen_rows is None:
            return frames.cpu().numpy()
        return upscale(frames, self.screen_hw, self.screen_rows)

    def _layout(self, screens: np.ndarray, gamevars: np.ndarray) -> np.ndarray | dict:
        if self.game.screen_key is None or self.screen_size is not None:
            return screens
        return {key: screens if key == self.game.screen_key else gamevars
                for key in self.real_observation_space.spaces}

    # --- helpers ----------------------------------------------------------------------------
    def _initial_states(self) -> State:
        """The model's state after each shipped context, computed once in one batch, so a
        reset picks rows instead of encoding its context again (that cost ~1 ms a dream,
        a tenth of a batched step: benchmarks/throughput.py)."""
        if self._initial is None:
            self._initial = self.model.initial_state(self.contexts["frames"],
                                                     self.contexts["actions"])
        return self._initial

    def _context_index(self, options: dict[str, Any], rng: np.random.Generator) -> int:
        n = len(self.contexts["frames"])
        i = options.get("context_index")
        if i is None:
            return int(rng.integers(n))
        if not 0 <= int(i) < n:
            raise ValueError(f"context_index {i} out of range: this model ships {n} contexts.")
        return int(i)

    def _user_context(self, ctx: dict[str, Any]):
        try:
            frames = np.asarray(ctx["frames"], np.uint8)
            actions = np.asarray(
                ctx.get("actions", np.zeros((len(frames) - 1, *self.game.action_shape))),
                self.game.action_dtype)
            gamevars = np.asarray(ctx.get("gamevars", self.contexts["gamevars"][0]), np.float32)
        except (KeyError, TypeError) as e:
            raise ValueError("options['context'] needs 'frames' (T, H, W, 3) uint8 and "
                             "optionally 'actions' (T - 1, ...) and 'gamevars'.") from e
        if frames.ndim != 4 or frames.shape[-1] != 3 or len(actions) != len(frames) - 1:
            raise ValueError(
                f"Context frames must be (T, H, W, 3) with T - 1 actions; got frames "
                f"{frames.shape} and {len(actions)} actions.")
        size = self.game.frame_size
        if frames.shape[1:3] != (size, size):
            frames = np.stack([self.game.screen_frame(f) for f in frames])
        return torch.from_numpy(frames), torch.from_numpy(actions), torch.from_numpy(gamevars)
