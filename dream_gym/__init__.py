"""dream-gym: Gymnasium environments whose every step is computed by a learned world model.

Importing the package registers a ``Dream-*`` id for each model in the zoo (and under
``$DREAM_GYM_MODELS``), from the models' own configs; torch and the weights load only when
an environment is made. ``gymnasium.make("dream_gym:Dream-TakeCover-v0")`` imports it for you.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from dream_gym.registration import register_dream, register_zoo

__all__ = ["__version__", "DREAM_IDS", "register_dream"]
__version__ = "0.1.0"

if "ImageNav-v0" not in registry:  # the real world of GTM-SM's image navigation
    register(id="ImageNav-v0", entry_point="dream_gym.envs.image_nav:ImageNavEnv",
             max_episode_steps=512)

DREAM_IDS: dict[str, dict] = register_zoo()
"""The registered dream ids and the kwargs each makes its env with."""
