"""Drive inside a dream with the keyboard, temperature adjustable live (seed 003's demo).

Gymnasium's ``utils.play.play`` maps keys to actions but cannot change the environment while
it runs, and changing tau live is the point of the paper's demo; so this is a small pygame
loop of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np

__all__ = ["play", "KEYMAPS", "key_action"]

Keys = Sequence[bool]
"""What ``pygame.key.get_pressed()`` returns: held or not, indexed by key code."""


def _carracing(held: Keys, k) -> np.ndarray:
    steer = float(held[k.K_RIGHT]) - float(held[k.K_LEFT])
    return np.array([steer, float(held[k.K_UP]), 0.8 * float(held[k.K_DOWN])], np.float32)


def _takecover(held: Keys, k) -> int:
    return 1 if held[k.K_RIGHT] else 2 if held[k.K_LEFT] else 0


def _imagenav(held: Keys, k) -> int:
    for action, key in ((1, k.K_UP), (2, k.K_DOWN), (3, k.K_LEFT), (4, k.K_RIGHT)):
        if held[key]:
            return action
    return 0


KEYMAPS: dict[str, tuple[Callable, str]] = {
    "CarRacing": (_carracing, "arrows: steer / gas / brake"),
    "TakeCover": (_takecover, "left/right arrows: move"),
    "ImageNav": (_imagenav, "arrows: walk one cell"),
}


def key_action(game: str, held: Keys):
    """The action that the held keys give in ``game`` (pygame key codes)."""
    import pygame

    if game not in KEYMAPS:
        raise ValueError(f"No keyboard mapping for {game}; dream-gym maps {sorted(KEYMAPS)}.")
    return KEYMAPS[game][0](held, pygame)


def play(env_id: str, temperature: float = 1.0, scale: int | None = None, fps: int = 30,
         max_steps: int | None = None, **kwargs) -> list[float]:
    """Play ``env_id`` (a ``Dream-*`` id or its real game) in a pygame window, ``scale``
    window pixels per frame pixel (default: about 480 pixels tall).

    Keys: the game's (see :data:`KEYMAPS`); ``]`` / ``[`` raise / lower tau by 0.05 (dreams
    only); ``r`` restarts; ``Esc`` quits. Returns the episode returns.
    """
    import pygame

    env = gym.make(env_id, render_mode="rgb_array", **(
        {"temperature": temperature} if env_id.split(":")[-1].startswith("Dream-") else {}),
        **kwargs)
    dream = hasattr(env.unwrapped, "set_temperature")
    game = env.unwrapped.game.name if dream else _game_of(env_id)
    pygame.init()
    clock, font = pygame.time.Clock(), pygame.font.Font(None, 24)
    env.reset()
    frame = env.render()
    h, w = frame.shape[:2]
    scale = scale or max(1, 480 // h)
    screen = pygame.display.set_mode((w * scale, h * scale + 28))
    pygame.display.set_caption(f"dream-gym play {env_id}  ({KEYMAPS[game][1]})")
    returns, ret, steps, running = [], 0.0, 0, True
    while running:
        for event in pygame.event.get():
            if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN
                                             and event.key == pygame.K_ESCAPE):
                running = False
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_r:
                returns.append(ret)
                env.reset()
                ret, steps = 0.0, 0
            elif dream and event.type == pygame.KEYDOWN and event.unicode in "[]":
                tau = env.unwrapped.temperature + (0.05 if event.unicode == "]" else -0.05)
                env.unwrapped.set_temperature(max(0.05, round(tau, 2)))
        _, r, terminated, truncated, _ = env.step(key_action(game, pygame.key.get_pressed()))
        ret, steps = ret + float(r), steps + 1
        if terminated or truncated:
            returns.append(ret)
            env.reset()
            ret, steps = 0.0, 0
        frame = env.render()
        surf = pygame.transform.scale(pygame.surfarray.make_surface(frame.swapaxes(0, 1)),
                                      (w * scale, h * scale))
        screen.fill((0, 0, 0))
        screen.blit(surf, (0, 0))
        hud = f"return {ret:8.1f}   step {steps:4d}"
        if dream:
            hud += f"   tau {env.unwrapped.temperature:.2f}  ([ / ])"
        screen.blit(font.render(hud, True, (255, 255, 255)), (6, h * scale + 6))
        pygame.display.flip()
        clock.tick(fps)
        if max_steps is not None and steps >= max_steps:
            running = False
    env.close()
    pygame.quit()
    return returns + ([ret] if steps else [])


def _game_of(env_id: str) -> str:
    from dream_gym.games import GAMES

    for name, spec in GAMES.items():
        if spec.env_id == env_id:
            return name
    raise ValueError(f"{env_id} is neither a Dream-* id nor a game dream-gym knows.")
