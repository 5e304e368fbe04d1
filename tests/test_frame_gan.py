"""The Atari frame GAN: live frames from real ALE games, the quality figure, and learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dream_gym.frame_gan.images import to_unit
from dream_gym.frame_gan.model import GanConfig, Generator
from dream_gym.frame_gan.quality import QualityMeter, embed, frechet_distance, gaussian_stats
from dream_gym.frame_gan.stream import FrameStream, StreamConfig
from dream_gym.training.frame_gan import (
    ClassifierTrainConfig,
    GanTrainConfig,
    sample,
    train_classifier,
    train_gan,
)

GAMES = ("Breakout", "AirRaid", "Pong")


@pytest.mark.slow  # live ALE games
def test_stream_mixes_the_games_live():
    stream = FrameStream(StreamConfig(games=GAMES, seed=3))
    frames, labels = stream.batch(600)
    stream.close()
    assert frames.shape == (600, 64, 64, 3) and frames.dtype == np.uint8
    share = np.bincount(labels, minlength=3) / len(labels)
    assert share.min() > 0.25, share  # each game about a third (random pick per step)
    # the games look different: Pong's court is a bright field, Breakout's a black one
    mean = [frames[labels == g].mean() for g in range(3)]
    assert mean[2] > 1.8 * mean[0], mean
    # the stream is live: the frames of one game are mostly distinct (the agents move)
    pong = frames[labels == 2].reshape(int((labels == 2).sum()), -1)
    assert len(np.unique(pong, axis=0)) > 0.5 * len(pong)


@pytest.mark.slow  # live ALE games
def test_stream_drops_near_black_frames():
    # Breakout's frames (mean ~0.16) fall under a 0.25 threshold, Pong's (~0.38) do not
    stream = FrameStream(StreamConfig(games=("Breakout", "Pong"), min_mean=0.25, seed=1))
    frames, labels = stream.batch(50)
    stream.close()
    assert (labels == 1).all() and stream.dropped > 20
    assert (frames.reshape(50, -1).mean(1) / 255 > 0.25).all()


def test_unknown_game_is_a_clear_error():
    with pytest.raises(ValueError, match="No ALE game 'Brekout'"):
        FrameStream(StreamConfig(games=("Brekout",)))


def test_frechet_distance_matches_the_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    s1, s2 = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    expected = ((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum()  # diagonal covariances
    got = frechet_distance(mu1, np.diag(s1**2), mu2, np.diag(s2**2))
    assert got == pytest.approx(expected, rel=1e-9)
    x = rng.normal(size=(500, 6))
    assert frechet_distance(*gaussian_stats(x), *gaussian_stats(x)) == pytest.approx(0, abs=1e-8)


def _scalars(run_dir, tag):
    acc = EventAccumulator(str(run_dir)).Reload()
    return np.array([e.value for e in acc.Scalars(tag)])


@pytest.mark.slow
def test_short_training_learns_the_look_of_the_games(tmp_path):
    """150 steps of a small GAN on the live stream: the discriminator learns to tell real
    from generated (its loss falls from 2 ln 2), and the generated frames move towards the
    real ones in the classifier's feature space (Frechet distance at least halves)."""
    torch.manual_seed(0)
    clf, acc = train_classifier(FrameStream(StreamConfig(seed=11)),
                                FrameStream(StreamConfig(seed=12)),
                                ClassifierTrainConfig(steps=60, test_frames=300),
                                tmp_path / "clf", torch.device("cpu"))
    assert acc > 0.95  # the three games are easy to tell apart
    real = to_unit(FrameStream(StreamConfig(seed=13)).batch(400)[0])
    meter = QualityMeter(clf, *gaussian_stats(embed(clf, real)[0]), GAMES)
    gan = GanConfig(gen_width=16, disc_width=16)
    torch.manual_seed(0)
    before = meter.score(sample(Generator(gan), 400, seed=1))["frechet"]
    cfg = GanTrainConfig(steps=150, batch_size=32, lr=1e-4, lr_disc=4e-4, image_every=75,
                         quality_every=75, quality_frames=200, checkpoint_every=75)
    gen = train_gan(FrameStream(StreamConfig(seed=0)), gan, cfg, tmp_path / "gan",
                    torch.device("cpu"), meter)
    after = meter.score(sample(gen, 400, seed=1))["frechet"]
    assert after < 0.5 * before, (before, after)
    d_loss = _scalars(tmp_path / "gan", "losses/discriminator")
    assert d_loss[0] == pytest.approx(2 * np.log(2), abs=0.3)
    assert d_loss[-3:].mean() < d_loss[0] - 0.3, d_loss
    assert len(_scalars(tmp_path / "gan", "quality/frechet")) == 2


@pytest.mark.slow  # live ALE games
def test_gan_resumes_from_its_checkpoint(tmp_path):
    """A finished run is not retrained when called again; a longer one continues from the
    saved step (the emulators restart: the stream is random play, only its frames differ)."""
    from dream_gym.checkpoint import load_json

    gan = GanConfig(gen_width=8, disc_width=8)
    cfg = GanTrainConfig(steps=20, batch_size=8, checkpoint_every=10, image_every=1000)
    stream_cfg = StreamConfig(games=("Pong",), envs_per_game=1)
    first = train_gan(FrameStream(stream_cfg), gan, cfg, tmp_path, torch.device("cpu"))
    again = train_gan(FrameStream(stream_cfg), gan, cfg, tmp_path, torch.device("cpu"))
    for (k, a), b in zip(first.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    cfg.steps = 30
    longer = train_gan(FrameStream(stream_cfg), gan, cfg, tmp_path, torch.device("cpu"))
    assert load_json(tmp_path / "ckpt" / "gen" / "progress.json")["step"] == 30
    assert load_json(tmp_path / "ckpt" / "disc" / "progress.json")["step"] == 30
    assert not torch.equal(longer.net[0].weight, first.net[0].weight)
