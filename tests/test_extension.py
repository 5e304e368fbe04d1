"""A new model family and a new game, defined in this file alone, become a registered dream.

The game (``ToyLane``: dodge a falling block) and the family (``toy_linear``: a linear
encoder, linear dynamics and linear heads fitted by least squares) are written here, added
with :func:`~dream_gym.games.register_game` and :func:`~dream_gym.families.register_family`,
trained with the recipe runner from a TOML file, registered with
:func:`dream_gym.register_dream`, and then checked as any shipped dream is: both env
checkers, batched with the same-seed guarantee, and a model that learned the game.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import dream_gym
from dream_gym import keyed_random
from dream_gym.checkpoint import load_state_dict, save_json, save_tensors
from dream_gym.contract import State, Transition, model_config
from dream_gym.families import Family, register_family
from dream_gym.games import GameSpec, get_game, register_game

SIZE = 8


class ToyLane(gym.Env):
    """A block falls down one of 8 columns; the player (bottom row) moves left or right
    and is paid 1 a step until the block lands on it."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(3)  # stay, left, right
        self.render_mode = render_mode

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.player = int(self.np_random.integers(SIZE))
        self._drop()
        return self._obs(), {}

    def _drop(self) -> None:
        self.block = [0, int(self.np_random.integers(SIZE))]

    def step(self, action):
        self.player = int(np.clip(self.player + (0, -1, 1)[int(action)], 0, SIZE - 1))
        self.block[0] += 1
        hit = self.block[0] == SIZE - 1 and self.block[1] == self.player
        if self.block[0] == SIZE - 1:
            self._drop()
        return self._obs(), 1.0, hit, False, {}

    def _obs(self) -> np.ndarray:
        screen = np.zeros((SIZE, SIZE, 3), np.uint8)
        screen[self.block[0], self.block[1], 0] = 255
        screen[SIZE - 1, self.player] = 255
        return screen

    def render(self):
        return self._obs()


TOY_GAME = GameSpec(name="ToyLane", env_id="ToyLane-v0",
                    observation_space=gym.spaces.Box(0, 255, (SIZE, SIZE, 3), np.uint8),
                    action_space=gym.spaces.Discrete(3), max_episode_steps=200,
                    frame_size=SIZE, fps=10)


class ToyLinearDream(torch.nn.Module):
    """x = tanh(E frame); x' = A x + B onehot(a) + c + sqrt(tau) s eps; reward, done logit
    and frame are linear read-outs of x'. The whole contract, in 60 lines."""

    def __init__(self, game: str, features: int) -> None:
        super().__init__()
        self.game, self.spec, self.feature_dim = game, get_game(game), features
        pixels, actions = SIZE * SIZE * 3, get_game(game).action_dim
        self.enc = torch.nn.Linear(pixels, features)
        self.dyn = torch.nn.Linear(features + actions, features)
        self.heads = torch.nn.Linear(features, 2)  # reward, done logit
        self.dec = torch.nn.Linear(features, pixels)
        self.noise = torch.nn.Parameter(torch.full((features,), 0.05))
        self.requires_grad_(False)

    device = property(lambda self: self.enc.weight.device)

    def _encode(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.enc(frames.flatten(-3).float() / 255))

    def initial_state(self, frames: torch.Tensor, actions: torch.Tensor) -> State:
        return {"x": self._encode(frames[:, -1])}

    def imagine(self, state: State, actions: torch.Tensor, temperature: float
                ) -> tuple[State, Transition]:
        a = self.spec.action_features(actions)
        eps = keyed_random.normal(state["key"], state["t"], 0, self.feature_dim)
        x = self.dyn(torch.cat([state["x"], a], -1)) + temperature ** 0.5 * self.noise * eps
        reward, logit = self.heads(x).unbind(-1)
        done = keyed_random.uniform(state["key"], state["t"], 1, 1)[:, 0] < torch.sigmoid(logit)
        return ({**state, "x": x, "t": state["t"] + 1},
                Transition(reward, done, torch.zeros(len(x), 0)))

    def observe(self, state: State, actions: torch.Tensor, frames: torch.Tensor) -> State:
        return {**state, "x": self._encode(frames)}

    def features(self, state: State) -> torch.Tensor:
        return state["x"].clone()

    def render(self, state: State) -> torch.Tensor:
        x = torch.sigmoid(self.dec(state["x"])).view(-1, SIZE, SIZE, 3)
        return (x * 255).round().to(torch.uint8)

    def save(self, model_dir: str | Path) -> None:
        save_tensors(Path(model_dir) / "toy.safetensors", self.state_dict())
        save_json(Path(model_dir) / "config.json",
                  model_config("toy_linear", self.spec, features=self.feature_dim))

    @classmethod
    def from_config(cls, model_dir: str | Path, config: dict[str, Any],
                    device: str | torch.device = "cpu") -> ToyLinearDream:
        model = cls(config["game"], config["features"])
        load_state_dict(model, Path(model_dir) / "toy.safetensors")
        return model.to(device)


@dataclass
class ToyFitConfig:
    episodes: int = 40
    """Random real episodes to fit on."""
    features: int = 24
    """Size of the linear latent."""


def _random_episodes(game: GameSpec, episodes: int, seed: int) -> list[dict[str, np.ndarray]]:
    env, rng, out = game.make(), np.random.default_rng(seed), []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        frames, actions, rewards, dones = [obs], [], [], []
        for _ in range(game.max_episode_steps):
            a = int(rng.integers(game.action_dim))
            obs, r, term, trunc, _ = env.step(a)
            frames.append(obs)
            actions.append(a)
            rewards.append(r)
            dones.append(term)
            if term or trunc:
                break
        out.append({"frames": np.stack(frames), "actions": np.asarray(actions),
                    "rewards": np.asarray(rewards, np.float32), "dones": np.asarray(dones)})
    return out


def _lstsq(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, b) of y ~ x W^T + b, ridge-regularised."""
    x1 = torch.cat([x, torch.ones(len(x), 1)], 1).double()
    sol = torch.linalg.solve(x1.T @ x1 + 1e-3 * torch.eye(x1.shape[1], dtype=torch.float64),
                             x1.T @ y.double()).float()
    return sol[:-1].T.contiguous(), sol[-1]


def fit_toy(recipe: dict[str, Any], run_dir: Path, stages, device) -> Path:
    """The toy family's stages (``run_stages``): one, ``fit``."""
    out = run_dir / "model"
    stages.run("fit", lambda: _fit(recipe, out))
    return out


def _fit(recipe: dict[str, Any], out: Path) -> dict[str, int]:
    """Encoder by PCA, the rest by least squares, on random real episodes."""
    cfg = ToyFitConfig(**recipe.get("fit", {}))
    game = get_game(recipe["game"])
    eps = _random_episodes(game, cfg.episodes, recipe.get("seed", 0))
    model = ToyLinearDream(game.name, cfg.features)
    frames = torch.from_numpy(np.concatenate([e["frames"] for e in eps])).flatten(1).float()
    mean = frames.mean(0) / 255
    _, _, v = torch.pca_lowrank(frames / 255 - mean, q=cfg.features, center=False)
    model.enc.weight.copy_(v.T)
    model.enc.bias.copy_(-(v.T @ mean))
    x = model._encode(torch.cat([torch.from_numpy(e["frames"]) for e in eps]))
    starts = np.cumsum([0] + [len(e["frames"]) for e in eps])
    now = torch.cat([x[s : e - 1] for s, e in zip(starts[:-1], starts[1:], strict=True)])
    nxt = torch.cat([x[s + 1 : e] for s, e in zip(starts[:-1], starts[1:], strict=True)])
    a = game.action_features(torch.from_numpy(np.concatenate([e["actions"] for e in eps])))
    model.dyn.weight.copy_(_lstsq(torch.cat([now, a], 1), nxt)[0])
    model.dyn.bias.copy_(_lstsq(torch.cat([now, a], 1), nxt)[1])
    done = torch.from_numpy(np.concatenate([e["dones"] for e in eps])).float()
    rate = done.mean().clamp(1e-3, 1 - 1e-3)
    model.heads.weight.zero_()
    model.heads.bias.copy_(torch.tensor([1.0, float(torch.logit(rate))]))
    w, b = _lstsq(x, frames.new_tensor(
        np.concatenate([e["frames"] for e in eps]).reshape(len(x), -1) / 255).clamp(0.02, 0.98)
        .logit())
    model.dec.weight.copy_(w)
    model.dec.bias.copy_(b)
    model.save(out)
    first = np.stack([e["frames"][:1] for e in eps[:8]])
    save_tensors(out / "contexts.safetensors", {
        "frames": torch.from_numpy(first), "actions": torch.zeros(8, 0, dtype=torch.long),
        "gamevars": torch.zeros(8, 0)})
    save_json(out / "config.json", {**model_config("toy_linear", game,
                                                   features=cfg.features),
                                    "dream": {"id": "Dream-ToyLane-v0"}})
    return {"frames": len(x)}


@pytest.fixture(scope="module")
def toy_folder(tmp_path_factory) -> Path:
    """The game and the family registered from this file, and a model trained by recipe."""
    gym.register("ToyLane-v0", entry_point=ToyLane, max_episode_steps=200)
    register_game(TOY_GAME)
    register_family(Family("toy_linear", ToyLinearDream, fit_toy, {"fit": (ToyFitConfig,)}))
    tmp = tmp_path_factory.mktemp("toy")
    recipe = tmp / "toylane.toml"
    recipe.write_text('name = "toylane"\ngame = "ToyLane"\nfamily = "toy_linear"\nseed = 3\n'
                      "[fit]\nepisodes = 40\nfeatures = 24\n")
    from dream_gym.training.recipe import run_recipe

    return run_recipe(recipe, tmp / "runs")


def test_a_toy_family_and_game_become_a_registered_checked_dream(toy_folder):
    env_id = dream_gym.register_dream(toy_folder)
    assert env_id == "Dream-ToyLane-v0"
    for obs_type in ("pixels", "latent"):
        env = gym.make(env_id, obs_type=obs_type)
        check_env(env.unwrapped, skip_render_check=False)
        from stable_baselines3.common.env_checker import check_env as sb3_check_env

        sb3_check_env(env.unwrapped, warn=False)
    real = gym.make("ToyLane-v0")
    dream = gym.make(env_id)
    assert dream.observation_space == real.observation_space
    assert dream.action_space == real.action_space


def test_a_toy_dream_runs_batched_with_the_same_seed_guarantee(toy_folder):
    env_id = dream_gym.register_dream(toy_folder)
    venv = gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point",
                        obs_type="latent")
    obs, _ = venv.reset(seed=10)
    batched = [obs]
    for t in range(30):
        obs, *_ = venv.step(np.full(4, t % 3))
        batched.append(obs)
    env = gym.make(env_id, obs_type="latent")
    obs, _ = env.reset(seed=12)  # dream 2 of the batch
    alone = [obs]
    for t in range(30):
        obs, _, term, trunc, _ = env.step(t % 3)
        alone.append(obs)
        if term or trunc:
            break
    np.testing.assert_allclose(np.stack(alone), np.stack(batched)[: len(alone), 2], atol=1e-5)


def test_the_toy_dream_learned_the_game(toy_folder):
    """Held-out real transitions: the fitted dynamics predict the next latent better than
    "nothing changes" (the held-frame baseline), by a wide margin."""
    from dream_gym.zoo import load_model

    model = load_model(toy_folder)
    eps = _random_episodes(TOY_GAME, 20, seed=999)
    err, held = [], []
    for e in eps:
        x = model._encode(torch.from_numpy(e["frames"]))
        a = TOY_GAME.action_features(torch.from_numpy(e["actions"]))
        pred = model.dyn(torch.cat([x[:-1], a], 1))
        err.append(((pred - x[1:]) ** 2).sum(1))
        held.append(((x[:-1] - x[1:]) ** 2).sum(1))
    err, held = torch.cat(err), torch.cat(held)
    assert err.mean() < 0.5 * held.mean(), (err.mean(), held.mean())


def test_a_recipe_with_a_misspelled_key_names_it_and_the_fix(tmp_path, toy_folder):
    from dream_gym.config import RecipeError
    from dream_gym.training.recipe import load_recipe

    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\ngame = "ToyLane"\nfamily = "toy_linear"\n'
                   "[fit]\nepisdoes = 3\n")
    with pytest.raises(RecipeError, match="'episdoes' in \\[fit\\].*Did you mean 'episodes'"):
        load_recipe(bad)
    bad.write_text('name = "x"\nfamily = "toy_linear"\n[fitt]\nepisodes = 3\n')
    with pytest.raises(RecipeError, match="Unknown key 'fitt'.*Did you mean 'fit'"):
        load_recipe(bad)


def test_evolve_works_on_the_toy_dream_with_the_generic_controller(tmp_path, toy_folder):
    """CMA-ES knows the contract and the game entry only: a Discrete(3) game without a
    mapping of its own gets the argmax mapping, and a controller comes out."""
    from dream_gym.checkpoint import load_json
    from dream_gym.cli import main

    assert main(["evolve", str(toy_folder), "--out", str(tmp_path / "c"), "--generations", "2",
                 "--population", "6", "--rollouts", "2", "--eval-rollouts", "8"]) == 0
    meta = load_json(tmp_path / "c" / "controller.json")
    assert meta["game"] == "ToyLane" and meta["config"]["max_steps"] == 200
