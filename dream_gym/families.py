"""The model families dream-gym knows, one entry each: model class, training stages, recipe.

A family is one :class:`Family` registered here (or from a user's code with
:func:`register_family`). The zoo loads a model folder with the class its ``config.json``
names, ``dream-gym train`` runs the family's stages, and a recipe's sections are checked
against the family's schema. Entries refer to their parts as ``"module:attribute"`` strings,
so that ``import dream_gym`` imports no family (and no torch).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Family", "register_family", "get_family", "family_names"]


def _resolve(ref: Any) -> Any:
    if not isinstance(ref, str):
        return ref
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes:
        name: the ``family`` of its model folders' ``config.json`` and of its recipes.
        model: the :class:`~dream_gym.contract.WorldModel` class (its ``from_config`` loads
            a folder), or ``"module:Class"``; None for a family that makes no dream.
        stages: ``run_stages(recipe, run_dir, stages, device) -> model folder``, the recipe
            runner of ``dream-gym train`` (or ``"module:function"``).
        sections: recipe section name -> the dataclasses that read it (or
            ``"module:ATTRIBUTE"``), for :func:`dream_gym.config.check_recipe`.
        not_a_dream: for a family whose folders are no world model, what to use instead.
    """

    name: str
    model: type | str | None
    stages: Callable[..., Any] | str
    sections: dict[str, tuple[type, ...]] | str
    not_a_dream: str | None = None

    def model_class(self) -> type:
        if self.model is None:
            raise ValueError(f"The {self.name} family makes no dream. {self.not_a_dream or ''}")
        return _resolve(self.model)

    def run_stages(self, recipe: dict[str, Any], run_dir: Any, stages: Any, device: Any) -> Any:
        return _resolve(self.stages)(recipe, run_dir, stages, device)

    def recipe_sections(self) -> dict[str, tuple[type, ...]]:
        return _resolve(self.sections)


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add a family (or replace the one of the same name)."""
    _FAMILIES[family.name] = family
    return family


def family_names() -> list[str]:
    return sorted(_FAMILIES)


def get_family(name: str | None) -> Family:
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ValueError(f"Unknown model family {name!r}; dream-gym knows {family_names()}. "
                         "Register yours with dream_gym.families.register_family(Family(...)).") \
            from None


register_family(Family(
    "world_models", "dream_gym.world_models.model:WorldModelsDream",
    "dream_gym.training.world_models:run_stages",
    "dream_gym.training.world_models:RECIPE_SECTIONS"))
register_family(Family(
    "gtm_sm", "dream_gym.gtm_sm.model:GTMSMDream", "dream_gym.training.gtm_sm:run_stages",
    "dream_gym.training.gtm_sm:RECIPE_SECTIONS"))
register_family(Family(
    "frame_gan", None, "dream_gym.training.frame_gan:run_stages",
    "dream_gym.training.frame_gan:RECIPE_SECTIONS",
    not_a_dream="It is a frame generator (the Atari frame GAN): it draws frames but has no "
                "dynamics to step. Load it with dream_gym.frame_gan.load_generator."))
register_family(Family(
    "gamegan", "dream_gym.gamegan.dream:GameGANDream", "dream_gym.gamegan.training:run_stages",
    "dream_gym.gamegan.training:RECIPE_SECTIONS"))
