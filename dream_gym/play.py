"""Drive inside a dream with the keyboard, temperature adjustable live (World Models' demo).

Gymnasium's ``utils.play.play`` maps keys to actions but cannot change the environment while
it runs, and changing tau live is the point of the paper's demo; so this is a small pygame
loop of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym

from dream_gym.games import game_of_env_id, keymap

__all__ = ["play", "key_action", "temperature_change"]

TAU_STEP = 0.05
"""How much ``]`` / ``[`` raise / lower tau."""


def key_action(game: str, held: Sequence[bool]):
    """The action that the held keys give in ``game`` (its :func:`~dream_gym.games.keymap`)."""
    import pygame

    return keymap(game).action(held, pygame)


def temperature_change(unicode: str) -> float:
    """The change of tau a key press asks for: ``]`` raises it, ``[`` lowers it, any other
    key (arrows and other keys without a character report ``""``) leaves it."""
    return {"]": TAU_STEP, "[": -TAU_STEP}.get(unicode, 0.0)


def play(env_id: str, temperature: float = 1.0, scale: int | None = None, fps: int = 30,
         max_steps: int | None = None, **kwargs) -> list[float]:
    """Play ``env_id`` (a ``Dream-*`` id or its real game) in a pygame window, ``scale``
    window pixels per frame pixel (default: about 480 pixels tall).

    Keys: the game's (:func:`dream_gym.games.keymap`); ``]`` / ``[`` raise / lower tau by
    0.05 (dreams only); ``r`` restarts; ``Esc`` quits. Returns the episode returns.
    """
    import pygame

    env = gym.make(env_id, render_mode="rgb_array", **(
        {"temperature": temperature} if env_id.split(":")[-1].startswith("Dream-") else {}),
        **kwargs)
    dream = hasattr(env.unwrapped, "set_temperature")
    game = env.unwrapped.game.name if dream else game_of_env_id(env_id).name
    pygame.init()
    clock, font = pygame.time.Clock(), pygame.font.Font(None, 24)
    env.reset()
    frame = env.render()
    h, w = frame.shape[:2]
    scale = scale or max(1, 480 // h)
    screen = pygame.display.set_mode((w * scale, h * scale + 28))
    pygame.display.set_caption(f"dream-gym play {env_id}  ({keymap(game).help})")
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
            elif dream and event.type == pygame.KEYDOWN and temperature_change(event.unicode):
                tau = env.unwrapped.temperature + temperature_change(event.unicode)
                env.unwrapped.set_temperature(max(TAU_STEP, round(tau, 2)))
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

