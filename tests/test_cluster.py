"""The stages on a local Ray cluster of 2 workers give what one process gives, bit for bit:
collection shards, real-game scores and a CMA-ES run (dream_gym.cluster)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray", reason='the cluster tests need the ray extra: pip install ".[test]"')

from dream_gym import cluster  # noqa: E402
from dream_gym.agents.controller import LinearController  # noqa: E402
from dream_gym.checkpoint import load_json  # noqa: E402
from dream_gym.data import CollectConfig, collect, shard_path  # noqa: E402
from dream_gym.evaluate import evaluate_controller, evaluate_random  # noqa: E402
from dream_gym.games import controller_mapping, register_game  # noqa: E402
from dream_gym.games.derive import game_from_env  # noqa: E402
from dream_gym.training.controller import ControllerTrainConfig, train_in_dream  # noqa: E402
from dream_gym.zoo import load_model  # noqa: E402

pytestmark = pytest.mark.slow  # starts Ray and real games


@pytest.fixture(scope="module")
def two_workers():
    assert cluster.init(num_workers=2) == 2
    yield
    cluster.shutdown()


def test_collection_on_the_cluster_writes_the_same_shards(tmp_path, two_workers):
    cfg = CollectConfig("TakeCover", episodes=4, episodes_per_shard=1, max_steps=40, seed=3)
    here, there = tmp_path / "here", tmp_path / "there"
    assert collect(cfg, here, ray=False) == collect(cfg, there) > 0  # init: the cluster
    for shard in range(4):
        a, b = np.load(shard_path(here, shard)), np.load(shard_path(there, shard))
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"shard {shard}: {key}")


def test_real_scores_on_the_cluster_are_the_same_episodes(two_workers):
    model = load_model("takecover")
    # a weak controller: whole episodes, short, ending at different steps
    params = np.random.default_rng(0).normal(0, 0.1, LinearController.num_params(
        model.feature_dim, controller_mapping("TakeCover").outputs))
    controller = LinearController("TakeCover", model.feature_dim, params)
    for ray in (False, True):  # episodes cut at 300 steps: most end before
        r = evaluate_random("TakeCover", 6, seed=500, progress=False, max_steps=300, ray=ray)
        c = evaluate_controller(model, controller, 6, seed=500, progress=False, max_steps=300,
                                ray=ray)
        if not ray:
            local = (r["returns"], c["returns"])
    assert (r["returns"], c["returns"]) == local
    assert len(set(r["returns"])) > 1 and len(set(c["returns"])) > 1  # distinct episodes
    with pytest.raises(ValueError, match="ray=False"):
        evaluate_controller(model, controller, 2, explore=0.1, ray=True)


def test_cma_es_on_the_cluster_follows_the_same_search(tmp_path, two_workers):
    cfg = ControllerTrainConfig(temperature=1.15, generations=5, population=6, rollouts=2,
                                max_steps=60, eval_rollouts=8, seed=4)
    runs = [train_in_dream("takecover", cfg, tmp_path / name / "es", "cpu",
                           export_dir=tmp_path / name, progress=False, ray=ray)
            for name, ray in (("here", False), ("there", True))]
    assert runs[0]["dream_score"] == runs[1]["dream_score"]
    here, there = (LinearController.load(tmp_path / n / "controller")[0] for n in ("here",
                                                                                      "there"))
    np.testing.assert_array_equal(here.W.numpy(), there.W.numpy())
    history = [load_json(tmp_path / n / "es" / "es.json")["history"] for n in ("here", "there")]
    assert history[0] == history[1] and len(history[0]) == 5
    with pytest.raises(ValueError, match="explore"):
        train_in_dream("takecover", ControllerTrainConfig(explore=0.1, max_steps=10),
                       tmp_path / "x", "cpu", progress=False, ray=True)


def test_a_game_registered_at_run_time_plays_on_the_cluster(tmp_path, two_workers, drift_env):
    """A user's game, registered in this process only (as ``build`` registers a constructor),
    is known to the workers: its shards and random scores there are this process's."""

    register_game(game_from_env(drift_env, "Drift"))
    # workers=1: here in this process (tests/test_data.py checks a spawned pool's shards)
    cfg = CollectConfig("Drift", episodes=4, episodes_per_shard=1, max_steps=40, seed=5,
                        workers=1)
    here, there = tmp_path / "here", tmp_path / "there"
    assert collect(cfg, here, ray=False) == collect(cfg, there, ray=True) > 0
    for shard in range(4):
        a, b = np.load(shard_path(here, shard)), np.load(shard_path(there, shard))
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"shard {shard}: {key}")
    r = [evaluate_random("Drift", 6, seed=9, progress=False, ray=ray)["returns"]
         for ray in (False, True)]
    assert r[0] == r[1] and len(set(r[0])) > 1
