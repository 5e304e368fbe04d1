"""Ms. Pac-Man as a game entry: what is read off its real screen must be right, since the
model's lives head and the disentangling measure are trained and judged by it."""

import numpy as np
import pytest

from dream_gym.games import collection_policy, get_game
from dream_gym.games.mspacman import (
    CHARACTER_COLOURS,
    MAZE_ROWS,
    character_pixels,
    mspacman_lives,
    player_position,
)


@pytest.fixture(scope="module")
def episode():
    """One real episode of random held actions: screens and ALE's lives."""
    game = get_game("MsPacman")
    env = game.make()
    policy = collection_policy("random", "MsPacman")(np.random.default_rng(0), game, 12)
    obs, info = env.reset(seed=0)
    screens, lives = [], []
    for _ in range(3000):
        screens.append(obs)
        lives.append(info["lives"])
        obs, _, terminated, truncated, info = env.step(policy(obs))
        if terminated or truncated:
            break
    env.close()
    return np.stack(screens), np.array(lives)


def test_spec_matches_the_real_game():
    game = get_game("MsPacman")
    env = game.make()
    assert env.observation_space == game.observation_space
    assert env.action_space == game.action_space
    env.close()


def test_lives_read_off_the_screen_are_ales(episode):
    screens, lives = episode
    read = np.array([mspacman_lives(s)[0] for s in screens])
    assert set(lives) == {1, 2, 3}  # the episode lost every life
    np.testing.assert_array_equal(read, lives)


def test_characters_found_in_real_frames_and_not_in_the_bare_maze(episode):
    screens, _ = episode
    game = get_game("MsPacman")
    frames = np.stack([game.screen_frame(s) for s in screens[::5]])
    assert (character_pixels(frames) >= 4).mean() > 0.9
    bare = screens[::5, MAZE_ROWS[0]:MAZE_ROWS[1]].copy()
    for colour in (*CHARACTER_COLOURS, (66, 114, 194), (214, 214, 214), (184, 50, 50)):
        bare[(bare == colour).all(-1)] = (0, 28, 136)  # the floor's colour
    bare_frames = np.stack([game.screen_frame(np.pad(b, ((0, 38), (0, 0), (0, 0))))
                            for b in bare])
    assert (character_pixels(bare_frames) >= 4).mean() < 0.02


def test_maze_runner_moves_along_corridors():
    """It holds a direction until she stops, so it covers the maze in long runs."""
    game = get_game("MsPacman")
    env = game.make()
    policy = collection_policy("maze", "MsPacman")(np.random.default_rng(1), game, 12)
    obs, _ = env.reset(seed=1)
    cells, changes, last = set(), 0, None
    for _ in range(400):
        at = player_position(obs)
        if at is not None:
            cells.add((int(at[0] // 12), int(at[1] // 12)))
        action = policy(obs)
        changes += action != last
        last = action
        obs, _, terminated, _, _ = env.step(action)
        if terminated:
            break
    env.close()
    assert len(cells) >= 20  # of the 12x12-pixel cells (measured 24; standing still: 1)
    assert changes < 400 / 4
