"""Frame measurements of strafing on the real TakeCover game."""

from __future__ import annotations

import numpy as np
import pytest

from dream_gym.games import get_game
from dream_gym.motion import SIDE_WALL, side_wall_share


def _held(action: int, seed: int, steps: int = 90) -> np.ndarray:
    spec = get_game("TakeCover")
    env = spec.make()
    obs, _ = env.reset(seed=seed)
    frames = []
    for _ in range(steps):
        frames.append(spec.frame(obs))
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    env.close()
    return np.stack(frames)


@pytest.mark.slow  # real games
@pytest.mark.parametrize("seed", [0, 1])
def test_side_wall_share_sees_the_wall_that_strafing_from_the_spawn_reaches(seed):
    """Held MOVE_LEFT or MOVE_RIGHT from the spawn, a side wall comes into view between
    steps 30 and 80 and stays; standing still (monsters and fireballs in view), it never
    does."""
    for action in (1, 2):
        seen = np.flatnonzero(side_wall_share(_held(action, seed)) > SIDE_WALL)
        assert len(seen) and 30 <= seen[0] <= 80, (action, seen[:5])
        assert len(seen) == 90 - seen[0], (action, seen)  # stays in view
    assert not (side_wall_share(_held(0, seed)) > SIDE_WALL).any()
