"""Ms. Pac-Man (ALE, GameGAN's Pac-Man experiments on an Atari screen): eat the pellets,
avoid the ghosts.

The model sees the maze, rows 0..171 of the 210x160 screen (``benchmarks/mspacman_resolution.py``:
at 64x64 every ghost keeps its full contrast and every pellet at least a quarter of it);
below them are the lives and the score. The lives are read off that strip as a game
variable, so that a dream learns when a life is lost; the score is the sum of the rewards.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from dream_gym.explore import random_held_actions, random_policy
from dream_gym.games.derive import make_env_id
from dream_gym.games.registry import ControllerMapping, Keymap, register_game
from dream_gym.games.spec import GameSpec

__all__ = ["MSPACMAN", "MAZE_ROWS", "CHARACTER_COLOURS", "mspacman_lives", "player_position",
           "character_pixels", "maze_runner", "random_or_maze"]

MAZE_ROWS = (0, 172)
"""The screen rows of the maze (the model's frame); below: the lives, the fruit, the score."""

PLAYER = (210, 164, 74)
GHOSTS = ((200, 72, 72), (198, 89, 179), (84, 184, 153), (180, 122, 48))
CHARACTER_COLOURS = (PLAYER, *GHOSTS)
"""Ms. Pac-Man's and the four ghosts' colours (frightened ghosts are blue, (66, 114, 194))."""

_LIFE = (187, 187, 53)
_LIFE_ROWS, _LIFE_SLOTS = (172, 186), (12, 28, 44, 60, 76)
"""The spare lives: one icon per 16 columns from column 12, under the maze."""


def mspacman_lives(screen: np.ndarray) -> np.ndarray:
    """The lives left, as ALE's ``info["lives"]`` counts them (the icons under the maze are
    the spare ones: lives - 1), read off a real 210x160 screen: (1,) float32."""
    strip = screen[_LIFE_ROWS[0]:_LIFE_ROWS[1]]
    icons = sum(bool((strip[:, c:c + 7] == _LIFE).all(-1).any()) for c in _LIFE_SLOTS)
    return np.array([icons + 1], np.float32)


def player_position(screen: np.ndarray) -> tuple[float, float] | None:
    """Ms. Pac-Man's (row, column) on a real screen, None when she is not drawn."""
    rows, cols = np.nonzero((screen[MAZE_ROWS[0]:MAZE_ROWS[1]] == PLAYER).all(-1))
    return None if len(rows) == 0 else (float(rows.mean()), float(cols.mean()))


_MAZE = np.array([(0, 28, 136), (228, 111, 111), (0, 0, 0)], np.float32)
"""The maze's colours: floor, walls and pellets, the black border line at its top."""
_MOVING = np.array([*CHARACTER_COLOURS, (66, 114, 194), (214, 214, 214), (184, 50, 50)],
                   np.float32)
"""Characters and what else moves: frightened ghosts (blue, flashing white), the fruit."""
_PALETTE = np.concatenate([  # each pair of the maze's colours blended (a model's blur)
    [_MAZE[i] + t * (_MAZE[j] - _MAZE[i]) for i, j in ((0, 1), (0, 2), (1, 2))
     for t in np.linspace(0, 1, 9)], _MOVING]).astype(np.float32)
_IS_CHARACTER = np.arange(len(_PALETTE)) >= len(_PALETTE) - len(_MOVING)


def character_pixels(frames: np.ndarray) -> np.ndarray:
    """Per frame (..., H, W, 3) of the maze: how many pixels are nearer the colour of a
    character (Ms. Pac-Man, a ghost, a frightened one) or the fruit than any colour of the
    maze or a blend of two of them (a model's frames are blurred). The disentangling
    measure: a static component that draws no character has none."""
    return character_mask(frames).sum(axis=(-2, -1))


def character_mask(frames: np.ndarray) -> np.ndarray:
    """Per pixel of frames (..., H, W, 3): whether it is one :func:`character_pixels`
    counts (..., H, W)."""
    x = frames.astype(np.float32)[..., None, :]
    return _IS_CHARACTER[((x - _PALETTE) ** 2).sum(-1).argmin(-1)]


def maze_runner(rng: np.random.Generator, game: GameSpec, max_hold: int,
                explore: float = 0.05, turn: float = 0.03) -> Callable[[np.ndarray], int]:
    """Simple maze-following play for data collection: hold one of the four directions
    until Ms. Pac-Man stops moving (a wall) or, with chance ``turn`` a step, at random, then
    pick another; with chance ``explore`` a step, any of the nine actions held 1..max_hold
    steps instead. Its runs are long and straight, where random held actions turn often
    (10 episodes each: maze runner 632 points, 593 steps, 102 of the maze's 12x12-pixel
    cells visited; random held 1..12: 697, 631 steps, 126 cells), so the recipe collects
    with both (:func:`random_or_maze`)."""
    randoms = random_held_actions(rng, game, max_hold)
    state: dict = {"dir": int(rng.integers(1, 5)), "at": None, "still": 0, "held": 0}

    def act(screen: np.ndarray) -> int:
        if state["held"] == 0 and rng.random() < explore:
            state["held"], state["action"] = int(rng.integers(1, max_hold + 1)), next(randoms)
        if state["held"] > 0:
            state["held"] -= 1
            return int(state["action"])
        at = player_position(screen)
        moved = at is None or state["at"] is None or abs(at[0] - state["at"][0]) + abs(
            at[1] - state["at"][1]) > 1.5  # her sprite's chewing moves it by under 1
        state["still"] = 0 if moved else state["still"] + 1
        state["at"] = at
        if state["still"] >= 2 or rng.random() < turn:
            state["dir"] = int(rng.choice([d for d in (1, 2, 3, 4) if d != state["dir"]]))
            state["still"] = 0
        return state["dir"]

    return act


def random_or_maze(rng: np.random.Generator, game: GameSpec, max_hold: int
                   ) -> Callable[[np.ndarray], int]:
    """Half of the episodes random held actions, half :func:`maze_runner`."""
    if rng.random() < 0.5:
        return random_policy(rng, game, max_hold)
    return maze_runner(rng, game, max_hold)


def _directions(a):
    """A linear controller's four outputs: the largest picks UP, RIGHT, LEFT or DOWN
    (actions 1..4); the diagonals and NOOP are left out, as a maze allows four ways."""
    return a.argmax(-1) + 1


def _keys(held, k) -> int:
    for key, action in ((k.K_UP, 1), (k.K_RIGHT, 2), (k.K_LEFT, 3), (k.K_DOWN, 4)):
        if held[key]:
            return action
    return 0


MSPACMAN = register_game(
    GameSpec(
        name="MsPacman",
        env_id="ALE/MsPacman-v5",
        observation_space=gym.spaces.Box(0, 255, (210, 160, 3), np.uint8),
        action_space=gym.spaces.Discrete(9),  # NOOP, UP, RIGHT, LEFT, DOWN, 4 diagonals
        make_fn=make_env_id,
        max_episode_steps=None,  # v5 ends at game over (or ALE's 108,000-frame cap)
        crop_rows=MAZE_ROWS,
        fps=15,  # 60 Hz with v5's frameskip of 4
        dashboard=mspacman_lives,
    ),
    controller=ControllerMapping(4, _directions),
    policies={"maze": maze_runner, "random_or_maze": random_or_maze},
    keymap=Keymap(_keys, "arrows: move"),
)
