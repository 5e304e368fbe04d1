"""Exploration noise inside dreams (``ControllerTrainConfig.explore``): seed 003's held random
actions, as data collection plays them in the real game."""

import numpy as np
import torch

from dream_gym.explore import HeldExploration
from dream_gym.games import get_game


def test_held_exploration_replaces_the_expected_share_in_held_runs():
    game = get_game("CarRacing")
    n, steps, p, max_hold = 64, 600, 0.05, 12
    noise = HeldExploration(game, n, p, max_hold, np.random.default_rng(0))
    policy = torch.full((n, 3), 7.0)  # no random action is 7: replaced entries show
    rows = torch.arange(n)
    out = np.stack([noise(policy, rows).numpy() for _ in range(steps)])  # (T, n, 3)
    replaced = (out != 7.0).all(-1)
    # renewal: a free step starts a run with chance p; runs last U{1..max_hold} steps
    mean_run = (max_hold + 1) / 2
    expected = mean_run / (mean_run + (1 - p) / p)
    assert abs(replaced.mean() - expected) < 0.03, (replaced.mean(), expected)
    # each run holds one action, for at most max_hold steps
    for i in range(n):
        t = 0
        while t < steps:
            if not replaced[t, i]:
                t += 1
                continue
            end = t
            while end < steps and replaced[end, i] and (out[end, i] == out[t, i]).all():
                end += 1
            assert end - t <= max_hold
            t = end


def test_held_exploration_advances_only_the_rows_it_is_given():
    game = get_game("CarRacing")
    noise = HeldExploration(game, 4, 1.0, 5, np.random.default_rng(1))  # always explores
    first = noise(torch.zeros(4, 3), torch.arange(4))
    held = noise.held.copy()
    # rows 0 and 2 ended (dropped from the batch): their runs do not advance
    again = noise(torch.zeros(2, 3), torch.tensor([1, 3]))
    assert (noise.held[[0, 2]] == held[[0, 2]]).all()
    for j, i in enumerate((1, 3)):
        if held[i] > 0:  # a run still going keeps its action, one step shorter
            assert noise.held[i] == held[i] - 1
            np.testing.assert_array_equal(again[j].numpy(), first[i].numpy())
        else:  # a new run starts (p = 1): this step and up to 4 more
            assert 0 <= noise.held[i] <= 4
