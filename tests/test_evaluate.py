"""Scoring in the real game: episodes run in worker processes, and an episode's result
depends only on its seed, never on how many games ran beside it."""

from __future__ import annotations

import numpy as np
import pytest

from dream_gym.agents.controller import LinearController
from dream_gym.cli import main as cli
from dream_gym.evaluate import evaluate_controller, evaluate_random
from dream_gym.zoo import resolve

pytestmark = pytest.mark.slow  # real games in worker processes


def test_random_policy_returns_do_not_depend_on_the_number_of_worker_games():
    one = evaluate_random("TakeCover", 5, seed=7000, progress=False, num_envs=1)
    three = evaluate_random("TakeCover", 5, seed=7000, progress=False, num_envs=3)
    assert one["returns"] == three["returns"]
    assert len(set(one["returns"])) > 1  # distinct seeds give distinct episodes


def test_controller_returns_and_recorded_episodes_do_not_depend_on_worker_games(takecover):
    controller, _ = LinearController.load(resolve("takecover") / "controller")
    runs = []
    for n in (1, 3):
        record: list[dict[str, np.ndarray]] = []
        res = evaluate_controller(takecover, controller, 4, seed=7100, num_envs=n,
                                  progress=False, max_steps=150, explore=0.2, record=record)
        runs.append((res, record))
    (a, rec_a), (b, rec_b) = runs
    assert a["returns"] == b["returns"]
    assert len(rec_a) == len(rec_b) == 4
    for ea, eb, ret in zip(rec_a, rec_b, a["returns"], strict=True):
        np.testing.assert_array_equal(ea["actions"], eb["actions"])
        np.testing.assert_array_equal(ea["frames"], eb["frames"])
        # TakeCover pays +1 per step survived; an episode ends in death or at max_steps
        assert ea["rewards"].sum() == ret == len(ea["actions"]) <= 150
        assert ea["dones"][-1] or len(ea["actions"]) == 150


def test_evolve_command_writes_a_loadable_controller_and_resumes(tmp_path, capsys):
    args = ["evolve", "takecover", "--out", str(tmp_path), "--generations", "1",
            "--population", "4", "--rollouts", "2", "--max-steps", "50"]
    assert cli(args) == 0
    controller, meta = LinearController.load(tmp_path / "controller")
    assert meta["generations"] == 1 and meta["config"]["population"] == 4
    # a second run with more generations continues from the saved ES state
    assert cli(args[:5] + ["2"] + args[6:]) == 0
    _, meta = LinearController.load(tmp_path / "controller")
    assert meta["generations"] == 2
    assert "dream score" in capsys.readouterr().out
    # exploration noise in the training dreams: the setting is kept with the controller
    assert cli(args[:3] + [str(tmp_path / "noisy"), *args[4:], "--explore", "0.1"]) == 0
    _, meta = LinearController.load(tmp_path / "noisy" / "controller")
    assert meta["config"]["explore"] == 0.1
