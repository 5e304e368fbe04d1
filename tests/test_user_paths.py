"""What a new user meets first: each case here was a bug found by using the library as one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from dream_gym.checkpoint import CheckpointError, load_tensors, save_tensors
from dream_gym.games import GameSpec, get_game
from dream_gym.zoo import load_model, resolve


def test_a_folder_named_like_a_zoo_entry_does_not_shadow_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "takecover").mkdir()  # e.g. a run folder of the user's
    assert resolve("takecover") == resolve(str(resolve("takecover")))
    env = gym.make("dream_gym:Dream-TakeCover-v0", obs_type="latent")
    env.reset(seed=0)
    with pytest.raises(FileNotFoundError, match="not a model folder .*no config.json"):
        resolve("./takecover")


def test_a_box_game_without_its_own_random_action_samples_uniformly():
    spec = GameSpec(name="Pendulum-pixels", env_id="Pendulum-v1",
                    observation_space=gym.spaces.Box(0, 255, (32, 32, 3), np.uint8),
                    action_space=gym.spaces.Box(-2.0, 2.0, (1,), np.float32))
    a = spec.sample_actions(np.random.default_rng(0), 2000)
    assert a.shape == (2000, 1) and spec.action_space.contains(a[0])
    assert abs(a.mean()) < 0.1 and a.min() < -1.9 and a.max() > 1.9


def test_weights_holding_nan_or_infinity_are_refused(tmp_path):
    dst = tmp_path / "takecover"
    shutil.copytree(resolve("takecover"), dst)
    weights = load_tensors(dst / "mdnrnn.safetensors")
    name = max(weights, key=lambda k: weights[k].numel())
    weights[name].view(-1)[3] = float("nan")
    save_tensors(dst / "mdnrnn.safetensors", weights)
    with pytest.raises(CheckpointError, match=f"NaN or infinite values in '{name}'.*retrain"):
        load_model(dst)
    weights[name].view(-1)[3] = float("inf")
    save_tensors(dst / "mdnrnn.safetensors", weights)
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        gym.make("Dream-TakeCover-v0", model=str(dst))


def test_making_a_dream_never_starts_the_real_game(monkeypatch):
    def refuse(self, **kwargs):
        raise AssertionError(f"the real {self.env_id} was started")

    monkeypatch.setattr(GameSpec, "make", refuse)
    for env_id in ("Dream-TakeCover-v0", "Dream-CarRacing-v0", "Dream-ImageNav-v0"):
        env = gym.make(f"dream_gym:{env_id}")
        env.reset(seed=0)
        env.step(env.action_space.sample())
        venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
        venv.reset(seed=0)


@pytest.mark.slow  # starts the real games
def test_the_shipped_spaces_are_the_real_games():
    """The spaces stated in the game entries and model configs (what a dream uses instead
    of starting the game) equal those the real games report."""
    from dream_gym.games.registry import real_space_check

    for name in ("TakeCover", "CarRacing", "ImageNav"):
        spec = get_game(name)
        assert real_space_check(spec) == spec.real_spaces(), name


def test_a_model_whose_game_changed_its_spaces_is_refused(tmp_path):
    dst = tmp_path / "carracing"
    shutil.copytree(resolve("carracing"), dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["game_spec"]["action_space"]["shape"] = [4]
    cfg["game_spec"]["action_space"]["low"] = -1.0
    (dst / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="the game changed since"):
        load_model(dst)


@pytest.mark.slow  # starts the real games
def test_the_real_takecover_leaves_the_working_directory_clean(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = get_game("TakeCover").make()
    env.reset(seed=0)
    env.step(0)
    env.close()
    assert os.listdir(tmp_path) == []


def test_evolve_without_a_recipe_takes_the_model_s_own(tmp_path):
    """``dream-gym evolve carracing`` once ran with TakeCover's settings and no off-track
    stop; now the model's recipe gives them, and flags override them."""
    from dream_gym.cli import main

    out = tmp_path / "c"
    assert main(["evolve", "carracing", "--out", str(out), "--generations", "1",
                 "--population", "4", "--rollouts", "1", "--eval-rollouts", "4",
                 "--max-steps", "30"]) == 0
    cfg = json.loads((out / "controller.json").read_text())["config"]
    assert cfg["off_track_patience"] == 15 and cfg["temperature"] == 1.0  # the recipe's
    assert cfg["max_steps"] == 30 and cfg["generations"] == 1  # the flags'


def test_every_controller_setting_is_a_flag():
    import dataclasses

    from dream_gym.cli import main
    from dream_gym.training.controller import ControllerTrainConfig

    help_text = subprocess.run([sys.executable, "-m", "dream_gym.cli", "evolve", "--help"],
                               capture_output=True, text=True, check=True).stdout
    for f in dataclasses.fields(ControllerTrainConfig):
        assert f"--{f.name.replace('_', '-')}" in help_text, f.name
    with pytest.raises(SystemExit):
        main(["evolve", "carracing", "--out", "x", "--generatons", "3"])


def test_a_misspelled_key_in_a_shipped_recipe_is_an_error(tmp_path):
    from dream_gym.config import RecipeError
    from dream_gym.training.recipe import find_recipe, load_recipe

    text = find_recipe("takecover").read_text().replace("generations = 25", "generatons = 25")
    (tmp_path / "t.toml").write_text(text)
    with pytest.raises(RecipeError, match="'generatons' in \\[controller\\].*'generations'"):
        load_recipe(tmp_path / "t.toml")
    for name in ("takecover", "carracing", "imagenav", "atari_gan"):
        assert load_recipe(name)["name"] == name


def test_the_frame_gan_loads_from_its_own_package():
    from dream_gym.frame_gan import load_generator, sample

    frames = sample(load_generator(resolve("atari_gan")), 4, seed=0)
    assert frames.shape == (4, 3, 64, 64) and torch.isfinite(frames).all()
