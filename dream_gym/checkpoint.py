"""Checkpoints as safetensors + JSON, written atomically, read with clear errors.

Loading never unpickles: a downloaded checkpoint must not be able to run code.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

__all__ = ["CheckpointError", "atomic_write_bytes", "save_json", "load_json", "save_tensors",
           "load_tensors", "load_state_dict", "check_finite"]


class CheckpointError(RuntimeError):
    """A weight or config file is missing, corrupted or does not fit the model."""


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def load_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Missing config file {path}. Re-install dream-gym or retrain it.")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"Corrupted JSON in {path}: {e}. Restore or retrain it.") from e


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def load_tensors(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"Missing weight file {path}. Re-install dream-gym (the zoo ships it) or retrain "
            "the model with `dream-gym train`."
        )
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"Corrupted weight file {path} ({e}). Delete it and re-install or retrain."
        ) from e


def check_finite(tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """Refuse weights holding NaN or infinity: a model loaded from them would dream
    non-finite observations and rewards (or garbage frames) without any error."""
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(
                f"Weight file {path} holds {bad} NaN or infinite values in {name!r}: the file is "
                "damaged or its training diverged. Restore it (re-install dream-gym for a zoo "
                "model) or retrain from the last finite checkpoint.")


def load_state_dict(module: torch.nn.Module, path: str | Path) -> None:
    """Load safetensors weights into ``module``; a shape or key mismatch, or a non-finite
    weight, is a CheckpointError."""
    tensors = load_tensors(path)
    check_finite(tensors, path)
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"Weights in {path} do not fit {type(module).__name__}: {e}") from e
