"""The real image-navigation world (GTM-SM, Fraccaro et al. 2018): walls, crops, and the
trajectory helper the GTM-SM trainer draws its data from."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import dream_gym  # noqa: F401
from dream_gym.envs.image_nav import (
    CROP,
    GRID,
    STRIDE,
    make_image,
    random_actions,
    walk,
)


def test_registered_env_passes_the_checker():
    env = gym.make("dream_gym:ImageNav-v0")
    check_env(env.unwrapped)
    assert env.spec.max_episode_steps == 512
    assert env.observation_space == gym.spaces.Box(0, 255, (CROP, CROP, 3), np.uint8)
    assert env.action_space == gym.spaces.Discrete(5)


def test_edges_are_walls_and_views_are_crops():
    env = gym.make("dream_gym:ImageNav-v0").unwrapped
    image = make_image(3)
    obs, info = env.reset(options={"image": image, "start": (0, GRID - 1)})
    assert np.array_equal(obs, image[:CROP, (GRID - 1) * STRIDE :])
    for action in (1, 4):  # up and right from the top-right corner: both into walls
        obs2, *_, info2 = env.step(action)
        assert np.array_equal(obs2, obs) and tuple(info2["position"]) == (0, GRID - 1)
    obs3, *_, info3 = env.step(2)  # down: one cell, 3 pixels
    assert tuple(info3["position"]) == (1, GRID - 1)
    assert np.array_equal(obs3, image[STRIDE : STRIDE + CROP, (GRID - 1) * STRIDE :])


def test_walk_replays_the_env_exactly():
    rng = np.random.default_rng(0)
    pics = np.stack([make_image(i, "test") for i in range(3)])
    actions = random_actions(rng, 3, 200)
    frames, pos = walk(pics, actions)
    env = gym.make("dream_gym:ImageNav-v0").unwrapped
    for b in range(3):
        obs, info = env.reset(options={"image": pics[b]})
        assert np.array_equal(obs, frames[b, 0])
        for t in range(200):
            obs, *_, info = env.step(int(actions[b, t]))
            assert np.array_equal(obs, frames[b, t + 1])
            assert np.array_equal(info["position"], pos[b, t + 1])


def test_pictures_are_fixed_per_index_and_splits_are_disjoint():
    assert np.array_equal(make_image(5, "train"), make_image(5, "train"))
    assert not np.array_equal(make_image(5, "train"), make_image(5, "test"))
    # pictures have structure at the crop scale: neighbouring views differ
    pic = make_image(0)
    views = [pic[r : r + CROP, c : c + CROP] for r in range(0, 25, 3) for c in range(0, 25, 3)]
    distinct = len({v.tobytes() for v in views})
    assert distinct == GRID * GRID


def test_bad_input_says_what_is_wrong():
    env = gym.make("dream_gym:ImageNav-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="0 stay, 1 up"):
        env.step(7)
    with pytest.raises(ValueError, match="32, 32, 3"):
        env.reset(options={"image": np.zeros((16, 16, 3), np.uint8)})
    with pytest.raises(ValueError, match="start"):
        env.reset(options={"start": (9, 0)})
    with pytest.raises(ValueError, match="split"):
        make_image(0, "validation")


def test_random_walks_cover_most_of_the_picture():
    """The GTM-SM paper chose 256 memorisation steps so that a walk sees most places."""
    actions = random_actions(np.random.default_rng(1), 64, 256)
    _, pos = walk(np.zeros((64, 32, 32, 3), np.uint8), actions)
    seen = [len({tuple(p) for p in walk_pos}) for walk_pos in pos]
    assert np.mean(seen) > 0.6 * GRID * GRID


@pytest.mark.slow  # training
def test_gtm_sm_learns_the_action_displacements_from_pixels_alone(tmp_path):
    """A short wall-free run of the GTM-SM trainer: with nothing but frames and action ids,
    the SSM learns that stay does not move, up undoes down, left undoes right, and the two
    axes are independent (the GTM-SM paper, Fig. 2c: a rotated, stretched copy of the grid)."""
    import torch

    from dream_gym.gtm_sm.gtm_sm import GTMSMConfig
    from dream_gym.training.gtm_sm import GTMSMTrainConfig, image_pool, train_gtm_sm

    cfg = GTMSMTrainConfig(images=200, steps=80, curriculum_steps=80, checkpoint_every=1000)
    net = train_gtm_sm(GTMSMConfig(hidden=128, state_dim=3), cfg, image_pool(200, "train"),
                       tmp_path, torch.device("cpu"))
    stay, up, down, left, right = net.displacement.weight.detach().T
    scale = torch.stack([up, down, left, right]).norm(dim=1).mean()
    assert stay.norm() < 0.1 * scale
    assert (up + down).norm() < 0.25 * scale and (left + right).norm() < 0.25 * scale
    cos = torch.dot(up, left) / (up.norm() * left.norm())
    assert abs(cos) < 0.8, cos
