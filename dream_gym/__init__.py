"""dream-gym: Gymnasium environments whose every step is computed by a learned world model.

Importing the package registers the ``Dream-*`` ids; torch and the weights load only when an
environment is made. ``gymnasium.make("dream_gym:Dream-TakeCover-v0")`` imports it for you.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

__all__ = ["__version__", "DREAM_IDS"]
__version__ = "0.1.0"

DREAM_IDS: dict[str, dict] = {
    "Dream-TakeCover-v0": {"model": "takecover", "game": "TakeCover"},
    "Dream-CarRacing-v0": {"model": "carracing", "game": "CarRacing"},
    # GTM-SM: reset memorises a real walk (the context), then 256 steps are predicted
    "Dream-ImageNav-v0": {"model": "imagenav", "game": "ImageNav", "max_episode_steps": 256},
}

if "ImageNav-v0" not in registry:  # the real world of seed 002's image navigation
    register(id="ImageNav-v0", entry_point="dream_gym.envs.image_nav:ImageNavEnv",
             max_episode_steps=512)

for _id, _kwargs in DREAM_IDS.items():
    if _id not in registry:
        register(id=_id, entry_point="dream_gym.envs.dream_env:DreamEnv",
                 vector_entry_point="dream_gym.envs.vector:DreamVectorEnv", kwargs=_kwargs,
                 max_episode_steps=None)
