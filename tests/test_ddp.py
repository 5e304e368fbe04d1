"""V and M trained data-parallel by 2 processes (torchrun, gloo) follow the one-process
learning curve with the same global batch (dream_gym.training.ddp)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from dream_gym.checkpoint import load_tensors
from dream_gym.data import load_episodes
from dream_gym.training.mdnrnn import SequenceSampler, held_out_loss
from dream_gym.world_models.mdnrnn import MDNRNN, MDNRNNConfig
from dream_gym.world_models.vae import ConvVAE, VAEConfig, to_input

pytestmark = pytest.mark.slow  # collects real frames and trains twice

RECIPE = """
name = "{name}"
game = "TakeCover"
seed = 0

[collect]
episodes = 6
episodes_per_shard = 1
workers = 1
max_steps = 80

[vae]
z_dim = 16
steps = 60
batch_size = 32
lr = 1e-3
checkpoint_every = 30

[mdnrnn]
hidden = 64
gaussians = 3
steps = 60
batch_size = 8
seq_len = 16
lr = 1e-3
done_window = 30
checkpoint_every = 30
"""

# 2 processes draw the VAE's noise for their own rows and normalise M's masked losses over
# their own share, so the curves agree to a few percent, not bit for bit. Measured on one
# AMD EPYC: V 17.75 (1 process) vs 18.57 (2), M 9808.5 vs 9834.5 (docs/scaling.md); after
# 60 updates V's loss still falls fast, so its tolerance is the wider.
TOLERANCE = {"V": 0.10, "M": 0.02}


def _train(tmp_path, name: str, processes: int) -> None:
    recipe = tmp_path / f"{name}.toml"
    recipe.write_text(RECIPE.format(name=name))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "dream_gym.cli", "train", str(recipe), "--runs",
           str(tmp_path / "runs")]
    if processes > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={processes}", "-m", "dream_gym.cli", *cmd[3:]]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]


def _losses(tmp_path, name: str, frames: torch.Tensor, batches) -> tuple[float, float]:
    run = tmp_path / "runs" / name
    vae = ConvVAE(VAEConfig(z_dim=16))
    vae.load_state_dict(load_tensors(run / "vae" / "final.safetensors"))
    torch.manual_seed(0)
    with torch.no_grad():
        v = vae.loss(frames)[0].item()
    rnn = MDNRNN(MDNRNNConfig(z_dim=16, action_dim=3, hidden=64, gaussians=3,
                              gamevars=1, done_window=30))
    rnn.load_state_dict(load_tensors(run / "mdnrnn" / "final.safetensors"))
    return v, held_out_loss(rnn, batches, torch.device("cpu"))["total"]


def test_two_processes_learn_as_one_with_the_same_global_batch(tmp_path):
    _train(tmp_path, "one", 1)
    _train(tmp_path, "two", 2)
    one, two = tmp_path / "runs" / "one", tmp_path / "runs" / "two"
    for shard in sorted((one / "data").glob("*.npz")):  # rank 0 collected the same data
        a, b = np.load(shard), np.load(two / "data" / shard.name)
        np.testing.assert_array_equal(a["frames"], b["frames"])
    episodes = load_episodes(one / "data")
    frames = to_input(torch.from_numpy(episodes.frames[::4]))
    lat = load_tensors(one / "vae" / "latents.safetensors")
    sampler = SequenceSampler(episodes, lat["mu"].numpy(), lat["logvar"].numpy(), "TakeCover",
                              1.0, 16, np.random.default_rng(5), done_window=30)
    batches = [sampler.sample(8) for _ in range(4)]
    v1, m1 = _losses(tmp_path, "one", frames, batches)
    v2, m2 = _losses(tmp_path, "two", frames, batches)
    untrained_v = ConvVAE(VAEConfig(z_dim=16))
    with torch.no_grad():
        v0 = untrained_v.loss(frames)[0].item()
    print(f"V loss: untrained {v0:.2f}, 1 process {v1:.2f}, 2 processes {v2:.2f}; "
          f"M held-out loss: 1 process {m1:.4f}, 2 processes {m2:.4f}")
    assert v1 < 0.8 * v0 and v2 < 0.8 * v0, (v0, v1, v2)  # both learned
    assert abs(v1 - v2) / v1 < TOLERANCE["V"], (v1, v2)
    assert abs(m1 - m2) / abs(m1) < TOLERANCE["M"], (m1, m2)
