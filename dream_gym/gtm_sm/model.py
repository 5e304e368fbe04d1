"""GTM-SM behind the :class:`~dream_gym.contract.WorldModel` contract.

The starting context is the memorisation phase: its frames are encoded and written to the
DND under the states the SSM infers from its actions. The state of a dream carries that
memory (``keys`` (B, M, 2), ``mem_mu`` / ``mem_logvar`` (B, M, z)) beside the current
position ``s`` and frame encoding ``z``, so the generic row selection and autoreset of the
vector env work unchanged; dreams of one batch need contexts of the same length.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import torch

from dream_gym import keyed_random
from dream_gym.checkpoint import CheckpointError, load_state_dict, save_json, save_tensors
from dream_gym.contract import State, Transition, model_config
from dream_gym.games import get_game
from dream_gym.gtm_sm.gtm_sm import GTMSM, GTMSMConfig, frame_changed

__all__ = ["GTMSMDream", "FAMILY"]

FAMILY = "gtm_sm"


class GTMSMDream(torch.nn.Module):
    """Predicts frames from actions alone by reading what was seen near the predicted place.

    Temperature scales the SSM noise by sqrt(tau), sharpens (tau < 1) or flattens the mixture
    weights (w^(1/tau)) and scales the retrieved spread by sqrt(tau); tau -> 0 gives the
    most likely frame. The world has no reward and no end: reward 0, done never.
    """

    def __init__(self, game: str, net: GTMSM) -> None:
        super().__init__()
        self.game, self.spec = game, get_game(game)
        self.net = net.eval()
        self.feature_dim = net.cfg.state_dim + net.cfg.z_dim
        self.requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return self.net.displacement.weight.device

    # --- contract ---------------------------------------------------------------------------
    @torch.no_grad()
    def initial_state(self, frames: torch.Tensor, actions: torch.Tensor) -> State:
        frames = frames.to(self.device)
        a = self.spec.action_features(actions.to(self.device))
        s = self.net.roll_states(a.view(len(frames), -1, self.net.cfg.actions),
                                 moved=frame_changed(frames))
        mu, logvar = self.net.encode(frames)
        return {"s": s[:, -1].contiguous(), "z": mu[:, -1].contiguous(), "keys": s,
                "mem_mu": mu, "mem_logvar": logvar}

    @torch.no_grad()
    def imagine(self, state: State, actions: torch.Tensor, temperature: float
                ) -> tuple[State, Transition]:
        if "key" not in state:
            raise ValueError("This state has no random stream: pass it through "
                             "dream_gym.contract.seed_dreams(state, seeds) before imagine().")
        cfg, key, t = self.net.cfg, state["key"], state["t"]
        tau = max(float(temperature), 1e-6)
        # streams: 0 SSM noise, 1 picks the memory component, 2 draws z
        u_move, u_pick, u_z = keyed_random.uniform_streams(
            key, t, (2 * ((cfg.state_dim + 1) // 2), 1, 2 * ((cfg.z_dim + 1) // 2)))
        a = self.spec.action_features(actions.to(self.device))
        s = self.net.step_mean(state["s"], a)
        s = s + cfg.transition_std * math.sqrt(tau) * keyed_random.box_muller(
            u_move, cfg.state_dim)
        w, idx = self.net.read(s[:, None], state["keys"])
        cdf = torch.softmax(torch.log(w[:, 0].clamp_min(1e-30)) / tau, -1).cumsum(-1)
        k = (cdf < u_pick).sum(-1, keepdim=True).clamp_(max=idx.shape[-1] - 1)
        row = idx[:, 0].gather(-1, k).expand(-1, cfg.z_dim)[:, None]
        mu = state["mem_mu"].gather(1, row)[:, 0]
        std = torch.exp(0.5 * state["mem_logvar"].gather(1, row)[:, 0]) * math.sqrt(tau)
        z = mu + std * keyed_random.box_muller(u_z, cfg.z_dim)
        B = len(s)
        return ({**state, "s": s, "z": z, "t": t + 1},
                Transition(torch.zeros(B, device=self.device),
                           torch.zeros(B, dtype=torch.bool, device=self.device),
                           torch.zeros(B, 0, device=self.device)))

    @torch.no_grad()
    def observe(self, state: State, actions: torch.Tensor, frames: torch.Tensor) -> State:
        a = self.spec.action_features(actions.to(self.device))
        mu, _ = self.net.encode(frames.to(self.device))
        return {**state, "s": self.net.step_mean(state["s"], a), "z": mu}

    def features(self, state: State) -> torch.Tensor:
        return torch.cat([state["s"], state["z"]], -1)

    @torch.no_grad()
    def render(self, state: State) -> torch.Tensor:
        return self.net.decode(state["z"])

    # --- checkpoint I/O ----------------------------------------------------------------------
    def save(self, model_dir: str | Path) -> None:
        d = Path(model_dir)
        save_tensors(d / "gtm_sm.safetensors", self.net.state_dict())
        save_json(d / "config.json", model_config(FAMILY, self.spec,
                                                  gtm_sm=asdict(self.net.cfg)))

    @classmethod
    def from_config(cls, model_dir: str | Path, config: dict,
                    device: str | torch.device = "cpu") -> GTMSMDream:
        d = Path(model_dir)
        try:
            net = GTMSM(GTMSMConfig(**config["gtm_sm"]))
            game = config["game"]
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"{d / 'config.json'} is not a GTM-SM config: {e}") from e
        load_state_dict(net, d / "gtm_sm.safetensors")
        return cls(game, net).to(device)
