"""What every trainer shares: resumable state on disk, TensorBoard, device and seeding."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from dream_gym.checkpoint import load_json, load_state_dict, load_tensors, save_json, save_tensors
from dream_gym.config import pick

__all__ = ["pick", "default_device", "torch_device", "seed_everything", "make_writer",
           "save_training_state", "load_training_state", "gradient_step"]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def torch_device(name: str | None) -> torch.device:
    """The device a ``--device`` flag names (None: :func:`default_device`), checked to exist
    here before any stage starts."""
    if name is None:
        return default_device()
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"--device {name!r} is not a torch device: use cpu, cuda or cuda:N "
                         f"({e}).") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: this torch sees no CUDA device "
                             f"(torch {torch.__version__}, cuda build {torch.version.cuda}); "
                             "install a CUDA build of torch on a GPU machine, or use --device cpu.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA devices "
                             "here (cuda:0 ..).")
    elif device.type != "cpu":
        raise ValueError(f"--device {name}: dream-gym runs on cpu or cuda devices.")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def gradient_step(opt: torch.optim.Optimizer, loss: torch.Tensor, model: torch.nn.Module,
                  grad_clip: float) -> None:
    """One update: backward, clip the global gradient norm, step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()


class _Silent:
    """The writer of a data-parallel process other than the first: logs nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def make_writer(log_dir: str | Path, cfg: Any) -> SummaryWriter:
    """A TensorBoard writer with the hyperparameters logged as a text table (as CleanRL does);
    under torchrun, process 0's alone (the others' log nothing)."""
    from dream_gym.training import ddp

    if not ddp.is_main():
        return _Silent()  # type: ignore[return-value]
    writer = SummaryWriter(str(log_dir))
    rows = "\n".join(f"|{k}|{v}|" for k, v in dataclasses.asdict(cfg).items())
    writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{rows}")
    return writer


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for k, v in state.items():
            if torch.is_tensor(v):
                tensors[f"{idx}.{k}"] = v
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, v in list(tensors.items()) + list(meta["scalars"].items()):
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def save_training_state(ckpt_dir: str | Path, model: torch.nn.Module,
                        opt: torch.optim.Optimizer, progress: dict[str, Any]) -> None:
    """Model, optimizer and progress counters; the progress JSON is written last, so a crash
    mid-save leaves the previous consistent checkpoint in place. Under torchrun process 0
    writes."""
    from dream_gym.training import ddp

    if not ddp.is_main():  # data-parallel processes hold the same weights: process 0 writes
        return
    d = Path(ckpt_dir)
    step = progress["step"]
    save_tensors(d / f"model_{step}.safetensors", model.state_dict())
    opt_tensors, opt_meta = _flatten_optimizer(opt)
    save_tensors(d / f"optim_{step}.safetensors", opt_tensors)
    save_json(d / f"optim_{step}.json", opt_meta)
    save_json(d / "progress.json", progress)
    for old in d.glob("*_*.*"):
        if old.stem.rsplit("_", 1)[-1] != str(step):
            old.unlink(missing_ok=True)


def load_training_state(ckpt_dir: str | Path, model: torch.nn.Module,
                        opt: torch.optim.Optimizer) -> dict[str, Any] | None:
    """Restore what :func:`save_training_state` wrote; None when there is nothing to resume."""
    d = Path(ckpt_dir)
    if not (d / "progress.json").exists():
        return None
    progress = load_json(d / "progress.json")
    step = progress["step"]
    load_state_dict(model, d / f"model_{step}.safetensors")
    opt.load_state_dict(_unflatten_optimizer(load_tensors(d / f"optim_{step}.safetensors"),
                                             load_json(d / f"optim_{step}.json")))
    return progress
