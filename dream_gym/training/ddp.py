"""Data-parallel training with PyTorch's DistributedDataParallel, under ``torchrun``.

    torchrun --nproc-per-node 2 -m dream_gym.cli train training/takecover.toml

Every process draws the same global batch from the same generator and trains on its
contiguous 1/world share of the rows; DDP averages the gradients, which for a loss that
is a mean over rows is the global batch's gradient, so the learning curve is the one
process's with the same ``batch_size`` (to float rounding, and to the noise that each
process draws for its own rows: the VAE's reparameterisation; ``tests/test_ddp.py`` states
the tolerance). GameGAN's stages, whose updates run several losses and optimisers over one
rollout, average the gradients themselves (:func:`average_gradients`: the all-reduce that
DDP runs in its hooks). Process 0 writes checkpoints, TensorBoard and the recipe's files; the other
stages of a recipe run on process 0 while the others wait. Backend: NCCL on CUDA devices
(``LOCAL_RANK`` picks the GPU), gloo on CPUs. Without ``torchrun`` nothing changes.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

__all__ = ["world", "rank", "is_main", "setup", "share", "parallel", "barrier", "LossModule",
           "average_gradients", "any_process", "shared_draw"]


def world() -> int:
    """Processes training together (``WORLD_SIZE`` under torchrun; 1 otherwise)."""
    return dist.get_world_size() if dist.is_initialized() else int(os.environ.get("WORLD_SIZE", 1))


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", 0))


def is_main() -> bool:
    """Whether this process writes files (process 0, or the only one)."""
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group torchrun describes (once); returns this process's device (its
    ``LOCAL_RANK``'s GPU on CUDA)."""
    if world() > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda" and world() > 1:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def share(batch: Any) -> Any:
    """This process's contiguous rows of a global batch (a tensor, or a dict of them with
    one leading batch dimension)."""
    if world() == 1:
        return batch
    if isinstance(batch, dict):
        return {k: share(v) for k, v in batch.items()}
    n, w, r = len(batch), world(), rank()
    if n % w:
        raise ValueError(f"A global batch of {n} rows does not split over {w} processes: "
                         f"make batch_size a multiple of {w}.")
    return batch[r * n // w:(r + 1) * n // w]


class LossModule(torch.nn.Module):
    """``model.<method>(...)`` as a module's forward, so DDP's gradient hooks see the loss
    computed (a model's ``loss`` is not its ``forward``)."""

    def __init__(self, model: torch.nn.Module, method: str = "loss") -> None:
        super().__init__()
        self.model, self.method = model, method

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.model, self.method)(*args, **kwargs)


def parallel(model: torch.nn.Module, method: str = "loss") -> torch.nn.Module:
    """A callable computing ``model.<method>``: through DDP when several processes train,
    else the model's own method."""
    if world() == 1:
        return LossModule(model, method)
    return DistributedDataParallel(LossModule(model, method), find_unused_parameters=True)


def average_gradients(params: Any) -> None:
    """Average each parameter's gradient over the processes (what DDP's hooks do), for a
    loop whose loss is a mean over this process's share of the global batch; nothing with
    one process. Every process must call it with the same parameters in the same order."""
    if world() == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world()


def any_process(flag: bool) -> bool:
    """Whether ``flag`` holds in any process (one process: ``flag``): so that all stop
    together, e.g. at a time limit that one process's clock reached first."""
    if world() == 1:
        return flag
    # NCCL reduces CUDA tensors only
    t = torch.tensor([float(flag)], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def shared_draw(draw: Any, rows: int, *shape: int, device: Any = None) -> torch.Tensor:
    """``draw`` (``torch.randn`` or ``torch.rand``) for this process's ``rows`` of a global
    batch: every process draws the whole batch's noise from the same stream and keeps its
    share, so that the rows see the noise they would see in one process (one process: the
    same call as without it)."""
    return share(draw(rows * world(), *shape, device=device))
