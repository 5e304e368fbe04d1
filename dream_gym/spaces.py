"""Gymnasium spaces as plain JSON, so a model folder can state its real game's interface.

A dream must have exactly the real game's observation and action spaces. Reading them from
the game means starting it (ViZDoom spawns an engine and, on a machine without sound, prints
audio errors); a model's ``config.json`` stores them instead, written with
:func:`space_to_json` when the model is saved.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

__all__ = ["space_to_json", "space_from_json"]


def _array(x: np.ndarray) -> Any:
    """A bound as JSON: one number when every entry is the same (as Gymnasium prints it)."""
    flat = np.unique(x)
    if len(flat) == 1:
        return _number(flat[0])
    return [_number(v) for v in x.ravel()]


def _number(v: Any) -> float | int | str:
    v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return "inf" if v > 0 else "-inf"
    return v


def _bound(x: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if isinstance(x, list):
        return np.asarray([float(v) if isinstance(v, str) else v for v in x], dtype).reshape(shape)
    return np.full(shape, float(x) if isinstance(x, str) else x, dtype)


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """A JSON-able description of a Box, Discrete, MultiBinary, MultiDiscrete or Dict space."""
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": space.dtype.name,
                "low": _array(space.low), "high": _array(space.high)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist(),
                "start": space.start.tolist()}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(v) for k, v in space.spaces.items()}}
    raise TypeError(f"dream-gym cannot store a {type(space).__name__} space; it handles Box, "
                    "Discrete, MultiBinary, MultiDiscrete and Dict.")


def space_from_json(d: dict[str, Any]) -> spaces.Space:
    """The space :func:`space_to_json` described."""
    kind = d.get("type")
    if kind == "Box":
        shape, dtype = tuple(d["shape"]), np.dtype(d["dtype"])
        return spaces.Box(_bound(d["low"], shape, dtype), _bound(d["high"], shape, dtype),
                          shape, dtype)
    if kind == "Discrete":
        return spaces.Discrete(d["n"], start=d.get("start", 0))
    if kind == "MultiBinary":
        return spaces.MultiBinary(d["n"])
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(d["nvec"], start=d.get("start"))
    if kind == "Dict":
        return spaces.Dict({k: space_from_json(v) for k, v in d["spaces"].items()})
    raise ValueError(f"Unknown space description {d!r}: expected a 'type' of Box, Discrete, "
                     "MultiBinary, MultiDiscrete or Dict.")
