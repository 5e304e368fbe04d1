"""DreamEnv: a real game's interface with every step computed by a learned world model."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from PIL import Image

from dream_gym.contract import State, WorldModel
from dream_gym.envs.latent import latent_space
from dream_gym.games import FRAME_SIZE, get_game, resize_frame

__all__ = ["DreamEnv"]


class DreamEnv(gym.Env):
    """
    ## Description
    A "dream" of a real game (seed 003, World Models): the observation, action space,
    reward and termination semantics are the real game's, but every step is sampled from a
    learned world model loaded from the zoo (``Dream-TakeCover-v0``: V + MDN-RNN trained on
    VizDoom ``VizdoomTakeCover-v1``). The environment only knows the
    :class:`~dream_gym.contract.WorldModel` contract, never a model family.

    ## Action Space
    The real game's (``Discrete(3)`` for TakeCover: 0 no-op, 1 right, 2 left). Anything
    outside it, or NaN, raises ``ValueError``.

    ## Observation Space
    ``obs_type="pixels"`` (default): exactly the real game's space; the model's 64x64 frame
    is resized to the real screen and game variables (TakeCover: ``HEALTH``) are predicted by
    the model. ``obs_type="latent"``: the model's features (``[z, h]`` for World Models), the
    same observation :class:`~dream_gym.envs.latent.RealLatentObservation` gives in the game.

    ## Rewards
    Predicted by the model's reward head (TakeCover: about +1 per step survived).

    ## Starting State
    A real starting context shipped with the model (random, from ``self.np_random``), or
    ``options["context"]`` / ``options["context_index"]``.

    ## Episode Termination
    Terminated when the model samples done (Bernoulli); truncated at ``max_episode_steps``
    (the real game's limit by default; TakeCover has none).

    ## Arguments
    - ``model``: zoo name or model folder. ``game``: the real game expected (checked).
    - ``obs_type``: ``"pixels"`` or ``"latent"``. ``temperature``: tau of seed 003 (mixture
      logits / tau, sigma * sqrt(tau)); higher is more uncertain and harder.
    - ``render_mode``: ``"rgb_array"`` or ``"human"``. ``device``: torch device.

    ## Reset Arguments
    ``options={"context_index": i}`` or ``options={"context": {"frames": (T, H, W, 3) uint8,
    "actions": (T - 1,) ints, "gamevars": (G,) floats}}``; frames at the real screen size
    or at 64x64.

    ## Version History
    - v0: World Models dream of VizDoom TakeCover.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 35}

    def __init__(self, model: str | WorldModel = "takecover", obs_type: str = "pixels",
                 temperature: float = 1.0, render_mode: str | None = None,
                 max_episode_steps: int | None = None, game: str | None = None,
                 device: str = "cpu") -> None:
        from dream_gym.zoo import load_contexts, load_model

        if obs_type not in ("pixels", "latent"):
            raise ValueError(f"obs_type must be 'pixels' or 'latent', got {obs_type!r}.")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}.")
        if not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"temperature must be a positive number, got {temperature!r}.")
        if isinstance(model, str):
            self.model_name = model
            self.contexts = load_contexts(model)
            model = load_model(model, device, game=game)
        else:
            raise TypeError("Pass a zoo name or model folder as `model`.")
        self.model = model
        self.game = get_game(model.game)
        self.obs_type, self.temperature, self.render_mode = obs_type, float(temperature), \
            render_mode
        self.max_episode_steps = max_episode_steps or self.game.max_episode_steps
        real_obs_space, self.action_space = self.game.real_spaces()
        self._real_obs_space = real_obs_space
        self.observation_space = latent_space(model) if obs_type == "latent" else real_obs_space
        screen_space = (real_obs_space[self.game.screen_key] if self.game.screen_key
                        else real_obs_space)
        self._screen_hw = screen_space.shape[:2]
        self._state: State | None = None
        self._screen_cache: np.ndarray | None = None
        self._gamevars = np.zeros(0, np.float32)
        self._gen = torch.Generator(device=model.device)
        self._steps = 0
        self._window = None

    # --- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._gen.manual_seed(int(self.np_random.integers(2**62)))
        frames, actions, gamevars = self._context(options or {})
        self._state = self.model.initial_state(frames[None], actions[None])
        self._screen_cache = None
        self._gamevars = gamevars.numpy().astype(np.float32)
        self._steps = 0
        if self.render_mode == "human":
            self.render()
        return self._obs(), {}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("Call reset() before step().")
        a = self._check_action(action)
        self._state, tr = self.model.imagine(self._state, torch.tensor([a]), self.temperature,
                                             self._gen)
        self._screen_cache = None
        self._gamevars = tr.gamevars[0].cpu().numpy().astype(np.float32)
        self._steps += 1
        terminated = bool(tr.done[0])
        truncated = self.max_episode_steps is not None and self._steps >= self.max_episode_steps
        if self.render_mode == "human":
            self.render()
        return self._obs(), float(tr.reward[0]), terminated, bool(truncated), {}

    def render(self):
        if self._state is None:
            return None
        frame = self._screen()
        if self.render_mode == "human":
            self._show(frame)
            return None
        return frame.copy()  # the observation shares the cached array

    def close(self) -> None:
        if self._window is not None:
            import pygame

            pygame.display.quit()
            self._window = None

    # --- helpers --------------------------------------------------------------------------
    def _check_action(self, action) -> int:
        arr = np.asarray(action)
        if arr.dtype.kind == "f" and np.isnan(arr).any():
            raise ValueError(f"Action is NaN; {self.spec_id} takes an int in "
                             f"{self.action_space}. Check your policy's output.")
        if not self.action_space.contains(action):
            raise ValueError(
                f"Invalid action {action!r} (type {type(action).__name__}) for "
                f"{self.spec_id}: it takes an int in {self.action_space}, as the real "
                f"{self.game.env_id} does."
            )
        return int(action)

    @property
    def spec_id(self) -> str:
        return self.spec.id if self.spec is not None else f"Dream-{self.game.name}"

    def _context(self, options: dict[str, Any]):
        if "context" in options:
            ctx = options["context"]
            try:
                frames = np.asarray(ctx["frames"], np.uint8)
                actions = np.asarray(ctx.get("actions", np.zeros(len(frames) - 1)), np.int64)
                gamevars = np.asarray(ctx.get("gamevars", self.contexts["gamevars"][0]),
                                      np.float32)
            except (KeyError, TypeError) as e:
                raise ValueError("options['context'] needs 'frames' (T, H, W, 3) uint8 and "
                                 "optionally 'actions' (T - 1,) and 'gamevars'.") from e
            if frames.ndim != 4 or frames.shape[-1] != 3 or len(actions) != len(frames) - 1:
                raise ValueError(
                    f"Context frames must be (T, H, W, 3) with T - 1 actions; got frames "
                    f"{frames.shape} and {len(actions)} actions.")
            if frames.shape[1:3] != (FRAME_SIZE, FRAME_SIZE):
                frames = np.stack([resize_frame(f) for f in frames])
            return torch.from_numpy(frames), torch.from_numpy(actions), torch.from_numpy(gamevars)
        n = len(self.contexts["frames"])
        i = options.get("context_index")
        if i is None:
            i = int(self.np_random.integers(n))
        elif not 0 <= int(i) < n:
            raise ValueError(f"context_index {i} out of range: this model ships {n} contexts.")
        return (self.contexts["frames"][i], self.contexts["actions"][i],
                self.contexts["gamevars"][i])

    def _screen(self) -> np.ndarray:
        """The decoded frame at the real screen size, decoded once per state."""
        if self._screen_cache is None:
            frame = self.model.render(self._state)[0].cpu().numpy()
            h, w = self._screen_hw
            self._screen_cache = np.asarray(Image.fromarray(frame).resize((w, h),
                                                                           Image.BILINEAR))
        return self._screen_cache

    def _obs(self):
        if self.obs_type == "latent":
            return self.model.features(self._state)[0].cpu().numpy().astype(np.float32)
        screen = self._screen()
        if self.game.screen_key is None:
            return screen
        return {key: screen if key == self.game.screen_key else self._gamevars
                for key in self._real_obs_space.spaces}

    def _show(self, frame: np.ndarray) -> None:
        try:
            import pygame
        except ImportError as e:
            raise ImportError("render_mode='human' needs pygame: pip install pygame") from e
        if self._window is None:
            pygame.init()
            self._window = pygame.display.set_mode(frame.shape[1::-1])
        surf = pygame.surfarray.make_surface(frame.swapaxes(0, 1))
        self._window.blit(surf, (0, 0))
        pygame.event.pump()
        pygame.display.flip()
