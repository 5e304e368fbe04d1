"""DreamEnv: a real game's interface with every step computed by a learned world model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dream_gym.contract import WorldModel
from dream_gym.envs.core import DreamCore

__all__ = ["DreamEnv"]


class DreamEnv(gym.Env):
    """
    ## Description
    A "dream" of a real game: the observation, action space, reward and termination
    semantics are the real game's, but every step is sampled from a learned world model
    (``Dream-TakeCover-v0``: World Models' V + MDN-RNN trained on VizDoom
    ``VizdoomTakeCover-v1``; ``Dream-CarRacing-v0``: the same on Box2D ``CarRacing-v3``;
    ``Dream-ImageNav-v0``: GTM-SM on the image-navigation world). The environment only
    knows the :class:`~dream_gym.contract.WorldModel` contract, never a model family.

    ## Action Space
    The real game's: ``Discrete(3)`` for TakeCover (0 no-op, 1 right, 2 left);
    ``Box([-1, 0, 0], 1, (3,))`` for CarRacing (steer, gas, brake). Anything outside it, of
    the wrong shape, or NaN, raises ``ValueError``.

    ## Observation Space
    ``obs_type="pixels"`` (default): exactly the real game's space; the model's 64x64 frame
    is resized to the real screen and game variables (TakeCover: ``HEALTH``) are predicted by
    the model (CarRacing's dashboard, which the model never sees, stays black).
    ``screen_size=S`` (pixels): the screen alone, ``Box(0, 255, (S, S, 3), uint8)``, as
    :class:`~dream_gym.envs.pixels.ScreenObservation` gives it in the real game
    (:func:`dream_gym.sb3.make_real_sb3_env`; CarRacing's dashboard rows stay black, as
    :class:`~dream_gym.envs.pixels.ModelView` shows them), rendered straight from the model's
    frame (at S = 64, the frame itself): what a pixel agent's wrappers ask for, without
    scaling up to the screen and back down.
    ``obs_type="latent"``: the model's features (``[z, h]`` or ``[z, h, c]`` for World
    Models, as its config says), the same observation
    :class:`~dream_gym.envs.latent.RealLatentObservation` gives in the game.

    ## Rewards
    Predicted by the model's reward head (TakeCover: about +1 per step survived; CarRacing:
    the expected tile reward minus 0.1 per frame).

    ## Starting State
    A real starting context shipped with the model (random, from ``self.np_random``), or
    ``options["context"]`` / ``options["context_index"]``. For a memory model (GTM-SM) the
    context is the memorisation phase: a real walk whose frames the dream then recalls.

    ## Episode Termination
    Terminated when the model samples done (Bernoulli); truncated at ``max_episode_steps``
    (the real game's limit by default; TakeCover has none).

    ## Arguments
    - ``model``: a loaded :class:`~dream_gym.contract.WorldModel`, a zoo name or a model
      folder. ``contexts``: starting contexts for a model object (a folder ships its own).
      ``game``: the real game expected (checked).
    - ``obs_type``: ``"pixels"`` or ``"latent"``. ``temperature``: tau of World Models (mixture
      logits / tau, sigma * sqrt(tau)); higher is more uncertain and harder.
    - ``screen_size``: pixel observations at ``S x S`` (see above); None: the real screen.
    - ``render_mode``: ``"rgb_array"`` or ``"human"``. ``device``: torch device.

    ## Reset Arguments
    ``options={"context_index": i}`` or ``options={"context": {"frames": (T, H, W, 3) uint8,
    "actions": (T - 1, ...) real actions, "gamevars": (G,) floats}}``; frames at the real
    screen size or at 64x64.

    ## Version History
    - v0: World Models dreams of VizDoom TakeCover and CarRacing; GTM-SM dream of ImageNav.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 35}

    def __init__(self, model: WorldModel | str | Path = "takecover", obs_type: str = "pixels",
                 temperature: float = 1.0, render_mode: str | None = None,
                 max_episode_steps: int | None = None, game: str | None = None,
                 device: str = "cpu", contexts: dict[str, Any] | None = None,
                 screen_size: int | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}.")
        self._core = DreamCore(model, 1, obs_type, temperature, max_episode_steps, game, device,
                               contexts, screen_size)
        self.model, self.game = self._core.model, self._core.game
        self.contexts = self._core.contexts
        self.obs_type = obs_type
        self.render_mode = render_mode
        self.max_episode_steps = self._core.max_episode_steps
        self.observation_space = self._core.observation_space
        self.action_space = self._core.action_space
        self._window = None

    # --- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._core.reset_rows(np.zeros(1, np.int64), [self.np_random], options)
        if self.render_mode == "human":
            self.render()
        return self._obs(), {}

    def step(self, action):
        a = self._core.check_actions(action, self.spec_id)
        reward, terminated, truncated = self._core.step(a)
        if self.render_mode == "human":
            self.render()
        return self._obs(), float(reward[0]), bool(terminated[0]), bool(truncated[0]), {}

    def render(self):
        if self._core.state is None:
            return None
        frame = self._core.screens()[0]
        if self.render_mode == "human":
            self._show(frame)
            return None
        return frame.copy()  # the observation shares the cached array

    def close(self) -> None:
        if self._window is not None:
            import pygame

            pygame.display.quit()
            self._window = None

    @property
    def temperature(self) -> float:
        return self._core.temperature

    def set_temperature(self, temperature: float) -> None:
        """Change tau between steps (the paper's live slider); the next step uses it."""
        self._core.set_temperature(temperature)

    # --- helpers --------------------------------------------------------------------------
    @property
    def spec_id(self) -> str:
        return self.spec.id if self.spec is not None else f"Dream-{self.game.name}"

    def _obs(self):
        obs = self._core.observations()
        if isinstance(obs, dict):
            return {k: v[0] for k, v in obs.items()}
        return obs[0]

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
