"""World Models (V + M) behind the :class:`~dream_gym.contract.WorldModel` contract."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from dream_gym import keyed_random
from dream_gym.checkpoint import CheckpointError, load_state_dict, save_json, save_tensors
from dream_gym.contract import State, Transition, model_config
from dream_gym.games import get_game
from dream_gym.world_models import lone_step
from dream_gym.world_models.mdnrnn import MDNRNN, MDNRNNConfig, fused_cell_weights, fused_lstm_step
from dream_gym.world_models.render import RenderDecoder
from dream_gym.world_models.vae import ConvVAE, VAEConfig, to_input

__all__ = ["WorldModelsDream", "FAMILY", "DONE_MODES", "HAS_ONEDNN", "HAS_BF16", "onednn_linear"]

FAMILY = "world_models"
DONE_MODES = ("threshold", "bernoulli")
FEATURES = ("zh", "zhc")
HAS_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
HAS_BF16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def onednn_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``x @ w.T + b`` by oneDNN, the kernel torch.compile uses for CPU linears. At a batched
    dream's shapes it ran 1.1-1.5x as fast as torch's MKL ``addmm`` on this project's AMD
    CPUs, at or above the 2048 x 2048 matmul peak (benchmarks/throughput.py)."""
    return torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")


class WorldModelsDream(torch.nn.Module):
    """V encodes and decodes frames; M carries (h, c) and samples z_{t+1} with temperature.

    Done: ``done_mode="bernoulli"`` samples M's per-step hazard (:meth:`MDNRNN.hazard`);
    ``"threshold"`` ends the dream when M's done logit is positive (deterministic given the
    sampled z). Which one gives a faithful dream depends on how sharp M's done head is; the
    model card gives what was measured.

    Features (what C and a latent agent see): ``"zh"`` is ``[z, h]`` (World Models' equation);
    ``"zhc"`` adds the LSTM cell ``c``, as World Models' 1,088-parameter Doom controller
    (64 + 512 + 512 inputs) did; ``c`` carries the slower memory a sweeping policy needs.
    """

    head_align: int = 8
    """A batched step computes M's heads padded with zero outputs to a multiple of this: at
    TakeCover's 963 outputs CPU matrix multiplies ran 25-30% slower than at 968 (N = 1024,
    one and two threads). 1 turns the padding off. Only the ``addmm`` path pads."""

    onednn: bool = HAS_ONEDNN
    """Batched CPU dream steps (:meth:`imagine`) multiply with :func:`onednn_linear` (1.15x
    as fast on one thread, 1.28x on two at N = 1024, paired windows); False uses torch's
    ``addmm`` and repeats earlier dreams bit for bit. :meth:`observe` (the real game's
    latent) stays on ``addmm``, so measured real scores replay exactly."""

    render_bf16: bool = HAS_BF16
    """:meth:`render` decodes in bfloat16 on a CPU with native bfloat16 (AVX512-BF16 or
    AMX): pixels within 2 levels of float32's (mean 0.15), the same alone and in a batch,
    at 1.4x to 2x the speed (``benchmarks/throughput.py``). Only the eyes change: states,
    rewards and ends do not. False renders in float32 everywhere."""

    def __init__(self, game: str, vae: ConvVAE, rnn: MDNRNN, gamevar_scale: float = 1.0,
                 done_mode: str = "bernoulli", features: str = "zh") -> None:
        super().__init__()
        self.game = game
        self.spec = get_game(game)
        self.vae, self.rnn = vae.eval(), rnn.eval()
        self.gamevar_scale = gamevar_scale
        if done_mode not in DONE_MODES:
            raise ValueError(f"done_mode must be one of {DONE_MODES}, got {done_mode!r}")
        if features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
        self.done_mode, self.feature_kind = done_mode, features
        self.feature_dim = vae.cfg.z_dim + rnn.cfg.hidden * (len(features) - 1)
        self.requires_grad_(False)
        self._renderer: list = []  # [(bf16?, V's version), decoder]: not in the state dict

    @property
    def device(self) -> torch.device:
        return self.rnn.mdn.weight.device

    # --- contract -------------------------------------------------------------------------
    @torch.no_grad()
    def initial_state(self, frames: torch.Tensor, actions: torch.Tensor) -> State:
        B, T = frames.shape[:2]
        mu, _ = self.vae.encode(to_input(frames.to(self.device).flatten(0, 1)))
        z = mu.view(B, T, -1)
        H = self.rnn.cfg.hidden
        h = torch.zeros(1, B, H, device=self.device)
        c = torch.zeros(1, B, H, device=self.device)
        if T > 1:
            a = self._actions(actions.to(self.device)).view(B, T - 1, -1)
            _, (h, c) = self.rnn.lstm(torch.cat([z[:, :-1], a], -1), (h, c))
        return {"z": z[:, -1].contiguous(), "h": h[0], "c": c[0]}

    def imagine(self, state: State, actions: torch.Tensor, temperature: float
                ) -> tuple[State, Transition]:
        if "key" not in state:
            raise ValueError("This state has no random stream: pass it through "
                             "dream_gym.contract.seed_dreams(state, seeds) before imagine().")
        if len(actions) == 1 and state["h"].is_cpu:
            return self._imagine_lone(state, actions, temperature)
        return self._imagine_batch(state, actions, temperature)

    @torch.no_grad()
    def _imagine_batch(self, state: State, actions: torch.Tensor, temperature: float
                       ) -> tuple[State, Transition]:
        key, t = state["key"], state["t"]
        zdim = self.rnn.cfg.z_dim
        weights = self._weights()
        onednn = self.onednn and state["h"].is_cpu
        h, c = self._advance(state, actions, weights, onednn)
        if onednn:
            heads = onednn_linear(h, *weights["heads_rows"])
        else:
            heads = torch.addmm(weights["heads"][1], h, weights["heads"][0])
        n_mdn = self.rnn.mdn.out_features
        o = self.rnn.split_heads(heads[:, :n_mdn],
                                 heads[:, n_mdn : n_mdn + self.rnn.extra.out_features],
                                 clamp=False,  # sample() clamps what it draws from
                                 mixture_major=True)
        # streams: 0 picks mixture components, 1 draws normals, 2 samples done
        u_pick, u_normal, u_done = keyed_random.uniform_streams(
            key, t, (zdim, 2 * ((zdim + 1) // 2), 1))
        z = self.rnn.sample(o, temperature, u_pick, keyed_random.box_muller(u_normal, zdim),
                            mixture_major=True)
        if self.done_mode == "threshold":
            done = o.done_logit > 0.0
        else:
            done = u_done[:, 0] < self.rnn.hazard(o.done_logit)
        return ({"z": z, "h": h, "c": c, "key": key, "t": t + 1},
                Transition(o.reward, done, o.gamevars * self.gamevar_scale))

    def _imagine_lone(self, state: State, actions: torch.Tensor, temperature: float
                      ) -> tuple[State, Transition]:
        """:meth:`imagine` for one dream on CPU, in :mod:`lone_step`'s compiled kernels:
        the same random bits and the same values to float32 rounding, and a lone env steps
        2.5x as fast as with torch (benchmarks/throughput.py). Few torch calls here: each
        costs microseconds, a tenth of the step in all."""
        cfg = self.rnn.cfg
        t, key = state["t"].item(), state["key"].item()
        z, h, c, extra, done = lone_step.dream_step(
            state["z"].numpy()[0], self._actions(actions.numpy())[0], state["h"].numpy()[0],
            state["c"].numpy()[0], *self._lone_weights(), cfg.gaussians, key, t,
            float(temperature), self.done_mode == "threshold", math.log(cfg.done_weight),
            cfg.done_window)
        state = {"z": torch.from_numpy(z[None]), "h": torch.from_numpy(h[None]),
                 "c": torch.from_numpy(c[None]), "key": state["key"],
                 "t": torch.tensor([t + 1])}
        return state, Transition(torch.from_numpy(extra[None, 0]), torch.tensor([done]),
                                 torch.from_numpy(extra[None, 2:] * np.float32(self.gamevar_scale)))

    @torch.no_grad()
    def observe(self, state: State, actions: torch.Tensor, frames: torch.Tensor) -> State:
        # addmm, as when the shipped controllers' real scores were measured: the real
        # game replays them bit for bit (oneDNN rounds differently)
        h, c = self._advance(state, actions, self._weights(), onednn=False)
        mu, _ = self.vae.encode(to_input(frames.to(self.device)))
        return {**state, "z": mu, "h": h, "c": c}

    def features(self, state: State) -> torch.Tensor:
        parts = [state["z"], state["h"]] + ([state["c"]] if self.feature_kind == "zhc" else [])
        return torch.cat(parts, -1)

    @torch.no_grad()
    def render(self, state: State) -> torch.Tensor:
        z = state["z"]
        bf16 = self.render_bf16 and z.device.type == "cpu"
        if not bf16 and len(z) == 1:  # a lone float32 frame: V's deconvolutions are faster
            x = self.vae.decode(z)
        else:
            key = (bf16, sum(p._version for p in self.vae.parameters()))  # V changed?
            if not self._renderer or self._renderer[0] != key:
                dtype = torch.bfloat16 if bf16 else torch.float32
                self._renderer[:] = [key, RenderDecoder(self.vae, dtype).to(z.device)]
            x = self._renderer[1](z)
        return (x.movedim(1, -1) * 255).round_().to(torch.uint8)

    # --- helpers ---------------------------------------------------------------------------
    def _actions(self, actions: torch.Tensor) -> torch.Tensor:
        return self.spec.action_features(actions)

    def _advance(self, state: State, actions: torch.Tensor,
                 weights: dict[str, tuple[torch.Tensor, torch.Tensor]], onednn: bool
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """One LSTM step as a single matrix multiply (nn.LSTM pays ~1 ms of setup per call).
        With ``addmm`` the gates go to a buffer kept between steps: a fresh (N, 4H) output
        each step cost 3-8% of a batched step at N = 1024; nothing returned views it."""
        x = torch.cat([state["z"], self._actions(actions.to(self.device)), state["h"]], -1)
        if onednn:
            return fused_lstm_step(onednn_linear(x, *weights["cell_rows"]), state["c"])
        w, b = weights["cell"]
        gates = getattr(self, "_gates", None)
        if gates is None or gates.shape != (len(x), len(b)) or gates.device != x.device:
            gates = self._gates = x.new_empty(len(x), len(b))
        return fused_lstm_step(torch.addmm(b, x, w, out=gates), state["c"])

    def _weights(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """M's weights laid out for a dream step (:func:`fused_cell_weights`,
        :meth:`MDNRNN.fused_head_weights`), rebuilt when they change (training, loading):
        ``cell`` and ``heads`` as ``(W^T, b)`` for ``addmm``, ``cell_rows`` and
        ``heads_rows`` as ``(W, b)`` for :func:`onednn_linear` (heads unpadded); the heads
        mixture-major, for :meth:`MDNRNN.sample`'s faster pick."""
        if getattr(self, "_params", (None,))[0] is not self.rnn:  # parameters() costs ~50 us
            self._params = (self.rnn, list(self.rnn.parameters()))
        key = (self.head_align, *((p.data_ptr(), p._version) for p in self._params[1]))
        if getattr(self, "_weights_key", None) != key:
            cell = fused_cell_weights(self.rnn.lstm)
            heads = self.rnn.fused_head_weights(mixture_major=True)
            self._fused = {"cell": cell,
                           "heads": self.rnn.fused_head_weights(self.head_align, True),
                           "cell_rows": (cell[0].t().contiguous(), cell[1]),
                           "heads_rows": (heads[0].t().contiguous(), heads[1])}
            self._fused_numpy = None
            self._weights_key = key
        return self._fused

    def _lone_weights(self) -> tuple[np.ndarray, ...]:
        """:meth:`_weights` as NumPy arrays (w_cell, b_cell, w_heads, b_heads), CPU only;
        the heads without padding (the kernel finds the extra heads after the mixture's)."""
        cell = self._weights()["cell"]
        if self._fused_numpy is None:
            self._fused_numpy = tuple(x.numpy() for x in (*cell, *self.rnn.fused_head_weights()))
        return self._fused_numpy

    # --- checkpoint I/O --------------------------------------------------------------------
    def save(self, model_dir: str | Path) -> None:
        d = Path(model_dir)
        save_tensors(d / "vae.safetensors", self.vae.state_dict())
        save_tensors(d / "mdnrnn.safetensors", self.rnn.state_dict())
        save_json(d / "config.json", model_config(
            FAMILY, self.spec, gamevar_scale=self.gamevar_scale, done_mode=self.done_mode,
            features=self.feature_kind, vae=asdict(self.vae.cfg), mdnrnn=asdict(self.rnn.cfg)))

    @classmethod
    def from_config(cls, model_dir: str | Path, config: dict,
                    device: str | torch.device = "cpu") -> WorldModelsDream:
        d = Path(model_dir)
        try:
            vae = ConvVAE(VAEConfig(**config["vae"]))
            rnn = MDNRNN(MDNRNNConfig(**config["mdnrnn"]))
            game, scale = config["game"], float(config["gamevar_scale"])
            done_mode = config.get("done_mode", "bernoulli")
            features = config.get("features", "zh")
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"{d / 'config.json'} is not a World Models config: {e}") from e
        load_state_dict(vae, d / "vae.safetensors")
        load_state_dict(rnn, d / "mdnrnn.safetensors")
        return cls(game, vae, rnn, scale, done_mode, features).to(device)
