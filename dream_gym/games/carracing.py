"""Box2D CarRacing-v3 (World Models' car experiment), with its data-collection drivers.

Random play barely shows the road: random gas and steering leave the track within seconds,
and in 320 random episodes (312k frames) only 1.3% of steps visited a tile. A world model
trained on it never learns what steering does to the view of the road (its action-use gap
was 0.004 nats), so a controller evolved in its dream has nothing to learn from. The road
follower below is a noisy pixel heuristic (steer towards the grey road pixels ahead of the
car) with random held actions mixed in, so the data shows driving on the road, leaving it,
and coming back. It reads only the screen, like any agent, never the simulator's state; it
is data collection, not the controller: the shipped controller is evolved only in the dream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import gymnasium as gym
import numpy as np
import torch

from dream_gym.explore import random_held_actions
from dream_gym.games.registry import ControllerMapping, Keymap, register_game
from dream_gym.games.spec import GameSpec

__all__ = ["CARRACING", "carracing_grass_share", "carracing_speed", "road_offset",
           "road_follower", "road_modes"]


def _carracing_action(a):
    """World Models: three tanh outputs -> steer a0, gas (a1 + 1) / 2, brake clip(a2, 0, 1)."""
    stack = torch.stack if isinstance(a, torch.Tensor) else np.stack
    return stack([a[..., 0], (a[..., 1] + 1) / 2, a[..., 2].clip(0, 1)], -1)


def _carracing_random_action(rng: np.random.Generator) -> np.ndarray:
    """Steer anywhere, some gas, brake now and then: a uniform brake stops the car so often
    that random play would never leave the start."""
    brake = rng.uniform(0, 1) if rng.random() < 0.1 else 0.0
    return np.array([rng.uniform(-1, 1), rng.uniform(0, 1), brake], np.float32)


def carracing_grass_share(frames: np.ndarray) -> np.ndarray:
    """Share of green (grass) pixels in rows 46-60, columns 26-38 of 64x64 CarRacing frames:
    the patch around the car."""
    p = frames[:, 46:60, 26:38].astype(np.float32)
    return ((p[..., 1] - p[..., 0]) > 50).mean((1, 2))


def carracing_speed(screen: np.ndarray) -> np.ndarray:
    """The car's speed (Box2D units, as CarRacing's ``true_speed``) read off the white speed
    bar of a 96x96 screen's dashboard, which the model's frames crop away: the bar's height
    is 0.02 x speed of a 1/40-window unit. Calibrated on 2,189 real frames at speeds 0-84:
    mean absolute error 0.6, worst 1.7 (tests/test_data.py checks it against Box2D)."""
    bar = np.asarray(screen[84:95, 12:15], np.float32).min(-1).sum() / (255 * 3)
    return np.array([max(0.0, 25.5 * bar - 4.24)], np.float32)


def _carracing_off_track(frames: np.ndarray) -> np.ndarray:
    """Off the track: more than half of the patch around the car is grass."""
    return carracing_grass_share(frames) > 0.5


def _keys(held, k) -> np.ndarray:
    steer = float(held[k.K_RIGHT]) - float(held[k.K_LEFT])
    return np.array([steer, float(held[k.K_UP]), 0.8 * float(held[k.K_DOWN])], np.float32)


def road_offset(screen: np.ndarray, rows: tuple[int, int] = (50, 62)) -> float | None:
    """Where the road is ahead of the car: the mean column of grey road pixels in ``rows`` of
    CarRacing's 96x96 screen, in [-1, 1] (0: straight ahead); None when no road is in view."""
    band = screen[rows[0] : rows[1]].astype(np.int16)
    r, g, b = band[..., 0], band[..., 1], band[..., 2]
    road = (abs(r - g) < 15) & (abs(g - b) < 15) & (r > 80) & (r < 130)
    cols = np.nonzero(road)[1]
    return None if len(cols) == 0 else float(cols.mean() - 48) / 48.0


def road_follower(rng: np.random.Generator, game: GameSpec, max_hold: int,
                  explore: float = 0.01) -> Callable[[np.ndarray], np.ndarray]:
    """A CarRacing driver for data collection: steer ``gain`` times the road offset plus
    noise at a steady gas, each drawn per episode; with chance ``explore`` per step, a random
    action held 1..max_hold steps instead (this is what takes the car off the road)."""
    gain, gas = rng.uniform(1.0, 3.0), rng.uniform(0.05, 0.35)
    noise = rng.uniform(0.0, 0.3)
    randoms = random_held_actions(rng, game, max_hold)
    state = {"held": 0, "steer": 0.0}

    def act(screen: np.ndarray) -> np.ndarray:
        if state["held"] == 0 and rng.random() < explore:
            state["held"] = int(rng.integers(1, max_hold + 1))
            state["action"] = next(randoms)
        if state["held"] > 0:
            state["held"] -= 1
            return state["action"]
        offset = road_offset(screen)
        if offset is not None:
            state["steer"] = float(np.clip(gain * offset + noise * rng.standard_normal(), -1, 1))
        return np.array([state["steer"], gas, 0.0], np.float32)

    return act


def road_modes(rng: np.random.Generator, game: GameSpec, max_hold: int
               ) -> Callable[[np.ndarray], np.ndarray]:
    """The road follower, interrupted by what an evolved controller will try first.

    A model trained only on a car that always drives pays a standing car for the road it
    sees (teacher-forced on a real standing car, the road-follower M predicted +0.37 a step
    where the game gives -0.1). So half the episodes open standing still (no action, up to
    150 steps), and every 50..250 steps of following the car spends some steps in one mode:
    stop (15 steps of brake, then 25..75 with no action: a model that saw standing only with
    the brake on paid +0.16 a step for a standing car without it), coast (no gas), full lock
    at some gas, or full gas (10..60 steps each).
    """
    follow = road_follower(rng, game, max_hold)
    modes = ("stop", "coast", "lock", "full gas")
    none = np.zeros(3, np.float32)

    def segment() -> list[np.ndarray]:
        mode, n = modes[int(rng.integers(len(modes)))], int(rng.integers(10, 61))
        if mode == "stop":  # 15 steps of brake, then standing
            brake = np.array([0.0, 0.0, rng.uniform(0.5, 1.0)], np.float32)
            return [brake] * 15 + [none] * (n + 15)
        if mode == "coast":
            return [np.array([rng.uniform(-0.3, 0.3), 0.0, 0.0], np.float32)] * n
        if mode == "lock":
            return [np.array([rng.choice([-1.0, 1.0]), rng.uniform(0.1, 1.0), 0.0], np.float32)] * n
        return [np.array([0.0, 1.0, 0.0], np.float32)] * n

    def plan() -> Iterator[np.ndarray | None]:
        """The episode's steps: a fixed action, or None for "follow the road"."""
        if rng.random() < 0.5:  # open standing still, then follow
            yield from [none] * int(rng.integers(1, 151))
            yield from [None] * int(rng.integers(50, 251))
        while True:
            yield from segment()
            yield from [None] * int(rng.integers(50, 251))

    steps = plan()

    def act(screen: np.ndarray) -> np.ndarray:
        action = next(steps)
        return follow(screen) if action is None else action

    return act


CARRACING = register_game(
    GameSpec(
        name="CarRacing",
        env_id="CarRacing-v3",
        observation_space=gym.spaces.Box(0, 255, (96, 96, 3), np.uint8),
        action_space=gym.spaces.Box(np.array([-1, 0, 0], np.float32), 1.0, (3,), np.float32),
        max_episode_steps=1000,  # CarRacing-v3's TimeLimit
        reward_threshold=900.0,  # CarRacing-v3's registration
        crop_rows=(0, 84),  # World Models' code drops the 12-row dashboard before resizing
        fps=50,  # CarRacing-v3's render_fps
        random_action=_carracing_random_action,
        off_track=_carracing_off_track,
        off_track_reward=-0.1,  # the per-frame cost; no tile is ever visited on the grass
        dashboard=carracing_speed,  # V never sees it; M can learn it as a game variable
    ),
    controller=ControllerMapping(3, _carracing_action),
    policies={"road": road_follower, "road_modes": road_modes},
    keymap=Keymap(_keys, "arrows: steer / gas / brake"),
)
