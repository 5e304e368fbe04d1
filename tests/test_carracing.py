"""Dream-CarRacing: the off-track stop that its controller is evolved with, and transfer of
that controller to real CarRacing-v3 tracks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dream_gym.agents.controller import LinearController
from dream_gym.evaluate import evaluate_controller, evaluate_random, welch_t
from dream_gym.games import get_game
from dream_gym.rollout import dream_returns
from dream_gym.training.off_track import OffTrackProbe, OffTrackStop
from dream_gym.zoo import load_contexts, load_model, resolve

pytestmark = pytest.mark.slow  # real CarRacing frames and tracks

GAME = get_game("CarRacing")


@pytest.fixture(scope="module")
def carracing():
    return load_model("carracing")


def test_off_track_probe_reads_fresh_real_frames(carracing):
    """On tracks no recipe saw, the shipped probe on V's latent agrees with the pixel test
    (grass around the car) on most frames, on and off the road."""
    probe = OffTrackProbe.load(resolve("carracing"))
    env = GAME.make()
    frames = []
    for seed, action in [(123_456, (0.0, 0.3, 0.0)), (123_457, (-1.0, 0.3, 0.0))]:
        env.reset(seed=seed)
        for _ in range(250):
            obs, *_ = env.step(np.array(action, np.float32))
            frames.append(GAME.frame(obs))
    env.close()
    frames = np.stack(frames)[:, None]
    truth = GAME.off_track(frames[:, 0])
    assert 0.2 < truth.mean() < 0.8  # both kinds of frame are there to be read
    with torch.no_grad():
        z = carracing.initial_state(torch.from_numpy(frames),
                                    GAME.no_actions(len(frames)))["z"]
    agree = (probe(z).numpy() == truth).mean()
    assert agree > 0.9, agree


def test_off_track_stop_ends_the_dream_and_charges_the_steps_left(carracing):
    """A probe that always says "off the track" ends every dream at grace + patience steps
    and charges -0.1 for each of the max_steps it did not live; the rewards up to then are
    the dream's own (the same keyed noise with and without the stop)."""
    ctx = load_contexts("carracing")
    n, grace, patience, max_steps = 8, 5, 3, 200
    always_off = OffTrackProbe(torch.zeros(carracing.rnn.cfg.z_dim), torch.ones(1))
    stop = lambda b: OffTrackStop(always_off, patience, grace, -0.1, max_steps, b)  # noqa: E731
    policy = lambda x, rows: torch.tensor([[0.0, 0.5, 0.0]]).expand(len(rows), 3)  # noqa: E731
    args = (ctx["frames"][:n], ctx["actions"][:n], 1.0)
    plain, plain_len = dream_returns(carracing, policy, *args, grace + patience, torch.arange(n))
    stopped, lengths = dream_returns(carracing, policy, *args, max_steps, torch.arange(n), stop)
    ended = plain_len == grace + patience  # dreams that did not sample done on their own
    assert ended.any()
    assert (lengths[ended] == grace + patience).all()
    charge = -0.1 * (max_steps - grace - patience)
    torch.testing.assert_close(stopped[ended], plain[ended] + charge)


@pytest.mark.slow
def test_shipped_controller_beats_random_on_real_tracks(carracing):
    """Trained only inside the dream, the shipped driver beats a random policy on real
    tracks no recipe trained on, by a Welch t of at least 3 (one-sided p < 0.005). Six
    tracks each: its 100-track spread (613 +- 110, random -30 +- 7) leaves t far above 3."""
    controller, _ = LinearController.load(resolve("carracing") / "controller")
    real = evaluate_controller(carracing, controller, 6, seed=60_000, progress=False)
    rand = evaluate_random("CarRacing", 6, seed=60_000, progress=False)
    t = welch_t(real, rand)
    print(f"shipped {real['mean']:.1f}+-{real['std']:.1f} vs random "
          f"{rand['mean']:.1f}+-{rand['std']:.1f}: Welch t {t:.2f}")
    assert t > 3.0, t
