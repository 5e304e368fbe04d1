"""Collection from the real VizDoom game: shards on disk, deterministic, resumable."""

from __future__ import annotations

import numpy as np
import pytest

from dream_gym.checkpoint import load_tensors
from dream_gym.data import CollectConfig, collect, load_episodes, save_contexts, shard_path
from dream_gym.games import register_game
from dream_gym.games.derive import game_from_env
from dream_gym.motion import strafe_from_spawn


def test_a_game_registered_at_run_time_collects_in_worker_processes(tmp_path, drift_env):
    """A user's game, registered in this process only (as ``build`` registers a constructor),
    is known to the spawned collection workers: their shards are this process's."""

    register_game(game_from_env(drift_env, "DriftPool"))
    frames = [collect(CollectConfig("DriftPool", episodes=4, episodes_per_shard=1,
                                    max_steps=40, seed=5, workers=w), tmp_path / str(w))
              for w in (1, 2)]
    assert frames[0] == frames[1] > 40
    for shard in range(4):
        a, b = (np.load(shard_path(tmp_path / str(w), shard)) for w in (1, 2))
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"shard {shard}: {key}")


@pytest.mark.slow  # real games
def test_collect_resumes_after_crash_with_identical_data(tmp_path):
    cfg = CollectConfig(game="TakeCover", episodes=4, episodes_per_shard=2, workers=2, seed=3)
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


@pytest.mark.slow  # real games
def test_long_holds_carry_the_player_further_from_the_spawn(tmp_path):
    """TakeCover episodes whose random actions are held up to 60 steps strafe further from
    the spawn (net MOVE_LEFT minus MOVE_RIGHT steps) within their first 100 steps than
    episodes held up to 12: the side walls, about 50 steps away, come into the data."""
    reach = {}
    for share in (0.0, 1.0):
        cfg = CollectConfig(game="TakeCover", episodes=40, episodes_per_shard=20, workers=2,
                            seed=5, max_steps=100, long_hold_share=share)
        collect(cfg, tmp_path / str(share))
        ep = load_episodes(tmp_path / str(share))
        net = np.abs(strafe_from_spawn(ep.actions, ep.lengths))
        reach[share] = np.maximum.reduceat(net, ep.starts).astype(float)
    short, long = reach[0.0], reach[1.0]
    se = np.sqrt(short.var(ddof=1) / len(short) + long.var(ddof=1) / len(long))
    assert long.mean() - short.mean() > 3 * se, (short, long)


@pytest.mark.slow  # real games
def test_carracing_collection_replays_exactly_in_the_real_game(tmp_path):
    """Continuous actions are stored as the real game took them: replaying an episode's
    actions in a fresh CarRacing-v3 with the episode's seed gives back its rewards."""
    from dream_gym.games import get_game

    cfg = CollectConfig(game="CarRacing", episodes=1, episodes_per_shard=1, workers=1,
                        max_steps=150, seed=5)
    n = collect(cfg, tmp_path)
    ep = load_episodes(tmp_path)
    assert n == 150 and ep.actions.shape == (150, 3) and ep.actions.dtype == np.float32
    game = get_game("CarRacing")
    low, high = game.real_spaces()[1].low, game.real_spaces()[1].high
    assert np.all((ep.actions >= low) & (ep.actions <= high))
    # the random driver steers both ways and gives gas: it is not a constant action
    assert ep.actions[:, 0].min() < -0.3 < 0.3 < ep.actions[:, 0].max()
    assert ep.actions[:, 1].mean() > 0.3

    env = game.make()
    env.reset(seed=cfg.seed * 1_000_003)  # shard 0, episode 0 (see data._write_shard)
    rewards, speeds = [], []
    for a in ep.actions:
        speeds.append(float(np.hypot(*env.unwrapped.car.hull.linearVelocity)))
        rewards.append(env.step(game.env_action(a))[1])
    env.close()
    np.testing.assert_allclose(rewards, ep.rewards, rtol=1e-5)
    # the car left the start: some tile reward (> 0) beside the -0.1 per frame
    assert ep.rewards.max() > 1.0
    # the game variable is the speed Box2D gives, read off the dashboard the frames crop
    speeds = np.asarray(speeds)
    assert ep.gamevars.shape == (150, 1) and speeds.max() > 20.0
    err = np.abs(ep.gamevars[:, 0] - speeds)
    assert err.mean() < 1.5 and err.max() < 4.0, (err.mean(), err.max())


@pytest.mark.slow  # real games
def test_carracing_road_follower_data_shows_far_more_road_than_random(tmp_path):
    """Random CarRacing data barely shows the road (1.3% of steps on a new tile in 312k
    frames), so the recipe collects with a noisy pixel road follower: over the same 6 tracks
    it must visit more tiles per episode than random play, by a statistical margin. The
    follower with modes must still do so, and must also show a car standing with no action
    (the road follower alone never does: its M paid a standing car for the road it saw)."""
    from dream_gym.evaluate import summarize, welch_t

    tiles, standing = {}, {}
    for policy in ("random", "road", "road_modes"):
        cfg = CollectConfig(game="CarRacing", episodes=6, episodes_per_shard=6, workers=1,
                            max_steps=300, policy=policy, seed=11)
        collect(cfg, tmp_path / policy)
        ep = load_episodes(tmp_path / policy)
        per_episode = np.split(ep.rewards > 0, np.cumsum(ep.lengths)[:-1])
        tiles[policy] = summarize([t.sum() for t in per_episode])
        # a standing step: no action, and the frame did not change since the last step
        still = (np.abs(ep.frames[1:].astype(np.int16) - ep.frames[:-1]).max(axis=(1, 2, 3)) < 8)
        no_action = ~ep.actions[1:].any(-1)
        standing[policy] = int((still & no_action).sum())
    rand = tiles["random"]
    for policy in ("road", "road_modes"):
        t = tiles[policy]
        assert t["mean"] > 2 * rand["mean"] and welch_t(t, rand) > 3.0, (policy, t, rand)
    assert standing["road"] == 0 and standing["road_modes"] >= 100, standing


def test_collection_policy_errors_name_the_fix():
    import pytest

    with pytest.raises(ValueError, match="Unknown collection policy 'expert'.*'random'"):
        CollectConfig(game="TakeCover", policy="expert")
    with pytest.raises(ValueError, match="CarRacing's; TakeCover collects with \\['random'\\]"):
        CollectConfig(game="TakeCover", policy="road")
    with pytest.raises(ValueError, match="'random', 'road', 'road_modes'"):
        CollectConfig(game="CarRacing", policy="expert")


def test_contexts_of_memorised_walks_hold_each_walks_first_frames_and_actions(tmp_path):
    collect(CollectConfig(game="ImageNav", episodes=4, episodes_per_shard=2, workers=1,
                          max_hold=4, max_steps=40), tmp_path / "data")
    ep = load_episodes(tmp_path / "data")
    save_contexts(ep, tmp_path, count=3, seed=0, length=21)
    ctx = load_tensors(tmp_path / "contexts.safetensors")
    assert ctx["frames"].shape == (3, 21, 8, 8, 3) and ctx["actions"].shape == (3, 20)
    starts = set(ep.starts.tolist())
    for frames, actions in zip(ctx["frames"].numpy(), ctx["actions"].numpy(), strict=True):
        first = next(t for t in starts if np.array_equal(ep.frames[t:t + 21], frames))
        np.testing.assert_array_equal(ep.actions[first:first + 20], actions)
    with pytest.raises(ValueError, match="No episode has 41 frames"):
        save_contexts(ep, tmp_path, count=3, seed=0, length=41)
