"""GameGAN behind the :class:`~dream_gym.contract.WorldModel` contract.

A dream's state is the dynamics engine's (h, c), the memory (M, alpha, the last read), the
current frame and its encoding. Each imagined step draws the noise z from the dream's keyed
stream, scaled by sqrt(temperature) (the family's randomness knob: 0 gives the mean
future, 1 the trained noise; with a learned prior, ``z_posterior``, the noise is drawn
through it and 0 gives its mean), renders the next frame and feeds it back through the
encoder, as GameGAN does (or, with ``feedback = "encoding"``, feeds back the engine's own
prediction of that encoding, drawn around it with ``encoding_noise``, and renders only for
the eyes). The latent observation is
[s, h]: the current frame's encoding and the engine's hidden state; with episode heads
(:mod:`dream_gym.gamegan.heads`, which then give reward, done and the game variables) their
memory g is appended: [s, h, g]. ``features`` keeps a subset of these blocks, in that order
(e.g. "sg"), for an agent that should not read one (on the TakeCover dream, controllers
on "sg" and "s" did not transfer either: model card).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from dream_gym import keyed_random
from dream_gym.checkpoint import CheckpointError, load_state_dict, save_json, save_tensors
from dream_gym.contract import State, Transition, model_config
from dream_gym.gamegan.model import GameGANConfig, GameGANGenerator, StepOut
from dream_gym.games import get_game

if TYPE_CHECKING:
    from dream_gym.gamegan.heads import EpisodeHeads

__all__ = ["GameGANDream", "FAMILY", "to_unit", "to_uint8"]

FAMILY = "gamegan"


def to_unit(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (..., S, S, 3) -> float (..., 3, S, S) in [-1, 1]."""
    return frames.movedim(-1, -3).float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float (..., 3, S, S) in [-1, 1] -> uint8 (..., S, S, 3)."""
    return ((x.movedim(-3, -1) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


class GameGANDream(torch.nn.Module):
    """A trained GameGAN generator as a batched dream."""

    def __init__(self, game: str, net: GameGANGenerator, gamevar_scale: float = 1.0,
                 heads: EpisodeHeads | None = None,
                 encoding_noise: torch.Tensor | None = None, features: str | None = None
                 ) -> None:
        super().__init__()
        if features is None:
            features = "shg" if heads is not None else "sh"
        if not features or not re.fullmatch("s?h?g?", features):
            raise ValueError(f"features={features!r}: name blocks of 'shg' in that order, each "
                             "once (s: the frame's encoding, h: the engine's state, g: the "
                             "episode heads' memory), e.g. 'shg' or 'sg'.")
        if "g" in features and heads is None:
            raise ValueError(f"features={features!r} asks for g, the episode heads' memory, "
                             "but this model has no episode heads; leave g out.")
        if encoding_noise is not None and net.cfg.feedback != "encoding":
            raise ValueError("encoding_noise draws the encoding a dream acts from: it needs "
                             'feedback = "encoding" (with "frame" the render is encoded).')
        self.game, self.spec = game, get_game(game)
        self.net = net.eval()
        self.heads = heads.eval() if heads is not None else None
        self.gamevar_scale = gamevar_scale
        self.feature_kind = features
        sizes = {"s": net.cfg.memory_dim, "h": net.cfg.hidden,
                 "g": heads.cfg.hidden if heads is not None else 0}
        self.feature_dim = sum(sizes[b] for b in features)
        self.memory_reads = True
        """False zeroes the memory's reads (the memory-use check); the dream is then the
        model without what it remembers."""
        self.register_buffer("encoding_noise", encoding_noise, persistent=False)
        """Per-dimension std (memory_dim,) of the real next encoding around the engine's
        prediction (:func:`dream_gym.gamegan.training.encoding_residual_std`); None: the
        dream acts from the prediction itself."""
        self.requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return self.net.heads.weight.device

    def _a(self, actions: torch.Tensor) -> torch.Tensor:
        return self.spec.action_features(actions.to(self.device))

    def _step(self, state: State, a: torch.Tensor, z: torch.Tensor, render: bool = True
              ) -> tuple[State, tuple[torch.Tensor, ...] | None, StepOut | None]:
        """The generator's step from ``state``'s model part, then the heads: (new model
        state without the next ``s``, (reward, done logit, game variables), the generator's
        output); with ``render=False`` (the next input is a real frame) no output and no
        generator heads."""
        inner = {k: v for k, v in state.items() if k not in ("key", "t", "frame", "g")}
        new, out = self.net.step(inner, a, z, self.memory_reads, render)
        if self.heads is None:
            return new, (out.reward, out.done_logit, out.gamevars) if out else None, out
        r, logit, gv, new["g"] = self.heads.step(torch.cat([inner["s"], new["h"], a], -1),
                                                 state["g"])
        return new, (r, logit, gv), out

    def _hazard(self, done_logit: torch.Tensor) -> torch.Tensor:
        return (self.heads or self.net).hazard(done_logit)

    # --- contract ---------------------------------------------------------------------------
    @torch.no_grad()
    def initial_state(self, frames: torch.Tensor, actions: torch.Tensor) -> State:
        x = to_unit(frames.to(self.device))
        state = self.net.initial(x[:, 0])
        if self.heads is not None:
            state["g"] = x.new_zeros(len(x), self.heads.cfg.hidden)
        zero = x.new_zeros(len(x), self.net.cfg.z_dim)
        for t in range(x.shape[1] - 1):  # warm-up on the true frames, mean noise
            state, _, _ = self._step(state, self._a(actions[:, t]), zero, render=False)
            state = self.net.feed(state, self.net.encoder(x[:, t + 1]), True)
        return {**state, "frame": x[:, -1].contiguous()}

    @torch.no_grad()
    def imagine(self, state: State, actions: torch.Tensor, temperature: float
                ) -> tuple[State, Transition]:
        if "key" not in state:
            raise ValueError("This state has no random stream: pass it through "
                             "dream_gym.contract.seed_dreams(state, seeds) before imagine().")
        key, t = state["key"], state["t"]
        zdim, sdim = self.net.cfg.z_dim, self.net.cfg.memory_dim
        if self.net.mixture is not None:
            return self._imagine_mixture(state, actions, float(temperature))
        sizes = (2 * ((zdim + 1) // 2), 1) + ((2 * ((sdim + 1) // 2),)
                                              if self.encoding_noise is not None else ())
        u_normal, u_done, *u_enc = keyed_random.uniform_streams(key, t, sizes)
        scale = float(temperature) ** 0.5
        z = keyed_random.box_muller(u_normal, zdim).to(self.device) * scale
        new, (reward, logit, gamevars), out = self._step(state, self._a(actions), z)
        s = self.net.next_encoding(out.frame, out.inputs[-1])
        if self.encoding_noise is not None:  # the next encoding drawn around the prediction
            s = s + keyed_random.box_muller(u_enc[0], sdim).to(self.device) \
                * self.encoding_noise * scale
        new = self.net.feed(new, s, False)
        done = u_done[:, 0].to(self.device) < self._hazard(logit)
        return ({**new, "frame": out.frame, "key": key, "t": t + 1},
                Transition(reward, done, gamevars * self.gamevar_scale))

    def _imagine_mixture(self, state: State, actions: torch.Tensor, temperature: float
                         ) -> tuple[State, Transition]:
        """:meth:`imagine` with an encoding mixture: z at the prior's mean (as the engine
        was fitted), the next encoding drawn from the mixture. The frame shown is the
        renderer's from the engine's inputs; the draw is what the next step acts from and
        what an agent's latent features hold."""
        key, t, sdim = state["key"], state["t"], self.net.cfg.memory_dim
        u_normal, u_done, u_pick = keyed_random.uniform_streams(
            key, t, (2 * ((sdim + 1) // 2), 1, 1))
        zero = torch.zeros(len(actions), self.net.cfg.z_dim, device=self.device)
        new, (reward, logit, gamevars), out = self._step(state, self._a(actions), zero)
        new = self.net.feed(new, self.net.sample_encoding(
            new["h"], keyed_random.box_muller(u_normal, sdim).to(self.device),
            u_pick[:, 0].to(self.device), temperature), False)
        done = u_done[:, 0].to(self.device) < self._hazard(logit)
        return ({**new, "frame": out.frame, "key": key, "t": t + 1},
                Transition(reward, done, gamevars * self.gamevar_scale))

    @torch.no_grad()
    def observe(self, state: State, actions: torch.Tensor, frames: torch.Tensor) -> State:
        zero = torch.zeros(len(frames), self.net.cfg.z_dim, device=self.device)
        new, _, _ = self._step(state, self._a(actions), zero, render=False)
        x = to_unit(frames.to(self.device))
        new = self.net.feed(new, self.net.encoder(x), True)
        return {**state, **new, "frame": x}

    def features(self, state: State) -> torch.Tensor:
        return torch.cat([state[b] for b in self.feature_kind], -1)

    @torch.no_grad()
    def render(self, state: State) -> torch.Tensor:
        return to_uint8(state["frame"])

    # --- checkpoint I/O ---------------------------------------------------------------------
    def save(self, model_dir: str | Path) -> None:
        d = Path(model_dir)
        save_tensors(d / "gamegan.safetensors", self.net.state_dict())
        extra: dict[str, Any] = {}
        if self.heads is not None:
            save_tensors(d / "heads.safetensors", self.heads.state_dict())
            extra["episode_heads"] = asdict(self.heads.cfg)
            extra["episode_heads_inputs"] = self.heads.gru.input_size
        if self.encoding_noise is not None:
            extra["encoding_noise"] = [round(float(v), 6) for v in self.encoding_noise]
        save_json(d / "config.json", model_config(FAMILY, self.spec,
                                                  gamegan=asdict(self.net.cfg),
                                                  gamevar_scale=self.gamevar_scale,
                                                  features=self.feature_kind, **extra))

    @classmethod
    def from_config(cls, model_dir: str | Path, config: dict[str, Any],
                    device: str | torch.device = "cpu") -> GameGANDream:
        from dream_gym.gamegan.heads import EpisodeHeads, EpisodeHeadsConfig

        d = Path(model_dir)
        try:
            net = GameGANGenerator(GameGANConfig(**config["gamegan"]))
            game, scale = config["game"], float(config.get("gamevar_scale", 1.0))
            heads = EpisodeHeads(int(config["episode_heads_inputs"]), net.cfg.gamevars,
                                 EpisodeHeadsConfig(**config["episode_heads"])) \
                if "episode_heads" in config else None
            noise = torch.tensor(config["encoding_noise"], dtype=torch.float32) \
                if "encoding_noise" in config else None
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"{d / 'config.json'} is not a GameGAN config: {e}") from e
        load_state_dict(net, d / "gamegan.safetensors")
        if heads is not None:
            load_state_dict(heads, d / "heads.safetensors")
        return cls(game, net, scale, heads, noise, config.get("features")).to(device)
