"""The model zoo: find shipped models (also after a non-editable install) and load them.

A zoo entry is a folder with ``config.json`` (its ``family`` picks the loader), safetensors
weights, ``contexts.safetensors`` (real starting frames) and optionally a dream-trained
``controller.safetensors`` + ``controller.json``, and ``CARD.md``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from dream_gym.checkpoint import CheckpointError, load_json, load_state_dict, load_tensors

__all__ = ["zoo_root", "list_models", "resolve", "load_model", "load_contexts", "load_baseline",
           "FAMILIES"]

FAMILIES: dict[str, str] = {
    "world_models": "dream_gym.world_models.model:WorldModelsDream",
    "gtm_sm": "dream_gym.gtm_sm.model:GTMSMDream",
}


def zoo_root() -> Path:
    """``dream_gym/zoo`` inside an installed wheel, else ``models/`` of a source checkout."""
    installed = Path(__file__).parent / "zoo"
    return installed if installed.is_dir() else Path(__file__).parent.parent / "models"


def list_models() -> list[str]:
    root = zoo_root()
    return sorted(p.name for p in root.iterdir() if (p / "config.json").exists()) \
        if root.is_dir() else []


def resolve(model: str | Path) -> Path:
    """A zoo name (``takecover``) or a path to a model folder."""
    p = Path(model)
    if (p / "config.json").exists() or p.is_dir():
        return p
    candidate = zoo_root() / str(model)
    if candidate.is_dir():
        return candidate
    raise FileNotFoundError(
        f"No model {model!r}: not a folder and not in the zoo at {zoo_root()} "
        f"(shipped: {list_models()}). Pass a model folder or a name from `dream-gym zoo`."
    )


def load_model(model: str | Path, device: str | torch.device = "cpu",
               game: str | None = None):
    """Load a zoo model as a :class:`~dream_gym.contract.WorldModel`.

    Raises:
        CheckpointError: a file is missing or corrupted, or the model was trained on a
            different game than ``game``.
    """
    d = resolve(model)
    config = load_json(d / "config.json")
    family = config.get("family")
    if family == "frame_gan":
        raise CheckpointError(
            f"{d} is a frame generator (the Atari frame GAN), not a world model: it draws "
            "frames but has no dynamics to step. Load it with "
            "dream_gym.training.frame_gan.load_generator."
        )
    if family not in FAMILIES:
        raise CheckpointError(
            f"{d / 'config.json'} names family {family!r}; dream-gym knows {sorted(FAMILIES)}."
        )
    if game is not None and config.get("game") != game:
        raise CheckpointError(
            f"Model {d} was trained on {config.get('game')!r}, not {game!r}: a world model only "
            f"simulates the game it was trained on. Pick a {game} model from `dream-gym zoo`."
        )
    module, cls = FAMILIES[family].split(":")
    return getattr(importlib.import_module(module), cls).from_config(d, config, device)


def load_contexts(model: str | Path) -> dict[str, torch.Tensor]:
    """The real starting contexts shipped with a model: ``frames`` (N, T, S, S, 3) uint8,
    ``actions`` (N, T - 1, *action_shape) and ``gamevars`` (N, G) seen with the last frame."""
    t = load_tensors(resolve(model) / "contexts.safetensors")
    missing = {"frames", "actions", "gamevars"} - set(t)
    if missing:
        raise CheckpointError(f"contexts.safetensors of {model} lacks {sorted(missing)}")
    return t


def load_baseline(model: str | Path):
    """The memory-less MDN-RNN some zoo entries ship beside their model for benchmarks
    (``baseline_mdnrnn.safetensors``, config under ``baseline_mdnrnn``)."""
    from dream_gym.world_models.mdnrnn import MDNRNN, MDNRNNConfig

    d = resolve(model)
    config = load_json(d / "config.json")
    if "baseline_mdnrnn" not in config:
        raise CheckpointError(f"{d} ships no baseline MDN-RNN (no 'baseline_mdnrnn' in config).")
    rnn = MDNRNN(MDNRNNConfig(**config["baseline_mdnrnn"]))
    load_state_dict(rnn, d / "baseline_mdnrnn.safetensors")
    return rnn.eval()
