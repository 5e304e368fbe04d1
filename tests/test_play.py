"""Play mode: the keyboard maps to the real actions, tau changes live, the loop runs headless."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pygame
import pytest

from dream_gym.play import key_action, play, temperature_change


class _Held:
    def __init__(self, *keys: int) -> None:
        self.keys = set(keys)

    def __getitem__(self, k: int) -> bool:
        return k in self.keys


def test_keys_map_to_the_real_games_actions():
    car = gym.spaces.Box(np.array([-1, 0, 0], np.float32), 1.0, (3,), np.float32)
    gas_left = key_action("CarRacing", _Held(pygame.K_UP, pygame.K_LEFT))
    assert car.contains(gas_left) and gas_left[0] == -1 and gas_left[1] == 1
    assert key_action("CarRacing", _Held(pygame.K_DOWN))[2] > 0
    assert [key_action("TakeCover", _Held(k)) for k in (pygame.K_RIGHT, pygame.K_LEFT)] == [1, 2]
    assert key_action("TakeCover", _Held()) == 0
    with pytest.raises(ValueError, match="Unknown game 'Pong'"):
        key_action("Pong", _Held())


@pytest.mark.parametrize("key", ["", "a", "r", "1"])
def test_keys_without_a_bracket_leave_the_temperature(key):
    # arrow keys report an empty event.unicode, and "" in "[]" is true: they once lowered tau
    assert temperature_change(key) == 0.0
    assert temperature_change("]") > 0 > temperature_change("[")


def test_set_temperature_changes_the_dream_from_the_next_step():
    def run(taus):
        env = gym.make("dream_gym:Dream-TakeCover-v0", obs_type="latent")
        env.reset(seed=11)
        out = []
        for tau in taus:
            env.unwrapped.set_temperature(tau)
            out.append(env.step(0)[0])
        env.close()
        return np.stack(out)

    same, again, hotter = run([1.0] * 6), run([1.0] * 6), run([1.0] * 3 + [2.0] * 3)
    np.testing.assert_array_equal(same, again)
    np.testing.assert_array_equal(same[:3], hotter[:3])  # the past is untouched
    assert not np.allclose(same[3:], hotter[3:])
    env = gym.make("dream_gym:Dream-TakeCover-v0")
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        env.unwrapped.set_temperature(float("nan"))


@pytest.mark.parametrize("env_id", ["CarRacing-v3", "dream_gym:Dream-TakeCover-v0",
                                    "dream_gym:Dream-CarRacing-v0"])
@pytest.mark.slow  # real CarRacing and pygame
def test_play_loop_runs_headless(env_id):
    returns = play(env_id, max_steps=20, fps=1000)
    assert len(returns) >= 1 and all(np.isfinite(returns))
