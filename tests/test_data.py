"""Collection from the real VizDoom game: shards on disk, deterministic, resumable."""

from __future__ import annotations

import numpy as np

from dream_gym.data import CollectConfig, collect, load_episodes


def test_collect_resumes_after_crash_with_identical_data(tmp_path):
    cfg = CollectConfig(episodes=4, episodes_per_shard=2, workers=2, seed=3)
    first = collect(cfg, tmp_path / "a")
    ref = load_episodes(tmp_path / "a")
    assert first == len(ref.frames) == ref.lengths.sum()
    # real episodes of a random policy: every episode ends in death, rewards +1 per step
    assert ref.dones.sum() == 4 and np.all(ref.rewards == 1.0)
    assert ref.frames.shape[1:] == (64, 64, 3) and ref.frames.dtype == np.uint8

    # simulate a crash: one shard lost, one half-written temporary file left behind
    (tmp_path / "a" / "shard_00001.npz").unlink()
    (tmp_path / "a" / "shard_00001.npz.tmp").write_bytes(b"half written")
    again = collect(cfg, tmp_path / "a")
    resumed = load_episodes(tmp_path / "a")
    assert again == first
    assert not list((tmp_path / "a").glob("*.tmp"))
    np.testing.assert_array_equal(resumed.frames, ref.frames)
    np.testing.assert_array_equal(resumed.actions, ref.actions)
