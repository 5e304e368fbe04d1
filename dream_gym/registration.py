"""Gymnasium ids for the zoo's dreams, registered from the model folders' own configs.

A model folder whose ``config.json`` has a ``dream`` block (``id``, and the
``max_episode_steps`` and ``reward_threshold`` Gymnasium registrations carry) becomes a
registered id when ``dream_gym`` is imported: the shipped zoo, and every model folder under
the directory named by ``$DREAM_GYM_MODELS`` (a user's own dreams). Any other folder is
registered with :func:`register_dream`. This module reads JSON only: ``import dream_gym``
stays cheap (no torch).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gymnasium.envs.registration import register, registry

__all__ = ["zoo_root", "user_zoo", "model_folders", "locate", "register_dream", "register_zoo",
           "ENTRY_POINT", "VECTOR_ENTRY_POINT", "USER_MODELS_ENV"]

ENTRY_POINT = "dream_gym.envs.dream_env:DreamEnv"
VECTOR_ENTRY_POINT = "dream_gym.envs.vector:DreamVectorEnv"
USER_MODELS_ENV = "DREAM_GYM_MODELS"
"""Environment variable naming a folder of the user's model folders, registered at import."""


def zoo_root() -> Path:
    """``dream_gym/zoo`` inside an installed wheel, else ``models/`` of a source checkout."""
    installed = Path(__file__).parent / "zoo"
    return installed if installed.is_dir() else Path(__file__).parent.parent / "models"


def user_zoo() -> Path | None:
    """The folder ``$DREAM_GYM_MODELS`` names, if set."""
    value = os.environ.get(USER_MODELS_ENV)
    return Path(value).expanduser() if value else None


def model_folders(root: Path | None) -> list[Path]:
    """The model folders (with a ``config.json``) directly under ``root``."""
    if root is None or not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "config.json").is_file())


def locate(model: str | Path) -> Path:
    """The model folder ``model`` names: a bare name (no path separator) is a zoo entry (the
    shipped zoo, then ``$DREAM_GYM_MODELS``) before a folder of that name in the working
    directory, which ``./name`` reaches; anything else is a path to a folder."""
    if isinstance(model, str) and not any(sep in model for sep in ("/", os.sep)) \
            and model not in (".", ".."):
        for root in (zoo_root(), user_zoo()):
            if root is not None and (root / model / "config.json").is_file():
                return root / model
    p = Path(model)
    if (p / "config.json").is_file():
        return p
    shipped = [f.name for f in model_folders(zoo_root())]
    if p.is_dir():
        raise FileNotFoundError(
            f"{p} is a folder but not a model folder (it has no config.json). Pass a folder "
            f"written by `dream-gym train` or a zoo name ({shipped}).")
    raise FileNotFoundError(
        f"No model {str(model)!r}: not a folder and not in the zoo at {zoo_root()} "
        f"(shipped: {shipped}). Pass a model folder or a name from `dream-gym zoo`.")


def _read(folder: Path) -> dict[str, Any]:
    with open(folder / "config.json") as f:
        return json.load(f)


def register_dream(model: str | Path, id: str | None = None,
                   config: dict[str, Any] | None = None, **kwargs: Any) -> str:
    """Register a model folder (or zoo name) as a Gymnasium id; returns the id.

    The id is ``id``, else the config's ``dream.id``, else ``Dream-<game>-v0``;
    ``max_episode_steps`` and ``reward_threshold`` come from the config's ``dream`` block,
    or from the game's facts. An id registered before is replaced (a retrained model).
    ``config``: the folder's parsed config.json, when the caller has read it already.
    """
    from dream_gym.families import get_family

    folder = locate(model)
    config = _read(folder) if config is None else config
    family = get_family(config.get("family"))
    if family.model is None:
        raise ValueError(f"{folder} is a {family.name} model, which makes no dream. "
                         f"{family.not_a_dream or ''}")
    dream = config.get("dream", {})
    facts = config.get("game_spec", {})
    env_id = id or dream.get("id") or f"Dream-{config['game']}-v0"
    name = folder.name if folder.parent == zoo_root() else str(folder.resolve())
    if env_id in registry:
        del registry[env_id]
    register(id=env_id, entry_point=ENTRY_POINT, vector_entry_point=VECTOR_ENTRY_POINT,
             kwargs={"model": name, "game": config["game"], **kwargs},
             max_episode_steps=dream.get("max_episode_steps", facts.get("max_episode_steps")),
             reward_threshold=dream.get("reward_threshold", facts.get("reward_threshold")))
    return env_id


def register_zoo() -> dict[str, dict[str, Any]]:
    """Register every model folder with a ``dream`` block in the shipped zoo and under
    ``$DREAM_GYM_MODELS``; returns id -> the kwargs it makes its env with."""
    ids = {}
    for folder in model_folders(zoo_root()) + model_folders(user_zoo()):
        config = _read(folder)
        if "dream" in config:
            env_id = register_dream(folder, config=config)
            ids[env_id] = dict(registry[env_id].kwargs)
    return ids
