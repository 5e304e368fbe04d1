"""The batched dream engine: make_vec, autoreset, per-env seeding, and the SB3 route."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import dream_gym
from dream_gym.envs.vector import DreamVectorEnv

IDS = sorted(dream_gym.DREAM_IDS)
N = 6


def _make_vec(env_id: str, n: int = N, **kwargs) -> gym.vector.VectorEnv:
    return gym.make_vec(f"dream_gym:{env_id}", num_envs=n,
                        vectorization_mode="vector_entry_point", **kwargs)


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("obs_type", ["pixels", "latent"])
def test_make_vec_gives_the_batched_engine_with_batched_real_spaces(env_id, obs_type):
    venv = _make_vec(env_id, obs_type=obs_type)
    single = gym.make(env_id, obs_type=obs_type)
    assert isinstance(venv.unwrapped, DreamVectorEnv)
    assert venv.single_observation_space == single.observation_space
    assert venv.single_action_space == single.action_space
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, _ = venv.reset(seed=0)
    assert venv.observation_space.contains(obs)
    for _ in range(5):
        obs, rew, term, trunc, _ = venv.step(venv.action_space.sample())
        assert venv.observation_space.contains(obs)
        assert rew.shape == term.shape == trunc.shape == (N,)


def _lone_trajectory(env_id: str, seed: int, actions: list, **kwargs):
    """One env reset with ``seed``, and reset again (no seed) in place of the step after an
    episode ends (terminated or truncated): what env i of a NEXT_STEP vector env must
    reproduce."""
    env = gym.make(env_id, obs_type="latent", **kwargs)
    obs, _ = env.reset(seed=seed)
    out, ended = [(obs, 0.0, False)], False
    for a in actions:
        if ended:
            (obs, _), r, term, ended = env.reset(), 0.0, False, False
        else:
            obs, r, term, trunc, _ = env.step(a)
            ended = term or trunc
        out.append((obs, r, ended))
    return out


# CarRacing's dreams run 1000 steps before truncating: a 60-step limit makes them cross
# autoresets inside the test's 300 steps
LIMITS = {"Dream-CarRacing-v0": {"max_episode_steps": 60}}


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_trajectory_alone_or_in_the_vector_env(env_id):
    """Dream 4 of 6 (seed 7 + 4) replays a lone env seeded 11, across autoresets, while
    its neighbours take other actions and end at other times."""
    limit = LIMITS.get(env_id, {})
    venv = _make_vec(env_id, obs_type="latent", **limit)
    space = venv.single_action_space
    space.seed(0)
    actions = [[space.sample() for _ in range(N)] for _ in range(300)]
    alone = _lone_trajectory(env_id, 11, [a[4] for a in actions], **limit)
    obs, _ = venv.reset(seed=7)
    together = [(obs[4], 0.0, False)]
    for a in actions:
        obs, r, term, trunc, _ = venv.step(np.stack(a))
        together.append((obs[4], float(r[4]), bool(term[4] or trunc[4])))
    assert sum(t for _, _, t in alone) >= 1, "the test should cross an autoreset"
    for k, ((o1, r1, t1), (o2, r2, t2)) in enumerate(zip(alone, together, strict=True)):
        assert t1 == t2 and r1 == pytest.approx(r2, abs=1e-4), k
        np.testing.assert_allclose(o1, o2, atol=1e-3, err_msg=f"step {k}")


@pytest.mark.parametrize("env_id", ["Dream-TakeCover-v0", "Dream-CarRacing-v0"])
def test_screen_size_hands_the_agent_the_models_frame_alone_and_in_a_batch(env_id):
    """``screen_size=64``: the screen alone at 64x64 (ScreenObservation's space in the real
    game), the model's own frame where it fills the screen (TakeCover: nothing scaled), the
    rows under CarRacing's cropped frame black as in the full-size dream; dream 4 of a batch
    shows what a lone dream seeded alike shows (to a level: a lone dream's step runs other
    float kernels, whose last bits can round a pixel the other way)."""
    lone = gym.make(env_id, screen_size=64)
    assert lone.observation_space == gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    obs, _ = lone.reset(seed=11)
    core = lone.unwrapped._core
    frame = core.model.render(core.state)[0].numpy()
    if core.game.crop_rows is None:
        np.testing.assert_array_equal(obs, frame)
    else:  # CarRacing: rows 0..84 of 96 -> 0..56 of 64
        assert core.screen_rows == (0, 56)
        assert not obs[56:].any() and obs[:56].std() > 5
    venv = _make_vec(env_id, screen_size=64)
    assert venv.single_observation_space == lone.observation_space
    space = venv.single_action_space
    space.seed(0)
    batch, _ = venv.reset(seed=7)
    for _ in range(20):
        diff = np.abs(batch[4].astype(int) - obs)
        assert diff.max() <= 1 and diff.mean() < 0.01, (diff.max(), diff.mean())
        actions = np.stack([space.sample() for _ in range(N)])
        batch, *_ = venv.step(actions)
        obs, *_ = lone.step(actions[4])
    with pytest.raises(ValueError, match="screen_size"):
        gym.make(env_id, obs_type="latent", screen_size=64)


@pytest.mark.parametrize("obs_type", ["pixels", "latent"])
def test_frame_skip_is_gymnasiums_max_and_skip_on_a_lone_dream(obs_type):
    """``frame_skip=4``: dream 4 of a batch replays a lone dream seeded alike behind
    Gymnasium's ``MaxAndSkipObservation(skip=4)`` (the wrapper the real game gets), across
    autoresets: the same summed rewards and ends, the same max of the last two frames (to a
    level, as above). Gymnasium's wrapper hands a stale frame when an episode ends inside a
    skip, so ending steps compare rewards and flags only."""
    kwargs = {"screen_size": 64} if obs_type == "pixels" else {"obs_type": "latent"}
    lone = gym.make("Dream-TakeCover-v0", **kwargs)
    if obs_type == "pixels":
        lone = gym.wrappers.MaxAndSkipObservation(lone, skip=4)
    else:  # the wrapper wants a Box of images; the latent dream's skip gives the last step's
        lone = _Skip(lone, 4)
    venv = _make_vec("Dream-TakeCover-v0", frame_skip=4, **kwargs)
    space = venv.single_action_space
    space.seed(0)
    batch, _ = venv.reset(seed=7)
    obs, _ = lone.reset(seed=11)
    ends, ended, close = 0, False, 1 if obs_type == "pixels" else 1e-3
    for step in range(150):
        if not ended:
            np.testing.assert_allclose(batch[4], obs, atol=close, err_msg=f"step {step}")
        actions = np.stack([space.sample() for _ in range(N)])
        batch, r, term, trunc, _ = venv.step(actions)
        if ended:
            (obs, _), reward, ended = lone.reset(), 0.0, False
        else:
            obs, reward, t1, t2, _ = lone.step(actions[4])
            ended = t1 or t2
            ends += ended
        assert r[4] == pytest.approx(reward, abs=1e-3) and ended == bool(term[4] | trunc[4])
    assert ends >= 1, "the test should cross an autoreset"
    with pytest.raises(ValueError, match="frame_skip"):
        DreamVectorEnv(2, frame_skip=0)


class _Skip(gym.Wrapper):
    """MaxAndSkipObservation's loop for non-image observations: the last step's."""

    def __init__(self, env: gym.Env, skip: int) -> None:
        super().__init__(env)
        self.skip = skip

    def step(self, action):
        total = 0.0
        for _ in range(self.skip):
            obs, r, term, trunc, info = self.env.step(action)
            total += float(r)
            if term or trunc:
                break
        return obs, total, term, trunc, info


def _until_a_dream_ends(venv, rng: np.random.Generator):
    venv.reset(seed=0)
    for _ in range(2000):
        out = venv.step(rng.integers(3, size=venv.num_envs))
        if out[2].any():
            return out
    raise AssertionError("no dream ended in 2000 steps")


def test_next_step_autoreset_starts_a_fresh_dream():
    venv = DreamVectorEnv(64, obs_type="latent")
    rng = np.random.default_rng(0)
    _, _, ended, _, _ = _until_a_dream_ends(venv, rng)
    obs, rew, term, trunc, _ = venv.step(rng.integers(3, size=64))
    assert np.all(rew[ended] == 0) and not term[ended].any() and not trunc[ended].any()
    # a fresh dream's latent observation starts with h = 0
    z_dim = venv.model.rnn.cfg.z_dim
    assert np.all(obs[ended][:, z_dim:] == 0)
    assert np.all(np.abs(obs[~ended][:, z_dim:]).sum(1) > 0)


@pytest.mark.parametrize("frame_skip", [1, 4])
def test_same_step_autoreset_reports_final_obs(frame_skip):
    venv = DreamVectorEnv(64, obs_type="latent", autoreset_mode="SameStep",
                          frame_skip=frame_skip)
    obs, _, term, _, info = _until_a_dream_ends(venv, np.random.default_rng(0))
    assert info["_final_obs"].tolist() == term.tolist()
    z_dim = venv.model.rnn.cfg.z_dim
    for i in np.flatnonzero(term):
        assert np.all(obs[i, z_dim:] == 0)  # already the next episode
        assert np.abs(info["final_obs"][i][z_dim:]).sum() > 0


@pytest.mark.parametrize("bad, match", [
    (np.full(N, np.nan), "NaN"),
    (np.full(N, 3), "Invalid action"),
    (np.zeros(N + 1, np.int64), "Invalid action"),
    (np.full(N, 1.0), "Invalid action"),
])
def test_vector_env_rejects_bad_actions(bad, match):
    venv = DreamVectorEnv(N, obs_type="latent")
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        venv.step(bad)


def test_sb3_vec_env_keeps_the_batch_and_reports_terminal_observations():
    from stable_baselines3.common.vec_env import VecEnv

    from dream_gym.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env("Dream-TakeCover-v0", 32, obs_type="latent")
    assert isinstance(venv, VecEnv) and venv.num_envs == 32
    venv.seed(3)
    first = venv.reset()
    venv.seed(3)
    np.testing.assert_array_equal(first, venv.reset())  # seeds apply to the next reset
    rng = np.random.default_rng(0)
    for _ in range(2000):
        obs, rew, dones, infos = venv.step(rng.integers(3, size=32))
        if dones.any():
            break
    z_dim = venv.venv.unwrapped.model.rnn.cfg.z_dim
    for i in np.flatnonzero(dones):
        assert np.abs(infos[i]["terminal_observation"][z_dim:]).sum() > 0
        assert infos[i]["TimeLimit.truncated"] is False
        assert np.all(obs[i, z_dim:] == 0)


def _ks_statistic(cdf_values: torch.Tensor) -> float:
    """Kolmogorov-Smirnov D of samples already mapped through their claimed CDF."""
    x = cdf_values.flatten().double().sort().values
    n = len(x)
    grid = torch.arange(1, n + 1, dtype=torch.float64) / n
    return float(torch.maximum(grid - x, x - (grid - 1 / n)).max())


def test_keyed_noise_is_uniform_and_independent_across_keys_and_steps():
    from dream_gym.keyed_random import new_keys, normal, uniform

    keys = new_keys(torch.arange(2000))
    t = torch.zeros(2000, dtype=torch.long)
    u = uniform(keys, t, 0, 64)
    critical = 1.95 / np.sqrt(u.numel())  # KS at p = 0.001
    assert _ks_statistic(u) < critical
    assert _ks_statistic(torch.special.ndtr(normal(keys, t, 1, 64))) < critical
    # neighbouring keys, the next step and another stream look unrelated
    for other in (uniform(keys.roll(1), t, 0, 64), uniform(keys, t + 1, 0, 64),
                  uniform(keys, t, 1, 64)):
        r = np.corrcoef(u.flatten().numpy(), other.flatten().numpy())[0, 1]
        assert abs(r) < 4 / np.sqrt(u.numel()), r


def test_keyed_noise_is_lowbias32_bit_for_bit():
    """The vectorised int32 hash equals lowbias32 on uint32 written out in plain Python, for
    keys and counters across the whole 32-bit range (it relies on int32 wrapping)."""
    from dream_gym.keyed_random import new_keys, uniform

    mask, golden = 0xFFFFFFFF, 0x9E3779B9

    def mix(x: int) -> int:
        x ^= x >> 16
        x = (x * 0x7FEB352D) & mask
        x ^= x >> 15
        x = (x * 0x846CA68B) & mask
        return x ^ (x >> 16)

    seeds = [0, 1, 7, 12345, 2**31 - 1, 2**40 + 3]
    keys = new_keys(torch.tensor(seeds))
    assert keys.tolist() == [mix((s * golden + 0x632BE5AB) & mask) for s in seeds]
    t = torch.tensor([0, 1, 99, 2**20, 2**28 + 5, 3])
    u = uniform(keys, t, 5, 40)
    for row, (key, step) in enumerate(zip(keys.tolist(), t.tolist(), strict=True)):
        head = mix(key ^ mix((step * 8 + 5) & mask))
        bits = [mix((head + j * golden) & mask) for j in range(40)]
        expected = (np.array([b >> 8 for b in bits], np.float32) + np.float32(0.5)) \
            * np.float32(1 / (1 << 24))
        np.testing.assert_array_equal(u[row].numpy(), expected)


@pytest.mark.slow  # starts the real game
def test_model_view_of_a_real_frame_is_what_the_dream_shows_for_it():
    """The dream's first pixel observation is V's reconstruction of its real context frame;
    ModelView shows a real-game agent exactly that for the same frame."""
    from dream_gym.envs.pixels import ModelView
    from dream_gym.games import get_game

    game = get_game("TakeCover")
    real = game.make()
    obs, _ = real.reset(seed=5)
    frame = game.frame(obs)
    dream = gym.make("Dream-TakeCover-v0")
    dream_obs, _ = dream.reset(seed=0, options={"context": {"frames": frame[None]}})
    view = ModelView(real, "takecover").observation(obs)
    np.testing.assert_array_equal(view["screen"], dream_obs["screen"])
    assert view["screen"].shape == obs["screen"].shape
    assert np.abs(view["screen"].astype(int) - obs["screen"]).mean() > 1  # not a copy


def test_compiled_noise_is_the_torch_hash_bit_for_bit():
    """The compiled hash (CPU batches and lone dream steps) draws the same random numbers
    as the torch one (dreams on other devices)."""
    from dream_gym import keyed_random as kr

    keys = kr.new_keys(torch.tensor([0, 3, 2**31 - 1, 2**40 + 3]))
    t = torch.tensor([0, 17, 2**20, 2**28 + 5])
    for stream in range(3):
        torch_hash = kr._unit(kr._bits(keys, t, torch.tensor([stream]), 70))[:, 0]
        np.testing.assert_array_equal(kr.uniform(keys, t, stream, 70).numpy(), torch_hash.numpy())
        lone = [[kr.uniform_at(k, s, stream, j) for j in range(70)]
                for k, s in zip(keys.tolist(), t.tolist(), strict=True)]
        np.testing.assert_array_equal(np.array(lone, np.float32), torch_hash.numpy())
    both = kr.uniform_streams(keys, t, (70, 70, 3))
    for stream, n in enumerate((70, 70, 3)):
        np.testing.assert_array_equal(both[stream].numpy(),
                                      kr.uniform(keys, t, stream, n).numpy())


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_the_mixture_major_sampler_draws_what_the_plain_one_draws(temperature):
    """The batched step's head layout (components outermost) and its unrolled CDF pick
    the same components and values as the plain (z, K) sampler, from the same noise."""
    from dream_gym.world_models.mdnrnn import MDNRNN, MDNRNNConfig

    torch.manual_seed(0)
    rnn = MDNRNN(MDNRNNConfig(z_dim=8, hidden=16, gaussians=5, gamevars=1))
    h, u, eps = torch.randn(4096, 16) * 3, torch.rand(4096, 8), torch.randn(4096, 8)
    n_mdn = rnn.mdn.out_features
    draws = []
    for major in (False, True):
        w, b = rnn.fused_head_weights(mixture_major=major)
        heads = torch.addmm(b, h, w)
        o = rnn.split_heads(heads[:, :n_mdn], heads[:, n_mdn:], clamp=False,
                            mixture_major=major)
        draws.append(rnn.sample(o, temperature, u, eps, mixture_major=major))
        other = rnn.sample(o, temperature, 1 - u, eps, mixture_major=major)
        # the components differ enough that picking another one shows
        assert ((other - draws[-1]).abs() > 1e-3).float().mean() > 0.3
    np.testing.assert_allclose(draws[1].numpy(), draws[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("done_mode", ["bernoulli", "threshold"])
@pytest.mark.parametrize("temperature", [0.6, 1.4])
def test_a_lone_dream_steps_as_it_does_in_a_batch(done_mode, temperature):
    """One dream stepped alone (the compiled path) follows the same dream inside a batch
    (torch) for 300 steps: same component picks and ends, at any temperature; values
    agree to the float32 rounding a 300-step dream accumulates (~1e-4)."""
    from dream_gym.contract import seed_dreams, select_rows
    from dream_gym.zoo import load_contexts, load_model

    model = load_model("takecover")
    model.done_mode = done_mode
    ctx = load_contexts("takecover")
    start = seed_dreams(model.initial_state(ctx["frames"][:3], ctx["actions"][:3]),
                        torch.tensor([4, 5, 6]))
    batch, alone = start, select_rows(start, torch.tensor([1]))
    actions = torch.from_numpy(np.random.default_rng(0).integers(3, size=(300, 3)))
    ends = 0
    for a in actions:
        batch, tr_b = model.imagine(batch, a, temperature)
        alone, tr_a = model.imagine(alone, a[1:2], temperature)
        np.testing.assert_allclose(alone["z"][0], batch["z"][1], atol=1e-3)
        np.testing.assert_allclose(alone["h"][0], batch["h"][1], atol=1e-3)
        assert float(tr_a.reward[0]) == pytest.approx(float(tr_b.reward[1]), abs=1e-3)
        assert bool(tr_a.done[0]) == bool(tr_b.done[1])
        np.testing.assert_allclose(tr_a.gamevars[0], tr_b.gamevars[1],
                                   atol=1e-3 * model.gamevar_scale)
        ends += bool(tr_a.done[0])
    assert alone["t"].tolist() == [300] and alone["key"].tolist() == [batch["key"][1]]
    if done_mode == "bernoulli":
        assert ends >= 1, "the test should see the dream end at least once"


class _SideOfTheBrightnessPolicy:
    """A stateless SB3-style agent: strafe right when the newest frame's left half is the
    brighter one, else left (any fixed function of the pixels would do)."""

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        newest = obs[..., -3:].astype(np.float32)
        half = newest.shape[2] // 2
        right = newest[:, :, :half].mean((1, 2, 3)) > newest[:, :, half:].mean((1, 2, 3))
        return np.where(right, 1, 2), None


@pytest.mark.slow  # plays real VizDoom
def test_a_pixel_agent_plays_the_real_game_behind_the_wrappers_it_had_in_the_dream():
    """make_real_sb3_env with the dream's VecFrameStack gives the dream's observation space;
    evaluate_sb3 seeds episode i with seed + i: the returns of the same stateless policy
    played on plain Gymnasium envs (evaluate_policy) with those seeds, other returns on
    other seeds."""
    from stable_baselines3.common.vec_env import VecFrameStack

    from dream_gym.envs.pixels import ModelView, ScreenObservation
    from dream_gym.evaluate import evaluate_policy
    from dream_gym.games import get_game
    from dream_gym.sb3 import evaluate_sb3, make_real_sb3_env, make_sb3_vec_env

    dream = VecFrameStack(make_sb3_vec_env("Dream-TakeCover-v0", 2, screen_size=64), 4)
    real = VecFrameStack(make_real_sb3_env("TakeCover", 64, "takecover"), 4)
    assert real.observation_space == dream.observation_space
    agent = _SideOfTheBrightnessPolicy()
    first = evaluate_sb3(agent, real, 2, seed=40, progress=False)
    assert evaluate_sb3(agent, real, 2, seed=80, progress=False)["returns"] != first["returns"]
    plain = evaluate_policy(ScreenObservation(ModelView(get_game("TakeCover").make(),
                                                        "takecover"), 64),
                            lambda o: int(agent.predict(np.tile(o, 4)[None])[0][0]), 2, seed=40,
                            progress=False)
    assert plain["returns"] == first["returns"]
    with pytest.raises(ValueError, match="one game at a time"):
        evaluate_sb3(agent, dream, 1)


@pytest.mark.slow  # plays real VizDoom
def test_model_encoder_reads_the_real_screen_as_the_latent_route_does():
    """A pixel policy whose CNN is ModelEncoder sees, for a real 64x64 screen, the model's
    features of that frame (V's z, standardised): what the latent agents see in the game."""
    from stable_baselines3.common.preprocessing import preprocess_obs

    from dream_gym.games import get_game
    from dream_gym.sb3 import ModelEncoder, make_real_sb3_env
    from dream_gym.zoo import load_model

    real = make_real_sb3_env("TakeCover", 64)
    space = gym.spaces.Box(0, 255, (3, 64, 64), np.uint8)  # as SB3 transposes it for a CNN
    encoder = ModelEncoder(space, "takecover")
    real.seed(3)
    screens = [real.reset()] + [real.step(np.array([a]))[0] for a in (1, 1, 2, 0)]
    screens = np.concatenate(screens)  # (5, 64, 64, 3), the agent's observations
    got = encoder(preprocess_obs(torch.from_numpy(screens).permute(0, 3, 1, 2), space))

    model, game = load_model("takecover"), get_game("TakeCover")
    z = model.vae.encode(torch.from_numpy(screens).permute(0, 3, 1, 2).float() / 255)[0]
    assert encoder.features_dim == model.rnn.cfg.z_dim  # h, c of a first frame: dropped
    np.testing.assert_allclose(got.numpy(), ((z - encoder.mean) / encoder.std).numpy(),
                               atol=1e-4)
    assert got.std() > 0.3  # frames of the game spread the features (standardised on dreams)
    assert game.frame_size == 64
    # a frame stack (VecFrameStack, channels-last, transposed by SB3): each frame's features,
    # oldest first
    pairs = np.concatenate([screens[:-1], screens[1:]], axis=-1)  # (4, 64, 64, 6)
    stacked = ModelEncoder(gym.spaces.Box(0, 255, (6, 64, 64), np.uint8), "takecover")
    assert stacked.features_dim == 2 * encoder.features_dim
    both = stacked(torch.from_numpy(pairs).permute(0, 3, 1, 2).float() / 255)
    np.testing.assert_allclose(both.numpy(), torch.cat([got[:-1], got[1:]], 1).numpy(),
                               atol=1e-4)
    for bad in ((3, 84, 84), (4, 64, 64)):
        with pytest.raises(ValueError, match="screen_size=64"):
            ModelEncoder(gym.spaces.Box(0, 255, bad, np.uint8), "takecover")


@pytest.mark.slow  # plays real VizDoom
def test_a_recurrent_agent_starts_each_real_episode_with_a_fresh_memory():
    """evaluate_sb3 hands a recurrent agent (sb3-contrib's RecurrentPPO) its memory and
    resets it at each episode: the same seeds give the same returns whatever came before."""
    from sb3_contrib import RecurrentPPO

    from dream_gym.sb3 import ModelEncoder, evaluate_sb3, make_real_sb3_env, make_sb3_vec_env

    dream = make_sb3_vec_env("Dream-TakeCover-v0", 2, screen_size=64)
    agent = RecurrentPPO("CnnLstmPolicy", dream, n_steps=8, seed=0, policy_kwargs={
        "features_extractor_class": ModelEncoder,
        "features_extractor_kwargs": {"model": "takecover", "stats_steps": 4},
        "lstm_hidden_size": 16})
    starts, predict = [], agent.predict

    def recording(obs, state=None, episode_start=None, deterministic=False):
        starts.append(bool(episode_start[0]))
        return predict(obs, state=state, episode_start=episode_start,
                       deterministic=deterministic)

    agent.predict = recording
    real = make_real_sb3_env("TakeCover", 64)
    once = evaluate_sb3(agent, real, 1, seed=40, progress=False)["returns"]
    evaluate_sb3(agent, real, 1, seed=7, progress=False)
    assert evaluate_sb3(agent, real, 1, seed=40, progress=False)["returns"] == once
    assert sum(starts) == 3 and starts[0]  # the first step of each episode, and only those
