"""The shipped GTM-SM dream of ImageNav: it remembers places, knows where it is, and beats a
memory-less MDN-RNN on pictures it never trained on (the GTM-SM paper's claims, on a small
budget)."""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import dream_gym  # noqa: F401
from dream_gym.envs.image_nav import make_image, random_actions, walk
from dream_gym.zoo import load_baseline, load_model

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
from memory_fidelity import (  # noqa: E402
    dream_predict,
    held_out_walks,
    mdnrnn_predict,
    per_step_mse,
    position_r2,
)

pytestmark = pytest.mark.slow  # many predicted walks of the shipped model


@pytest.fixture(scope="module")
def imagenav():
    return load_model("imagenav", game="ImageNav")


@pytest.fixture(scope="module")
def walks():
    """Held-out walks (test pictures, seed 7): 256 steps memorised, 64 predicted."""
    return held_out_walks(48, 256 + 64, seed=7)


def _out_and_back(actions, pic, seen):
    """Three moves one way and three back, through places the memorised walk saw."""
    for out, back in ((4, 3), (3, 4), (2, 1), (1, 2)):
        path = [out] * 3 + [back] * 3
        _, pos = walk(pic, np.concatenate([actions, [path]], 1))
        places = [tuple(p) for p in pos[0, 256:]]
        if len(set(places)) == 4 and set(places) <= seen:
            return path
    return None


def test_returning_to_a_seen_place_reproduces_what_was_seen():
    """Memorise a real walk, then in the dream walk three cells away and back through places
    the walk saw: the dream shows what the real world shows there, and the frame on return
    is the one the dream showed before leaving."""
    env = gym.make("dream_gym:Dream-ImageNav-v0", temperature=0.05)
    rng = np.random.default_rng(3)
    path_err, return_err, other_err = [], [], []
    for i in range(40):
        pic = make_image(20_000 + i, "test")[None]
        actions = random_actions(rng, 1, 256)
        frames, pos = walk(pic, actions)
        path = _out_and_back(actions, pic, {tuple(p) for p in pos[0]})
        if path is None:
            continue
        real, _ = walk(pic, np.concatenate([actions, [path]], 1))
        obs, _ = env.reset(seed=i, options={"context": {"frames": frames[0],
                                                        "actions": actions[0]}})
        dream = [obs]
        for a in path:
            obs, *_ = env.step(a)
            dream.append(obs)
        dream = np.stack(dream).astype(np.float32) / 255
        truth = real[0, 256:].astype(np.float32) / 255
        path_err.append(((dream - truth) ** 2).mean())
        return_err.append(((dream[-1] - dream[0]) ** 2).mean())
        other = make_image(30_000 + i, "test")[:8, :8].astype(np.float32) / 255
        other_err.append(((other - truth[0]) ** 2).mean())
    assert len(path_err) >= 20
    on_path, on_return, other = map(np.mean, (path_err, return_err, other_err))
    assert on_path < 0.2 * other, (on_path, other)
    assert on_return < 0.2 * other, (on_return, other)


def test_gtm_sm_predicts_far_better_than_the_memoryless_baseline(imagenav, walks):
    frames, actions, _ = walks
    true = frames[:, 257:]
    gtm = per_step_mse(dream_predict(imagenav, frames, actions, 256), true)
    base = per_step_mse(mdnrnn_predict(imagenav, load_baseline("imagenav"), frames, actions,
                                       256), true)
    diff = base.mean(1) - gtm.mean(1)  # per walk, paired: baseline error minus GTM-SM's
    assert diff.mean() > 3 * diff.std(ddof=1) / np.sqrt(len(diff)), (gtm.mean(), base.mean())
    # the bar is a third over 256 steps (benchmarks/memory_fidelity.py measures it);
    # on these 64 steps the ratio must at least be well under a half
    assert gtm.mean() < 0.45 * base.mean(), (gtm.mean(), base.mean())


def test_inferred_states_are_the_true_positions_up_to_a_linear_map(imagenav, walks):
    frames, actions, pos = walks
    assert position_r2(imagenav, frames, actions, pos) >= 0.95
