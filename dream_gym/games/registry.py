"""The games dream-gym knows, one entry each: facts (:class:`GameSpec`) and recipe parts.

A game is added by one call of :func:`register_game`, from a module of
:mod:`dream_gym.games` or from a user's own code. Beside the spec, an entry may carry what
only some recipes use: the paper's linear-controller mapping (:class:`ControllerMapping`),
data-collection policies by name, and the keyboard map of ``dream-gym play``
(:class:`Keymap`). A game without them still gets generic ones derived from its spaces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from dream_gym.explore import random_policy
from dream_gym.games.spec import GameSpec

__all__ = ["ControllerMapping", "Keymap", "GameEntry", "PolicyFactory", "register_game",
           "get_game", "get_entry", "game_names", "game_of_env_id", "controller_mapping",
           "collection_policy", "keymap", "GENERIC_POLICIES"]

Keys = Sequence[bool]
"""What ``pygame.key.get_pressed()`` returns: held or not, indexed by key code."""

PolicyFactory = Callable[[np.random.Generator, GameSpec, int], Callable[[np.ndarray], Any]]
"""Builds a data-collection policy per episode from (rng, game, max_hold); the policy maps
the real screen to an action."""


@dataclass(frozen=True)
class ControllerMapping:
    """How a linear controller's tanh outputs (..., outputs) become the game's actions; works
    on NumPy arrays and torch tensors alike (the dream steps in torch)."""

    outputs: int
    to_action: Callable[[Any], Any]


@dataclass(frozen=True)
class Keymap:
    """``action(held_keys, pygame)`` -> the game's action, and a one-line help."""

    action: Callable[[Keys, Any], Any]
    help: str


@dataclass(frozen=True)
class GameEntry:
    spec: GameSpec
    controller: ControllerMapping | None = None
    policies: dict[str, PolicyFactory] = field(default_factory=dict)
    keymap: Keymap | None = None


_ENTRIES: dict[str, GameEntry] = {}
GENERIC_POLICIES: dict[str, PolicyFactory] = {"random": random_policy}
"""Collection policies every game has (``"random"``: :mod:`dream_gym.explore`)."""


def register_game(spec: GameSpec, *, controller: ControllerMapping | None = None,
                  policies: dict[str, PolicyFactory] | None = None,
                  keymap: Keymap | None = None) -> GameSpec:
    """Add a game (or replace the entry of the same name); returns its spec."""
    _ENTRIES[spec.name] = GameEntry(spec, controller, dict(policies or {}), keymap)
    return spec


def register_entry(entry: GameEntry) -> GameSpec:
    """Add a whole entry as another process registered it (a collection worker, a Ray
    actor: the parent's registry is the truth, theirs knows only the shipped games)."""
    return register_game(entry.spec, controller=entry.controller, policies=entry.policies,
                         keymap=entry.keymap)


def game_names() -> list[str]:
    return sorted(_ENTRIES)


def get_entry(name: str) -> GameEntry:
    try:
        return _ENTRIES[name]
    except KeyError:
        raise ValueError(
            f"Unknown game {name!r}; dream-gym knows {game_names()}. Pass one of these names "
            "or register yours with dream_gym.games.register_game(GameSpec(...))."
        ) from None


def get_game(name: str) -> GameSpec:
    """The :class:`GameSpec` registered as ``name``."""
    return get_entry(name).spec


def game_of_env_id(env_id: str) -> GameSpec:
    """The registered game whose real env is ``env_id``."""
    for entry in _ENTRIES.values():
        if entry.spec.env_id == env_id:
            return entry.spec
    raise ValueError(f"{env_id} is neither a Dream-* id nor a game dream-gym knows "
                     f"({sorted(e.spec.env_id for e in _ENTRIES.values())}).")


def controller_mapping(name: str) -> ControllerMapping:
    """The game's linear-controller mapping; a game that registered none gets one from its
    action space: Discrete(n) takes the argmax of n outputs, a Box rescales tanh to its
    bounds."""
    entry = get_entry(name)
    return entry.controller or _generic_controller(entry.spec)


def _generic_controller(spec: GameSpec) -> ControllerMapping:
    space = spec.action_space
    if spec.discrete:
        start = int(space.start)

        def argmax(a):
            return a.argmax(-1) + start

        return ControllerMapping(spec.action_dim, argmax)
    low = np.where(np.isfinite(space.low), space.low, -1.0).astype(np.float32)
    high = np.where(np.isfinite(space.high), space.high, 1.0).astype(np.float32)

    def rescale(a):
        lo, hi = (torch.from_numpy(low), torch.from_numpy(high)) \
            if isinstance(a, torch.Tensor) else (low, high)
        if isinstance(a, torch.Tensor):
            lo, hi = lo.to(a.device), hi.to(a.device)
        return lo + (a + 1) * (hi - lo) / 2

    return ControllerMapping(spec.action_dim, rescale)


def collection_policy(policy: str, game: str) -> PolicyFactory:
    """The data-collection policy ``policy`` for ``game``: its own, or a generic one."""
    own = get_entry(game).policies
    if policy in own:
        return own[policy]
    if policy in GENERIC_POLICIES:
        return GENERIC_POLICIES[policy]
    others = {n for e in _ENTRIES.values() for n in e.policies} - set(own)
    if policy in others:
        owner = next(e.spec.name for e in _ENTRIES.values() if policy in e.policies)
        raise ValueError(f"The {policy!r} policy is {owner}'s; {game} collects with "
                         f"{sorted(set(own) | set(GENERIC_POLICIES))}.")
    raise ValueError(f"Unknown collection policy {policy!r} for {game}; choose one of "
                     f"{sorted(set(own) | set(GENERIC_POLICIES))}.")


def keymap(name: str) -> Keymap:
    """The keys of ``dream-gym play``; a game without its own gets number keys (Discrete)."""
    entry = get_entry(name)
    if entry.keymap is not None:
        return entry.keymap
    if not entry.spec.discrete:
        raise ValueError(f"No keyboard mapping for {name}: register one with "
                         "register_game(..., keymap=Keymap(...)).")
    n, start = entry.spec.action_dim, int(entry.spec.action_space.start)

    def digits(held: Keys, k: Any) -> int:
        for i in range(1, min(n, 10)):
            if held[getattr(k, f"K_{i}")]:
                return start + i
        return start

    return Keymap(digits, f"keys 1-{min(n, 10) - 1}: actions ({start} when none is held)")


def real_space_check(spec: GameSpec) -> tuple[gym.Space, gym.Space]:
    """The spaces of the game itself (starts it), to check a spec's against."""
    env = spec.make()
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()
