"""Scoring in the real game: episodes run in worker processes, and an episode's result
depends only on its seed, never on how many games ran beside it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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


class _RecordedActions:
    """A dream that keeps every batch of actions it is stepped with."""

    def __init__(self, model) -> None:
        self.model, self.actions = model, []

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def imagine(self, state, action, temperature):
        self.actions.append(action.clone())
        return self.model.imagine(state, action, temperature)


def test_a_held_controller_decides_every_k_steps_in_the_game_and_in_the_dream(takecover,
                                                                              tmp_path):
    from dream_gym.training.controller import dream_score
    from dream_gym.zoo import load_contexts

    k = 4
    rng = np.random.default_rng(0)
    n = LinearController.num_params(takecover.feature_dim, 1)
    controller = LinearController("TakeCover", takecover.feature_dim,
                                  rng.normal(0, 0.3, n), hold=k)
    controller.save(tmp_path / "controller", {})
    controller, _ = LinearController.load(tmp_path / "controller")
    assert controller.hold == k

    def blocks_hold(actions: np.ndarray) -> bool:  # (T, ...) from the episode's start
        t = np.arange(len(actions))
        return bool((actions == actions[t - t % k]).all())

    record: list[dict[str, np.ndarray]] = []
    evaluate_controller(takecover, controller, 3, seed=7200, num_envs=2, progress=False,
                        max_steps=80, record=record)  # 2 games: episodes restart at odd times
    for ep in record:
        assert blocks_hold(ep["actions"])
        assert len(np.unique(ep["actions"][::k])) > 1  # it decides again, not once
    # the batched dream that CMA-ES scores candidates in holds them alike
    ctx = load_contexts(resolve("takecover"))
    dream = _RecordedActions(takecover)
    dream_score(dream, controller, 8, 1.0, 40, 0, (ctx["frames"], ctx["actions"]))
    steps = torch.stack([a.cpu() for a in dream.actions if len(a) == 8])
    assert len(steps) >= 2 * k and blocks_hold(steps.numpy())
    assert len(torch.unique(steps[::k])) > 1
    # per-step decisions (hold 1) change within a block somewhere: the test can tell
    per_step = LinearController("TakeCover", takecover.feature_dim, controller.flat())
    dream.actions.clear()
    dream_score(dream, per_step, 8, 1.0, 40, 0, (ctx["frames"], ctx["actions"]))
    assert not blocks_hold(torch.stack([a.cpu() for a in dream.actions if len(a) == 8]).numpy())
    with pytest.raises(ValueError, match="hold"):
        LinearController("TakeCover", takecover.feature_dim, controller.flat(), hold=0)
