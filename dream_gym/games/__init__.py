"""The real games a dream can stand in for: one :class:`GameSpec` and its recipe parts each.

A game is one module here (or one :func:`register_game` call in a user's code): its facts,
and optionally the paper's controller mapping, data-collection policies and ``play`` keys.
"""

from __future__ import annotations

from dream_gym.games import carracing, imagenav, mspacman, takecover  # noqa: F401, I001
from dream_gym.games.registry import (
    GENERIC_POLICIES,
    ControllerMapping,
    GameEntry,
    Keymap,
    collection_policy,
    controller_mapping,
    game_names,
    game_of_env_id,
    get_entry,
    get_game,
    keymap,
    register_game,
)
from dream_gym.games.spec import FRAME_SIZE, GameSpec, resize_frame

__all__ = ["GameSpec", "GameEntry", "ControllerMapping", "Keymap", "register_game", "get_game",
           "get_entry", "game_names", "game_of_env_id", "controller_mapping",
           "collection_policy", "keymap", "GENERIC_POLICIES", "FRAME_SIZE", "resize_frame"]
