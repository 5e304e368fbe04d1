"""The shipped GameGAN dream of ImageNav keeps places: its attention follows the memorised
walk, and what it reads there makes the predicted views at revisited places better."""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import dream_gym  # noqa: F401
from dream_gym.zoo import load_model

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
from memory_fidelity import attention_use, dream_predict, held_out_walks  # noqa: E402

pytestmark = pytest.mark.slow  # many predicted walks of the shipped model

MEMORISE, PREDICT = 256, 64


@pytest.fixture(scope="module")
def model():
    return load_model("imagenav_gamegan", game="ImageNav")


@pytest.fixture(scope="module")
def walks():
    """Held-out walks (test pictures, seed 7): 256 steps memorised, 64 predicted."""
    return held_out_walks(48, MEMORISE + PREDICT, seed=7)


def test_its_reads_make_revisited_places_better_than_the_same_model_without_them(model,
                                                                                  walks):
    frames, actions, pos = walks
    true = frames[:, MEMORISE + 1:].astype(np.float32)
    seen = np.array([[tuple(q) in {tuple(r) for r in p[: MEMORISE + 1]}
                      for q in p[MEMORISE + 1:]] for p in pos])
    assert seen.mean() > 0.5

    def revisited_error(reads: bool) -> np.ndarray:
        model.memory_reads = reads
        try:
            pred = dream_predict(model, frames, actions, MEMORISE, temperature=0.0)
        finally:
            model.memory_reads = True
        err = ((pred.astype(np.float32) - true) / 255) ** 2
        err = err.mean((2, 3, 4))
        return np.array([e[m].mean() for e, m in zip(err, seen, strict=True)])

    with_reads, zeroed = revisited_error(True), revisited_error(False)
    diff = zeroed - with_reads  # per walk, paired
    assert diff.mean() > 3 * diff.std(ddof=1) / np.sqrt(len(diff)), (with_reads.mean(),
                                                                      zeroed.mean())
    assert with_reads.mean() < 0.6 * zeroed.mean(), (with_reads.mean(), zeroed.mean())


def test_its_attention_follows_the_walk(model, walks):
    frames, actions, pos = walks
    use = attention_use(model, frames, actions, pos, MEMORISE)
    assert use["moved_on_free_moves"] > 0.8, use  # it moves when the view moves
    assert use["moved_on_blocked_moves"] < 0.1, use  # and not into a wall
    assert use["returns_to_the_first_visits_cell"] > 0.6, use  # a place keeps its cell


def test_the_registered_dream_starts_from_a_walk_the_user_memorised():
    from dream_gym.envs.image_nav import make_image, random_actions, walk

    pic = make_image(7, "test")[None]
    actions = random_actions(np.random.default_rng(0), 1, MEMORISE)
    frames, _ = walk(pic, actions)
    env = gym.make("dream_gym:Dream-ImageNav-GameGAN-v0")
    obs, _ = env.reset(seed=0, options={"context": {"frames": frames[0],
                                                    "actions": actions[0]}})
    np.testing.assert_array_equal(obs, frames[0, -1])  # the last memorised view
    assert env.observation_space.contains(env.step(4)[0])
