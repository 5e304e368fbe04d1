"""Bad input fails loudly, naming the problem and the fix."""

from __future__ import annotations

import json
import re
import shutil

import gymnasium as gym
import numpy as np
import pytest

from dream_gym.checkpoint import CheckpointError
from dream_gym.envs.latent import RealLatentObservation
from dream_gym.zoo import load_model, resolve


@pytest.fixture(scope="module")
def env():
    env = gym.make("Dream-TakeCover-v0")
    env.reset(seed=0)
    return env


@pytest.mark.parametrize("action", [3, -1, 1.5, "left", np.array([0, 1])])
def test_action_outside_the_space(env, action):
    with pytest.raises(ValueError, match="Invalid action .* Discrete\\(3\\)"):
        env.step(action)


@pytest.mark.parametrize("action", [float("nan"), np.float32("nan")])
def test_nan_action(env, action):
    with pytest.raises(ValueError, match="NaN"):
        env.step(action)


@pytest.fixture
def model_copy(tmp_path):
    dst = tmp_path / "takecover"
    shutil.copytree(resolve("takecover"), dst)
    return dst


def test_missing_weight_file(model_copy):
    (model_copy / "mdnrnn.safetensors").unlink()
    with pytest.raises(CheckpointError, match="Missing weight file .*mdnrnn.safetensors"):
        load_model(model_copy)


def test_corrupted_weight_file(model_copy):
    path = model_copy / "vae.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="Corrupted weight file .*vae.safetensors"):
        load_model(model_copy)


def test_corrupted_config(model_copy):
    (model_copy / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="Corrupted JSON"):
        load_model(model_copy)


def test_model_paired_with_the_wrong_game(model_copy):
    cfg = json.loads((model_copy / "config.json").read_text())
    assert cfg["game"] == "TakeCover"
    with pytest.raises(CheckpointError, match="trained on 'TakeCover', not 'CarRacing'"):
        load_model(model_copy, game="CarRacing")
    with pytest.raises(ValueError, match="simulates VizdoomTakeCover-v1.*CartPole-v1"):
        RealLatentObservation(gym.make("CartPole-v1"), str(model_copy))


def test_unknown_model_name():
    with pytest.raises(FileNotFoundError, match="No model 'nope'.*dream-gym zoo"):
        gym.make("Dream-TakeCover-v0", model="nope")


def test_unknown_refit_start_in_a_recipe():
    from dream_gym.training.iterate import IterateConfig

    with pytest.raises(ValueError, match="refit_from must be 'last', 'first' or 'scratch'"):
        IterateConfig(refit_from="best")
    with pytest.raises(ValueError, match="refit_from must be"):
        IterateConfig(rounds=2, refit_from=["first", "best"])
    with pytest.raises(ValueError, match="explore lists 2 values for 3 rounds"):
        IterateConfig(rounds=3, explore=[0.05, 0.01])
    cfg = IterateConfig(rounds=2, explore=[0.05, 0.01], refit_from=["first", "last"])
    assert (cfg.at("explore", 2), cfg.at("refit_from", 1), cfg.at("episodes", 2)) == \
        (0.01, "first", cfg.episodes)


def test_frame_gan_is_not_a_dream():
    with pytest.raises(CheckpointError, match="not a world model.*frame generator"):
        load_model("atari_gan")


def test_a_device_that_is_not_here_is_refused_before_any_stage(capsys):
    import torch

    from dream_gym.cli import main as cli

    if torch.cuda.is_available():
        missing = f"cuda:{torch.cuda.device_count()}"
        message = "CUDA devices here"
    else:
        missing, message = "cuda", "sees no CUDA device.*--device cpu"
    for name, why in ((missing, message), ("mps", "cpu or cuda"),
                      ("gpu", "not a torch device: use cpu, cuda or cuda:N")):
        with pytest.raises(SystemExit):
            cli(["evaluate", "takecover", "--device", name])
        assert re.search(why, capsys.readouterr().err)
