"""Held random actions, written once (dream_gym.explore): the exploration noise inside dreams,
in real-game data collection, and the random policy, each on the random stream its shipped
data were made with."""

import numpy as np
import torch

from dream_gym.explore import HeldRandomActions, random_held_actions
from dream_gym.games import get_game


def test_held_exploration_replaces_the_expected_share_in_held_runs():
    game = get_game("CarRacing")
    n, steps, p, max_hold = 64, 600, 0.05, 12
    noise = HeldRandomActions(game, n, p, max_hold, np.random.default_rng(0))
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
    noise = HeldRandomActions(game, 4, 1.0, 5, np.random.default_rng(1))  # always explores
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


def _old_random_held_actions(rng, game, max_hold):
    """The random policy's stream as the shipped data were collected with it (before the
    exploration code was written once)."""
    while True:
        action = game.sample_actions(rng, 1)[0]
        for _ in range(int(rng.integers(1, max_hold + 1))):
            yield action


def _old_per_episode_noise(rngs, game, p, max_hold, policy_actions):
    """evaluate_controller's exploration loop as it collected the iterative rounds' data."""
    n = len(rngs)
    held = np.zeros(n, np.int64)
    held_action = np.zeros((n, *game.action_shape), game.action_dtype)
    out = []
    for actions in policy_actions:
        for i, rng in enumerate(rngs):
            if held[i] == 0 and rng.random() < p:
                held_action[i] = game.sample_actions(rng, 1)[0]
                held[i] = rng.integers(1, max_hold + 1)
        mask = torch.from_numpy(held > 0).view((n,) + (1,) * len(game.action_shape))
        out.append(torch.where(mask, torch.from_numpy(held_action), actions).numpy())
        held = np.maximum(held - 1, 0)
    return np.stack(out)


def test_the_random_policy_keeps_the_stream_of_the_shipped_data():
    for name in ("TakeCover", "CarRacing"):
        game = get_game(name)
        old = _old_random_held_actions(np.random.default_rng(7), game, 12)
        new = random_held_actions(np.random.default_rng(7), game, 12)
        a = np.stack([next(old) for _ in range(500)])
        b = np.stack([next(new) for _ in range(500)])
        np.testing.assert_array_equal(a, b)


def test_per_episode_noise_keeps_the_stream_of_the_iterative_rounds():
    for name, p in (("TakeCover", 0.05), ("CarRacing", 0.01)):
        game = get_game(name)
        policy = [torch.as_tensor(game.sample_actions(np.random.default_rng(t), 8))
                  for t in range(400)]
        old = _old_per_episode_noise([np.random.default_rng((3, i)) for i in range(8)], game, p,
                                     12, policy)
        noise, rows = HeldRandomActions(game, 8, p, 12), np.arange(8)
        rngs = [np.random.default_rng((3, i)) for i in range(8)]
        new = []
        for actions in policy:
            noise.start(rows, rngs)
            new.append(noise.override(actions, rows).numpy())
        np.testing.assert_array_equal(old, np.stack(new))
        assert (old != np.stack([a.numpy() for a in policy])).any()  # it did explore
