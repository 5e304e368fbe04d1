"""ImageNav: the image-navigation world of GTM-SM (Fraccaro et al. 2018) as a real Gymnasium env.

An agent walks on a 32x32 picture and sees only the 8x8 crop at its position. Positions form
a 9x9 grid with a stride of 3 pixels, so neighbouring crops overlap; the five actions are
stay, up, down, left and right, and the picture's edges are walls (a move into one leaves
the agent where it was). Nothing here is learned: this is the "real game" a GTM-SM dream
stands in for.

The GTM-SM paper used CelebA faces, which cannot be downloaded offline. The pictures here are
procedural instead: a smooth two-colour background and a few filled shapes (ellipses,
rectangles, triangles) in random colours, drawn at 4x and downsampled. Picture ``i`` of a
split is a pure function of ``(split, i)``, so train and test sets are disjoint and every
machine sees the same ones.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import Image, ImageDraw

__all__ = ["ImageNavEnv", "make_image", "random_actions", "walk", "move", "crop",
           "IMAGE", "CROP", "GRID", "STRIDE", "MOVES", "START", "SPLITS"]

IMAGE, CROP, GRID, STRIDE = 32, 8, 9, 3
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], np.int64)
"""(row, col) displacement of stay, up, down, left, right, in grid cells."""
START = (GRID // 2, GRID // 2)
"""Every walk starts at the centre: the model's state space then has a fixed origin and the
walls sit at fixed places in it (the GTM-SM paper infers positions from actions alone)."""
SPLITS = {"train": 0, "test": 1}


def make_image(index: int, split: str = "train") -> np.ndarray:
    """Picture ``index`` of ``split`` ("train" or "test"): (32, 32, 3) uint8."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}.")
    rng = np.random.default_rng([SPLITS[split], int(index)])
    size = IMAGE * 4
    c0, c1 = rng.integers(0, 256, (2, 3))
    ramp = np.linspace(0.0, 1.0, size)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None])
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    bg = (c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]).astype(np.uint8)
    img = Image.fromarray(bg)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(5, 10))):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x0, y0 = rng.integers(-size // 8, size, 2)
        w, h = rng.integers(size // 8, size // 2, 2)
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=colour)
        elif kind == 1:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=colour)
        else:
            draw.polygon([(int(x0), int(y0 + h)), (int(x0 + w), int(y0 + h)),
                          (int(x0 + w // 2), int(y0))], fill=colour)
    return np.asarray(img.resize((IMAGE, IMAGE), Image.LANCZOS), np.uint8)


def move(pos: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Grid positions (..., 2) after ``actions`` (...); edges are walls."""
    return np.clip(pos + MOVES[actions], 0, GRID - 1)


def crop(images: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """The 8x8 views (B, 8, 8, 3) of ``images`` (B, 32, 32, 3) at grid positions (B, 2)."""
    r, c = pos[:, 0] * STRIDE, pos[:, 1] * STRIDE
    rows = r[:, None] + np.arange(CROP)
    cols = c[:, None] + np.arange(CROP)
    b = np.arange(len(images))[:, None, None]
    return images[b, rows[:, :, None], cols[:, None, :]]


def random_actions(rng: np.random.Generator, batch: int, steps: int,
                   mean_hold: float = 3.0, avoid_walls: bool = False) -> np.ndarray:
    """The GTM-SM paper's exploring policy: a uniform action repeated 1 + Poisson(mean_hold - 1)
    times, so a walk covers most of the picture in 256 steps. (batch, steps) int64.

    ``avoid_walls``: walks from :data:`START` that never push into a wall (a blocked move
    ends the hold and draws again among the moves that stay inside): the trainer's first
    curriculum stage, where every move is a pure displacement."""
    out = np.empty((batch, steps), np.int64)
    moves = MOVES.tolist()

    def inside(r: int, c: int, a: int) -> bool:
        return 0 <= r + moves[a][0] < GRID and 0 <= c + moves[a][1] < GRID

    for b in range(batch):
        t, r, c = 0, *START
        while t < steps:
            n = 1 + int(rng.poisson(mean_hold - 1))
            if not avoid_walls:
                out[b, t : t + n] = rng.integers(len(MOVES))
                t += n
                continue
            allowed = [a for a in range(len(MOVES)) if inside(r, c, a)]
            a = allowed[rng.integers(len(allowed))]
            for _ in range(n):
                if t == steps or not inside(r, c, a):
                    break
                out[b, t], t = a, t + 1
                r, c = r + moves[a][0], c + moves[a][1]
    return out


def walk(images: np.ndarray, actions: np.ndarray, start: tuple[int, int] = START
         ) -> tuple[np.ndarray, np.ndarray]:
    """Play ``actions`` (B, T) from ``start`` on ``images`` (B, 32, 32, 3), as
    :class:`ImageNavEnv` does: frames (B, T + 1, 8, 8, 3) and positions (B, T + 1, 2)."""
    B, T = actions.shape
    pos = np.empty((B, T + 1, 2), np.int64)
    pos[:, 0] = start
    for t in range(T):
        pos[:, t + 1] = move(pos[:, t], actions[:, t])
    frames = np.stack([crop(images, pos[:, t]) for t in range(T + 1)], 1)
    return frames, pos


class ImageNavEnv(gym.Env):
    """
    ## Description
    The GTM-SM paper's image-navigation world: walk on a 32x32 picture, see the 8x8 crop around you.
    A world to remember and predict, not a task: the reward is 0 and an episode never
    terminates (``gymnasium.make`` truncates it after 512 steps, 256 to memorise and 256 to
    predict as in the GTM-SM paper's test protocol).

    ## Action Space
    ``Discrete(5)``: 0 stay, 1 up, 2 down, 3 left, 4 right (one grid cell, 3 pixels).

    ## Observation Space
    ``Box(0, 255, (8, 8, 3), uint8)``: the crop at the agent's position.

    ## Starting State
    The centre of the 9x9 grid, on picture ``np_random``-drawn from the first 10,000 train
    pictures; ``options`` may give ``image`` (a (32, 32, 3) uint8 array), or
    ``image_index`` and ``split``, and ``start`` (row, col).

    ## Info
    ``position``: the true (row, col) grid position, for measuring, never for the model.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None, num_images: int = 10_000) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}.")
        self.render_mode = render_mode
        self.num_images = num_images
        self.observation_space = spaces.Box(0, 255, (CROP, CROP, 3), np.uint8)
        self.action_space = spaces.Discrete(len(MOVES))
        self.image = np.zeros((IMAGE, IMAGE, 3), np.uint8)
        self.pos = np.array(START, np.int64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "image" in options:
            image = np.asarray(options["image"])
            if image.shape != (IMAGE, IMAGE, 3) or image.dtype != np.uint8:
                raise ValueError(f"options['image'] must be a ({IMAGE}, {IMAGE}, 3) uint8 "
                                 f"array, got {image.shape} {image.dtype}.")
            self.image = image.copy()
        else:
            index = options.get("image_index", int(self.np_random.integers(self.num_images)))
            self.image = make_image(index, options.get("split", "train"))
        start = np.asarray(options.get("start", START), np.int64)
        if start.shape != (2,) or not np.all((start >= 0) & (start < GRID)):
            raise ValueError(f"options['start'] must be (row, col) in 0..{GRID - 1}, "
                             f"got {options.get('start')!r}.")
        self.pos = start
        return self._obs(), {"position": self.pos.copy()}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"Invalid action {action!r} for ImageNav: it takes an int in "
                             f"{self.action_space} (0 stay, 1 up, 2 down, 3 left, 4 right).")
        self.pos = move(self.pos, int(action))
        return self._obs(), 0.0, False, False, {"position": self.pos.copy()}

    def render(self):
        """The whole picture x8 with the agent's view outlined in yellow."""
        big = np.kron(self.image, np.ones((8, 8, 1), np.uint8))
        r, c = self.pos * STRIDE * 8
        s = CROP * 8
        big[r : r + s, [c, c + s - 1]] = big[[r, r + s - 1], c : c + s] = (255, 220, 0)
        return big

    def _obs(self) -> np.ndarray:
        return crop(self.image[None], self.pos[None])[0]
