"""The model zoo: find model folders (also after a non-editable install) and load them.

A model folder has ``config.json`` (its ``family`` picks the class that loads it,
:mod:`dream_gym.families`; ``game_spec`` states the real game's interface), safetensors
weights, ``contexts.safetensors`` (real starting frames), optionally a dream-trained
``controller.safetensors`` + ``controller.json``, and ``CARD.md``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dream_gym.checkpoint import CheckpointError, load_json, load_state_dict, load_tensors
from dream_gym.contract import WorldModel
from dream_gym.families import get_family
from dream_gym.games import GameSpec, get_entry, register_game
from dream_gym.registration import locate, model_folders, user_zoo, zoo_root

__all__ = ["zoo_root", "list_models", "resolve", "load_model", "load_contexts", "load_baseline",
           "game_of_config"]


def list_models() -> list[str]:
    """Names of the shipped models (and of those under ``$DREAM_GYM_MODELS``)."""
    return sorted({p.name for p in model_folders(zoo_root()) + model_folders(user_zoo())})


def resolve(model: str | Path) -> Path:
    """The folder of a zoo name (``takecover``) or a path to a model folder; a bare name
    means the zoo entry even when the working directory has a folder of that name."""
    return locate(model)


def game_of_config(config: dict, where: Path) -> GameSpec:
    """The game a model's config names: the registered entry, checked against the spaces the
    config states; a game dream-gym does not know is registered from the config's facts."""
    name = config.get("game")
    facts = config.get("game_spec")
    try:
        spec = get_entry(name).spec
    except ValueError:
        if facts is None:
            raise CheckpointError(f"{where / 'config.json'} names game {name!r}, which dream-gym "
                                  "does not know, and states no game_spec to learn it from.") \
                from None
        return register_game(GameSpec.from_facts(facts))
    if facts is not None:
        stated = GameSpec.from_facts(facts).real_spaces()
        if stated != spec.real_spaces():
            raise CheckpointError(
                f"{where} was trained on a {name} whose spaces were {stated}, but dream-gym's "
                f"{name} has {spec.real_spaces()}: the game changed since. Retrain the model "
                "on the current game.")
    return spec


def load_model(model: str | Path, device: str | torch.device = "cpu",
               game: str | None = None) -> WorldModel:
    """Load a model folder as a :class:`~dream_gym.contract.WorldModel`.

    Raises:
        CheckpointError: a file is missing or corrupted, a weight is not finite, the folder
            holds no world model, or the model was trained on a different game than ``game``.
    """
    d = resolve(model)
    config = load_json(d / "config.json")
    try:
        family = get_family(config.get("family"))
    except ValueError as e:
        raise CheckpointError(f"{d / 'config.json'}: {e}") from None
    if family.model is None:
        raise CheckpointError(f"{d} is not a world model. {family.not_a_dream}")
    if game is not None and config.get("game") != game:
        raise CheckpointError(
            f"Model {d} was trained on {config.get('game')!r}, not {game!r}: a world model only "
            f"simulates the game it was trained on. Pick a {game} model from `dream-gym zoo`."
        )
    game_of_config(config, d)
    loaded = family.model_class().from_config(d, config, device)
    loaded.folder = d  # where it came from: Ray workers load their own copy from it
    return loaded


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
