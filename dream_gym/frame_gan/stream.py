"""Frames streamed live from several ALE games played by random agents (as the Atari
frame-GAN articles do).

No data set on disk: each call steps one of the games' environments, picked at random, with a
random action and keeps the resized frame unless it is near-black (Atari games flicker and
some screens between lives are blank). Labels say which game a frame came from; the GAN
ignores them, the quality classifier learns from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import ale_py
import gymnasium as gym
import numpy as np
from PIL import Image

__all__ = ["StreamConfig", "FrameStream"]

gym.register_envs(ale_py)


@dataclass
class StreamConfig:
    games: tuple[str, ...] = ("Breakout", "AirRaid", "Pong")
    """ALE game names (``ALE/<name>-v5``: frame skip 4, sticky actions, as ale-py ships)."""
    envs_per_game: int = 2
    """Random agents per game, each its own emulator, so a batch mixes several episodes."""
    size: int = 64
    min_mean: float = 0.01
    """Frames whose mean brightness (0..1) is at or below this are dropped as near-black."""
    seed: int = 0


class FrameStream:
    """An endless stream of ``(size, size, 3)`` uint8 frames with their game index."""

    def __init__(self, cfg: StreamConfig) -> None:
        if not cfg.games:
            raise ValueError("StreamConfig.games is empty: name at least one ALE game, "
                             "e.g. ('Breakout', 'AirRaid', 'Pong')")
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.envs: list[tuple[int, gym.Env]] = []
        for g, name in enumerate(cfg.games):
            for i in range(cfg.envs_per_game):
                try:
                    env = gym.make(f"ALE/{name}-v5")
                except gym.error.Error as e:
                    raise ValueError(f"No ALE game {name!r} ({e}); names are as in "
                                     "`ALE/<name>-v5`, e.g. Breakout, AirRaid, Pong") from e
                seed = cfg.seed * 1_000_003 + g * 1000 + i
                env.reset(seed=seed)
                env.action_space.seed(seed)
                self.envs.append((g, env))
        self.dropped = 0
        """Near-black frames skipped so far."""

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` frames (n, size, size, 3) uint8 and their game indices (n,) int64."""
        frames = np.empty((n, self.cfg.size, self.cfg.size, 3), np.uint8)
        labels = np.empty(n, np.int64)
        k = 0
        while k < n:
            g, env = self.envs[int(self.rng.integers(len(self.envs)))]
            obs, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                env.reset()
            small = np.asarray(Image.fromarray(obs).resize((self.cfg.size, self.cfg.size),
                                                           Image.BILINEAR))
            if small.mean() / 255.0 <= self.cfg.min_mean:
                self.dropped += 1
                continue
            frames[k], labels[k] = small, g
            k += 1
        return frames, labels

    def close(self) -> None:
        for _, env in self.envs:
            env.close()

