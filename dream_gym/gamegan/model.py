"""GameGAN's generator (Kim et al. 2020): dynamics engine, memory module, rendering engine.

One step: the current frame x_t is encoded (C); the dynamics engine, an action-conditioned
LSTM, takes the action, a noise z and the last memory read; the memory module moves its
attention over a 2-D grid of cells with a 3x3 kernel predicted from the action (a gate on
the hidden state decides whether it moves), writes (erase, add) and reads; the rendering
engine draws a static component from the memory read and a dynamic one from the hidden
state, each an image and a mask, and mixes them with the masks' softmax. Heads on the
hidden state predict the reward, the end and the game variables, so that an agent can
train in the dream.

Sizes are the official VizDoom configuration's scaled to a CPU (hidden 512 -> 256, z 32 ->
16, memory 21x21 x 512 -> 7x7 x 64, renderer and discriminators narrower); the recipe
(``training/takecover_gamegan.toml``) states each size beside the official one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from dream_gym.hazard import window_hazard

__all__ = ["GameGANConfig", "FrameEncoder", "DynamicsEngine", "Memory", "Renderer",
           "GameGANGenerator", "StepOut", "ZGaussian"]


@dataclass
class GameGANConfig:
    action_dim: int = 3
    frame_size: int = 64
    z_dim: int = 16
    """Noise per step (official 32)."""
    hidden: int = 256
    """Dynamics engine's LSTM (official 512)."""
    memory_grid: int = 7
    """Memory cells per side (official 21)."""
    memory_dim: int = 64
    """Size of a memory cell, of the frame encoding and of each component's input
    (official 512)."""
    kernel_temperature: float = 0.1
    """Softmax temperature of the 3x3 shift kernel (official alpha_T 0.1)."""
    kernel_stay: bool = True
    """False: the shift kernel spreads over the eight neighbours only, so the gate is the
    only way to keep the attention still (measured on ImageNav: with the centre in the
    kernel, every action's kernel collapsed onto it; without it, the gate shut instead)."""
    mirror_actions: list[list[int]] = field(default_factory=list)
    """Pairs [a, b]: action a's shift kernel is action b's, flipped (official VizDoom: left
    is flipped right). On ImageNav, [[2, 1], [4, 3]] (down is up reversed, right is left
    reversed) was what made the kernels learn two axes at right angles, so that a walk and
    its way back land on the same cell; untied, the four moves drifted the same way or
    stayed (models/imagenav/CARD.md, "A memory that follows the walk")."""
    use_memory: bool = True
    """False: the no-memory variant (one dynamic component from h, as the paper's ablation)."""
    write_before_move: bool = False
    """Write (erase, add) at the place the step starts from, then move the attention and
    read; the paper moves first and writes at the new place, with a hidden state that has
    not yet seen that place's frame, so a cell only ever holds a guess made from a
    neighbour (or what a step that stayed put saw there)."""
    gate_bias: float = 0.0
    """Initial bias of the shift gate's logit (3: the gate lets 95% of the shift through at
    the start). Measured on ImageNav (``benchmarks/memory_fidelity.py``): at 0 the
    attention never moved; at 3 the gate stayed open (0.92) but the shift kernels of all
    five actions collapsed to "stay", so it still never moved."""
    write_frame: bool = False
    """The erase and add vectors see the encoding of the frame the step starts from beside
    the hidden state, so that a write can store that frame as it is (with
    ``write_before_move``: at its own place); the paper computes them from h alone."""
    memory_write: str = "learned"
    """What a write stores: "learned", erase and add vectors computed from h (the paper's
    NTM write), or "observation", the encoding of the frame the step starts from, written
    over the cell (erase 1), as GTM-SM's memory stores each observation at its position
    (needs ``write_before_move``). Measured on ImageNav with "learned": the read is trained
    to be the next frame's encoding, so the best write is h's prediction of it and the best
    read the cell just written; the memory relays h, and the shift kernels of all actions
    collapsed to "stay". With "observation" they collapsed too (models/imagenav/CARD.md)."""
    empty_read: str = "cell"
    """What a read of a never-written cell gives: "cell", the cell's initial value (the
    paper); or "prediction", the engine's own prediction of the next encoding (the dynamic
    component's input), mixed in by the share of the attention on cells never written (each
    cell keeps how much has been written to it). With "cell", a read that moves to a new
    place returns noise while one that stays returns the frame just written, which is close
    to the next one. With "prediction", moving costs nothing at a new place (measured on
    ImageNav: alone it did not stop the kernels collapsing onto "stay")."""
    edge_walls: bool = False
    """The grid's edges are walls: the share of a shift that would carry attention off the
    grid leaves it where it was (ImageNav's picture edges). The paper pads with zeros, so
    that share is lost, on a grid large enough that play rarely reaches its edge."""
    memory_writes: str = "all"
    """Which steps write: "all", or "seen", only steps that start from a real frame's
    encoding (a state whose ``seen`` is 1: the memorised walk, what a dream observes), not
    from the model's own prediction; GTM-SM's memory holds observations only. With
    ``dynamics_read_loss = "predicted"``, an attention that stays then reads an old frame,
    not the one just written."""
    dynamic_frame: bool = False
    """The dynamic component's input (and a learned write's erase and add) is computed from
    the hidden state and the encoding of the frame the step starts from, [h, s_t], instead of
    h alone (in both the memory and the no-memory variant), so that a memory whose attention
    stays where it wrote s_t relays nothing the dynamic input cannot have (alone, on
    ImageNav, the kernels still collapsed onto "stay")."""
    gate_input: str = "h"
    """What the shift gate sees: "h" (the paper) or "attention", the attention itself and
    the action (a wall is a place and a direction, as GTM-SM's wall gate is a function of
    the position)."""
    dynamic_decoder: str = "upsample"
    """How the dynamic component draws: "upsample", as the static one (a vector -> an 8x8
    map -> upsampling convs), or "broadcast", a spatial broadcast decoder (Watters et al.
    2019: the vector tiled over a quarter-size grid with the grid's coordinates, then convs
    and upsampling), made to place small objects where a vector says. On the 16x16 sprite
    world of ``tests/test_gamegan.py`` both separate the sprite from the scene (with
    ``scene_window``). On Ms. Pac-Man neither drew a character (the vector encoding did not
    carry them). "keypoints" (the Ms. Pac-Man recipe's): the broadcast decoder also given a
    Gaussian blob at each of the encoding's ``keypoints`` positions (as the keypoint
    decoders of KeyNet, Jakab et al. 2018, and Transporter, Kulkarni et al. 2019, which
    tracks Ms. Pac-Man and the ghosts)."""
    keypoints: int = 0
    """Positions in the frame encoding: the encoder's last 2K numbers are the (y, x) of K
    keypoints, the spatial-softmax expectations of K heat maps on its quarter-size feature
    map (Finn et al. 2016), so that where a small character is survives the bottleneck as a
    number instead of a pattern that a vector-to-image decoder must learn to place.
    Needs ``dynamic_decoder = "keypoints"``."""
    keypoint_sigma: float = 0.1
    """Width of a keypoint's Gaussian blob, in the [-1, 1] frame coordinates."""
    enc_width: int = 8
    """Channels of the frame encoder's first conv (doubling per layer)."""
    render_width: int = 8
    """Channels of the renderer's last block (doubling towards the coarse end)."""
    gamevars: int = 1
    done_weight: float = 1.0
    """Weight of done=1 targets in the done head's loss (the head's odds are inflated by it)."""
    done_window: int = 1
    """The done head predicts "the episode ends within this many steps"."""
    feedback: str = "frame"
    """What the next step is given as the frame it acts from, in a dream: "frame", the rendered
    frame encoded again (the paper's loop), or "encoding", the engine's own prediction of the
    next frame's encoding (the dynamic component's input; the loop the dynamics stage trains).
    Through the renderer the loop lost how far the player had strafed: held MOVE_LEFT from
    the spawn, the side wall came into view at step 61 with "encoding" and never in 120 steps
    with "frame", the same engine after 100 adversarial renderer updates."""
    z_posterior: bool = False
    """Train the dynamics as a conditional VAE: a posterior q(z_t | h, s_t, a_t, s_t+1) and a
    learned prior p(z_t | h, s_t, a_t), so that z carries what the action does not decide
    (where monsters appear, when a wall comes into view) and a dream draws one future
    instead of the mean of all of them. The dream's noise e ~ N(0, 1) becomes
    z = mean + std * e of the prior; temperature 0 gives the prior's mean."""
    encoding_mixture: int = 0
    """Components of a Gaussian mixture over the next frame's encoding, given the engine's
    new hidden state (0: none). With it the dynamics stage fits the engine teacher-forced
    by the mixture's likelihood, as World Models fits its MDN-RNN, and a dream draws each
    next encoding from the mixture (temperature as the MDN-RNN's) with z at the prior's mean:
    fitted by squared error on its own open loop, the engine's far future was the mean scene,
    from which the monsters fade (TakeCover card, "GameGAN: an adversarial refit").
    Measured with 5 components on TakeCover's round-2 refit (``benchmarks/gamegan_refit.py
    --net encoding_mixture=5``): that dream ranks standing at a wall above sweeping (always
    left 341, sweep 261; game 160, 479) and its controller plays always-right (165.3 on the
    selection seeds, random 214.4; at temperature 1.3, 194.7). Off in the recipe."""


_FEEDBACK = ("frame", "encoding")


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def _grid(side: int) -> torch.Tensor:
    """(2, side, side): the (y, x) of each cell of a side x side grid, in [-1, 1]."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side),
                            indexing="ij")
    return torch.stack([ys, xs])


def keypoint_pixels(points: torch.Tensor, frame_size: int) -> torch.Tensor:
    """The (row, column) pixels, in a frame_size frame, of keypoint coordinates in [-1, 1]
    (the ends of the quarter-size heat grid: the centres of its first and last cells, 4
    pixels apart per cell, the first at pixel 1.5)."""
    return (points + 1) / 2 * (frame_size - 4) + 1.5


class FrameEncoder(nn.Module):
    """C: a frame (B, 3, S, S) in [-1, 1] -> its encoding s (B, memory_dim)."""

    def __init__(self, cfg: GameGANConfig) -> None:
        super().__init__()
        w = cfg.enc_width
        self.convs = nn.ModuleList([nn.Conv2d(3, w, 4, 2, 1), nn.Conv2d(w, 2 * w, 4, 2, 1),
                                    nn.Conv2d(2 * w, 4 * w, 4, 2, 1)])
        side = cfg.frame_size // 8
        self.keypoints = cfg.keypoints
        self.out = nn.Linear(4 * w * side * side, cfg.memory_dim - 2 * cfg.keypoints)
        if cfg.keypoints:
            self.heat = nn.Conv2d(2 * w, cfg.keypoints, 3, 1, 1)
            self.register_buffer("coords", _grid(cfg.frame_size // 4).flatten(1),
                                 persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)[0]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(the encoding, the keypoints' heat maps (B, K, (S/4)^2) as distributions, or None
        without keypoints)."""
        heat = None
        for i, conv in enumerate(self.convs):
            x = _lrelu(conv(x))
            if i == 1 and self.keypoints:
                heat = torch.softmax(self.heat(x).flatten(2), -1)
        if heat is None:
            return self.out(x.flatten(1)), None
        points = (heat @ self.coords.T).flatten(1)  # (B, 2K): y, x per keypoint
        return torch.cat([self.out(x.flatten(1)), points], 1), heat


class DynamicsEngine(nn.Module):
    """The action-conditioned LSTM: the input [a, z, m] (embedded, mixed by an MLP) gates the
    hidden state multiplicatively (v = MLP(W_h h * W_x e)), the frame encoding enters as a
    bias of the gates (the official ActionLSTM)."""

    def __init__(self, cfg: GameGANConfig) -> None:
        super().__init__()
        H, D = cfg.hidden, cfg.memory_dim
        self.a_in = nn.Linear(cfg.action_dim, H)
        self.z_in = nn.Linear(cfg.z_dim, H)
        e = 2 * H + (D if cfg.use_memory else 0)
        self.mix = nn.Linear(e, e)
        self.project_x = nn.Linear(e, e)
        self.project_h = nn.Linear(H, e)
        self.v1 = nn.Linear(e, e)
        self.v2 = nn.Linear(e, 4 * H)
        self.state_bias = nn.Linear(D, 4 * H)
        self.hidden = H
        std = 1.0 / math.sqrt(H)
        for p in (*self.project_x.parameters(), *self.project_h.parameters(),
                  *self.v1.parameters(), *self.v2.parameters()):
            nn.init.uniform_(p, -std, std)

    def forward(self, h: torch.Tensor, c: torch.Tensor, s: torch.Tensor, a: torch.Tensor,
                z: torch.Tensor, read: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [_lrelu(self.a_in(a)), _lrelu(self.z_in(z))] + ([read] if read is not None else [])
        e = _lrelu(self.mix(torch.cat(parts, -1)))
        v = self.v2(_lrelu(self.v1(self.project_h(h) * self.project_x(e)))) + self.state_bias(s)
        i, f, g, o = v.chunk(4, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class Memory(nn.Module):
    """A grid of cells with a soft position alpha: a 3x3 kernel K(a) shifts alpha, a gate
    G(h) decides whether the shift happens, then erase-and-add writes at alpha and the read is
    alpha^T M. Returns the read and, for the dynamic component, the rest of h's projection."""

    def __init__(self, cfg: GameGANConfig) -> None:
        super().__init__()
        D = cfg.memory_dim
        self.cfg = cfg
        self.cells = cfg.memory_grid ** 2
        self.kernel = nn.Sequential(nn.Linear(cfg.action_dim, D), nn.LeakyReLU(0.2),
                                    nn.Linear(D, 9))
        gate_in = cfg.hidden if cfg.gate_input == "h" else self.cells + cfg.action_dim
        self.gate = nn.Sequential(nn.Linear(gate_in, D), nn.LeakyReLU(0.2), nn.Linear(D, 1))
        # erase, add (from [h, s] with write_frame), the dynamic component's input
        parts = 1 if cfg.write_frame or cfg.memory_write == "observation" else 3
        self.vars = nn.Linear(cfg.hidden + D * cfg.dynamic_frame, parts * D)
        self.write_vars = (nn.Linear(cfg.hidden + D, 2 * D)
                           if cfg.write_frame and cfg.memory_write == "learned" else None)
        if cfg.gate_bias:
            nn.init.constant_(self.gate[-1].bias, cfg.gate_bias)
        self.tracks_writes = cfg.empty_read == "prediction"
        self.gate_held_open = False
        """Set by training: the shift happens whatever the gate says
        (``dynamics_gate_open_share``)."""
        self.register_buffer("_centre", torch.arange(9) == 4, persistent=False)
        bias = torch.empty(self.cells, D)
        nn.init.uniform_(bias, -1 / math.sqrt(self.cells + D), 1 / math.sqrt(self.cells + D))
        self.register_buffer("bias", bias)

    def initial(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory (B, cells, D) and attention (B, cells), one-hot at the grid's centre. With
        ``empty_read = "prediction"`` the memory is (B, cells, D + 1): zeros, its last column
        how much has been written to each cell."""
        alpha = torch.zeros(batch, self.cells, device=device)
        alpha[:, self.cells // 2] = 1.0
        if self.tracks_writes:
            return alpha.new_zeros(batch, self.cells, self.cfg.memory_dim + 1), alpha
        return self.bias.expand(batch, -1, -1).clone(), alpha

    def kernels(self, a: torch.Tensor) -> torch.Tensor:
        """(B, 9) softmax shift kernels; a mirrored action uses its partner's, flipped."""
        logits = self.kernel(a)
        for mirrored, partner in self.cfg.mirror_actions:
            is_mirrored = a[:, mirrored:mirrored + 1]
            partner_a = a.new_zeros(1, a.shape[1])
            partner_a[0, partner] = 1.0  # one row: the partner's kernel is the same for all
            flipped = self.kernel(partner_a).view(1, 3, 3).flip(1, 2).flatten(1)
            logits = is_mirrored * flipped + (1 - is_mirrored) * logits
        if not self.cfg.kernel_stay:
            logits = logits.masked_fill(self._centre, float("-inf"))
        return F.softmax(logits / self.cfg.kernel_temperature, -1)

    def shift(self, alpha: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        """alpha convolved with each row's own 3x3 kernel (a grouped convolution)."""
        B, n = len(alpha), self.cfg.memory_grid
        k = kernels.view(B, 1, 3, 3)
        out = F.conv2d(alpha.view(1, B, n, n), k, padding=1, groups=B).view(B, -1)
        if self.cfg.edge_walls:  # what would leave the grid from a cell stays there
            kept = F.conv2d(alpha.new_ones(1, B, n, n), k.flip(2, 3), padding=1, groups=B)
            out = out + alpha * (1 - kept.view(B, -1))
        return out

    def forward(self, h: torch.Tensor, a: torch.Tensor, alpha: torch.Tensor, M: torch.Tensor,
                s: torch.Tensor | None = None, seen: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(read, dynamic input, alpha, M) after one step; ``s``: the encoding of the frame
        the step started from (used with ``write_frame`` and by an "observation" write);
        ``seen`` (B, 1): 1 where it is a real frame's, 0 where the write is skipped."""
        gate = torch.sigmoid(self.gate(h if self.cfg.gate_input == "h"
                                       else torch.cat([alpha, a], -1)))
        if self.gate_held_open:
            gate = torch.ones_like(gate)
        context = torch.cat([h, s], -1) if self.cfg.dynamic_frame else h
        if self.cfg.memory_write == "observation":  # the frame over its cell (erase 1)
            dynamic, erase, add = self.vars(context), torch.ones_like(s), s
        elif self.write_vars is not None:
            dynamic = self.vars(context)
            erase, add = self.write_vars(torch.cat([h, s], -1)).chunk(2, -1)
            erase = torch.sigmoid(erase)
        else:
            erase, add, dynamic = self.vars(context).chunk(3, -1)
            erase = torch.sigmoid(erase)
        if self.tracks_writes:  # the written share: erase 1, add 1
            one = erase.new_ones(len(erase), 1)
            erase, add = torch.cat([erase, one], -1), torch.cat([add, one], -1)
        if seen is not None:
            erase, add = erase * seen, add * seen
        if self.cfg.write_before_move:
            M = self._write(M, alpha, erase, add)
        alpha = gate * self.shift(alpha, self.kernels(a)) + (1 - gate) * alpha
        if not self.cfg.write_before_move:
            M = self._write(M, alpha, erase, add)
        if self.tracks_writes:  # one product gives the content and the written share
            read, written = torch.bmm(alpha.unsqueeze(1), M).squeeze(1).split(
                [self.cfg.memory_dim, 1], -1)
            read = read + (1 - written) * dynamic
        else:
            read = self.read_at(alpha, M)
        return read, dynamic, alpha, M

    @staticmethod
    def _write(M: torch.Tensor, alpha: torch.Tensor, erase: torch.Tensor, add: torch.Tensor
               ) -> torch.Tensor:
        """Erase (a share in [0, 1] per dimension) and add at attention ``alpha`` (B, cells)."""
        w = alpha.unsqueeze(-1)
        return M * (1 - w * erase.unsqueeze(1)) + w * add.unsqueeze(1)

    def read_at(self, alpha: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
        """What the memory holds at attention ``alpha`` (B, cells): (B, D), without the
        written share's column."""
        return torch.bmm(alpha.unsqueeze(1), M[..., :self.cfg.memory_dim]).squeeze(1)


class ZGaussian(nn.Module):
    """A diagonal Gaussian over the step's noise z from the step's context [h_t-1, s_t, a_t]
    and, for the posterior, the encoding s_t+1 of the frame that followed."""

    def __init__(self, cfg: GameGANConfig, sees_next: bool) -> None:
        super().__init__()
        H, D = cfg.hidden, cfg.memory_dim
        self.net = nn.Sequential(nn.Linear(H + D * (2 if sees_next else 1) + cfg.action_dim, H),
                                 nn.LeakyReLU(0.2), nn.Linear(H, 2 * cfg.z_dim))

    def forward(self, *context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance), each (B, z_dim)."""
        mean, logvar = self.net(torch.cat(context, -1)).chunk(2, -1)
        return mean, logvar.clamp(-10.0, 4.0)


class ComponentDecoder(nn.Module):
    """One component: a vector -> an 8x8 map -> upsampling convs -> an image and a mask logit."""

    def __init__(self, cfg: GameGANConfig) -> None:
        super().__init__()
        w = cfg.render_width
        self.start = nn.Linear(cfg.memory_dim, 4 * w * 8 * 8)
        ups = max(0, int(math.log2(cfg.frame_size // 8)))
        chans = [4 * w] + [max(w, 4 * w // 2 ** (i + 1)) for i in range(ups)]
        self.blocks = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 3, 1, 1)
                                    for i in range(ups))
        self.head = nn.Conv2d(chans[-1], 4, 3, 1, 1)
        self.width = 4 * w

    def forward(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _lrelu(self.start(v)).view(len(v), self.width, 8, 8)
        for conv in self.blocks:
            x = _lrelu(conv(F.interpolate(x, scale_factor=2, mode="nearest")))
        out = self.head(x)
        return torch.tanh(out[:, :3]), out[:, 3:]


class BroadcastDecoder(nn.Module):
    """A component drawn by a spatial broadcast decoder: the vector and the (y, x)
    coordinates at every cell of a (S/4)x(S/4) grid -> convs -> upsampled twice -> an image
    and a mask logit. With ``keypoints`` K, also a Gaussian blob at each of the K (y, x)
    positions that end the vector."""

    def __init__(self, cfg: GameGANConfig, keypoints: int = 0) -> None:
        super().__init__()
        w, side = 4 * cfg.render_width, cfg.frame_size // 4
        self.register_buffer("coords", _grid(side)[None], persistent=False)
        self.keypoints, self.sigma = keypoints, cfg.keypoint_sigma
        self.convs = nn.ModuleList([nn.Conv2d(cfg.memory_dim + 2 + keypoints, w, 3, 1, 1),
                                    nn.Conv2d(w, w, 3, 1, 1)])
        self.ups = nn.ModuleList([nn.Conv2d(w, w // 2, 3, 1, 1),
                                  nn.Conv2d(w // 2, w // 2, 3, 1, 1)])
        self.head = nn.Conv2d(w // 2, 4, 3, 1, 1)

    def forward(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        side = self.coords.shape[-1]
        maps = [v[:, :, None, None].expand(-1, -1, side, side),
                self.coords.expand(len(v), -1, -1, -1)]
        if self.keypoints:
            points = v[:, -2 * self.keypoints:].reshape(len(v), -1, 2, 1, 1)
            d2 = (points - self.coords[:, None]).square().sum(2)  # (B, K, side, side)
            maps.append(torch.exp(-d2 / (2 * self.sigma ** 2)))
        x = torch.cat(maps, 1)
        for conv in self.convs:
            x = _lrelu(conv(x))
        for conv in self.ups:
            x = _lrelu(conv(F.interpolate(x, scale_factor=2, mode="nearest")))
        out = self.head(x)
        return torch.tanh(out[:, :3]), out[:, 3:]


class Renderer(nn.Module):
    """The rendering engine: components mixed by the softmax of their mask logits."""

    def __init__(self, cfg: GameGANConfig) -> None:
        super().__init__()
        if cfg.dynamic_decoder not in ("upsample", "broadcast", "keypoints"):
            raise ValueError(f"dynamic_decoder = {cfg.dynamic_decoder!r}: use \"upsample\", "
                             "\"broadcast\" or \"keypoints\".")
        if (cfg.dynamic_decoder == "keypoints") != (cfg.keypoints > 0):
            raise ValueError(f"dynamic_decoder = {cfg.dynamic_decoder!r} with keypoints = "
                             f"{cfg.keypoints}: the keypoint decoder draws the encoder's "
                             "keypoints; set both (keypoints > 0) or neither.")
        if 2 * cfg.keypoints >= cfg.memory_dim:
            raise ValueError(f"keypoints = {cfg.keypoints} takes {2 * cfg.keypoints} of the "
                             f"encoding's {cfg.memory_dim} numbers: raise memory_dim or use "
                             "fewer keypoints.")
        if cfg.dynamic_decoder == "upsample":
            dynamic = ComponentDecoder(cfg)
        else:
            dynamic = BroadcastDecoder(cfg, cfg.keypoints)
        self.components = nn.ModuleList(
            [ComponentDecoder(cfg), dynamic] if cfg.use_memory else [dynamic])

    def forward(self, inputs: list[torch.Tensor]
                ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """(frame (B, 3, S, S), component images, masks (B, K, S, S))."""
        images, logits = zip(*(dec(v) for dec, v in zip(self.components, inputs, strict=True)),
                             strict=True)
        if len(images) == 1:
            return images[0], list(images), torch.ones_like(logits[0])
        masks = torch.softmax(torch.cat(logits, 1), 1)
        frame = sum(m.unsqueeze(1) * img for m, img in zip(masks.unbind(1), images, strict=True))
        return frame, list(images), masks


@dataclass
class StepOut:
    frame: torch.Tensor  # (B, 3, S, S) in [-1, 1]
    images: list[torch.Tensor]  # per component
    masks: torch.Tensor  # (B, K, S, S)
    reward: torch.Tensor  # (B,)
    done_logit: torch.Tensor  # (B,)
    gamevars: torch.Tensor  # (B, G)
    inputs: list[torch.Tensor]  # what the renderer drew from: [memory read, dynamic input]


class GameGANGenerator(nn.Module):
    """Everything but the discriminators: what a dream runs."""

    def __init__(self, cfg: GameGANConfig) -> None:
        super().__init__()
        if cfg.feedback not in _FEEDBACK:
            raise ValueError(f"feedback = {cfg.feedback!r}: use one of {_FEEDBACK}.")
        if cfg.memory_write not in ("learned", "observation"):
            raise ValueError(f"memory_write = {cfg.memory_write!r}: use \"learned\" or "
                             "\"observation\".")
        if cfg.memory_write == "observation" and not cfg.write_before_move:
            raise ValueError("memory_write = \"observation\" stores the frame a step starts "
                             "from at its place: set write_before_move = true.")
        if cfg.empty_read not in ("cell", "prediction"):
            raise ValueError(f"empty_read = {cfg.empty_read!r}: use \"cell\" or "
                             "\"prediction\".")
        if cfg.memory_writes not in ("all", "seen"):
            raise ValueError(f"memory_writes = {cfg.memory_writes!r}: use \"all\" or "
                             "\"seen\".")
        if cfg.gate_input not in ("h", "attention"):
            raise ValueError(f"gate_input = {cfg.gate_input!r}: use \"h\" or \"attention\".")
        self.cfg = cfg
        self.encoder = FrameEncoder(cfg)
        self.engine = DynamicsEngine(cfg)
        self.memory = Memory(cfg) if cfg.use_memory else None
        self.to_dynamic = (None if cfg.use_memory else
                           nn.Linear(cfg.hidden + cfg.memory_dim * cfg.dynamic_frame,
                                     cfg.memory_dim))
        self.renderer = Renderer(cfg)
        self.heads = nn.Linear(cfg.hidden, 2 + cfg.gamevars)  # reward, done logit, gamevars
        self.posterior = ZGaussian(cfg, sees_next=True) if cfg.z_posterior else None
        self.prior = ZGaussian(cfg, sees_next=False) if cfg.z_posterior else None
        K, D = cfg.encoding_mixture, cfg.memory_dim
        self.mixture = nn.Linear(cfg.hidden, K * (1 + 2 * D)) if K else None

    def next_encoding(self, frame: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
        """The encoding a dream's next step acts from (``feedback``): the rendered ``frame``
        encoded, or the engine's ``predicted`` encoding (a step's last renderer input)."""
        return self.encoder(frame) if self.cfg.feedback == "frame" else predicted

    def initial(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """The state before the first step, given the first frame (B, 3, S, S)."""
        return self.initial_from_encoding(self.encoder(frames))

    def initial_from_encoding(self, s: torch.Tensor) -> dict[str, torch.Tensor]:
        """The state before the first step, given the first frame's encoding (B, D)."""
        B, H = len(s), self.cfg.hidden
        state = {"h": s.new_zeros(B, H), "c": s.new_zeros(B, H), "s": s}
        if self.memory is not None:
            state["M"], state["alpha"] = self.memory.initial(B, s.device)
            state["read"] = s.new_zeros(B, self.cfg.memory_dim)
        return self.feed(state, s, True)

    def feed(self, state: dict[str, torch.Tensor], s: torch.Tensor,
             seen: bool | torch.Tensor) -> dict[str, torch.Tensor]:
        """``state`` with ``s`` as the frame the next step acts from: a real frame's encoding
        (``seen`` True) or the model's own prediction (False; or a (B,) bool per row), which
        ``memory_writes = "seen"`` keeps out of the memory."""
        state["s"] = s
        if self.memory is not None and self.cfg.memory_writes == "seen":
            rows = torch.as_tensor(seen, device=s.device).expand(len(s))
            state["seen"] = rows.to(s.dtype).unsqueeze(-1)
        return state

    def advance(self, state: dict[str, torch.Tensor], a: torch.Tensor, z: torch.Tensor,
                memory_reads: bool = True, z_drawn: bool = False
                ) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
        """The dynamics engine and the memory's step: (new state without ``s``, the
        renderer's inputs: [memory read, dynamic input], or [dynamic input] without memory).
        ``z`` is N(0, 1) noise, which a learned prior turns into its own draw, unless
        ``z_drawn`` (a posterior's draw, in training).
        ``memory_reads=False`` zeroes what the memory gives the engine and the renderer."""
        if self.prior is not None and not z_drawn:
            mean, logvar = self.prior(state["h"], state["s"], a)
            z = mean + (0.5 * logvar).exp() * z
        read = state.get("read")
        if read is not None and not memory_reads:
            read = torch.zeros_like(read)
        h, c = self.engine(state["h"], state["c"], state["s"], a, z, read)
        new = {"h": h, "c": c}
        if self.memory is None:
            context = torch.cat([h, state["s"]], -1) if self.cfg.dynamic_frame else h
            return new, [self.to_dynamic(context)]
        seen = state.get("seen") if self.cfg.memory_writes == "seen" else None
        read, dynamic, alpha, M = self.memory(h, a, state["alpha"], state["M"], state["s"], seen)
        new.update(read=read, alpha=alpha, M=M)
        return new, [read if memory_reads else torch.zeros_like(read), dynamic]

    def step(self, state: dict[str, torch.Tensor], a: torch.Tensor, z: torch.Tensor,
             memory_reads: bool = True, render: bool = True
             ) -> tuple[dict[str, torch.Tensor], StepOut | None]:
        """One step from ``state`` (whose ``s`` encodes the current frame) with one-hot-like
        action features ``a`` and noise ``z``; the new state's ``s`` is left to the caller
        (it encodes whichever frame comes next: the real one or the rendered one).
        ``memory_reads=False`` zeroes what the memory gives the engine and the renderer
        (the memory-use check). ``render=False`` skips the renderer and the heads (the
        costliest part) and returns no :class:`StepOut`: for steps whose next input is a real
        frame (a context's warm-up, the real game seen through the model)."""
        new, inputs = self.advance(state, a, z, memory_reads)
        if not render:
            return new, None
        frame, images, masks = self.renderer(inputs)
        heads = self.heads(new["h"])
        return new, StepOut(frame, images, masks, heads[:, 0], heads[:, 1], heads[:, 2:],
                            inputs)

    def mixture_params(self, h: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The next encoding's mixture given the new hidden state h: (log weights (B, K),
        means (B, K, D), log stds (B, K, D))."""
        K, D = self.cfg.encoding_mixture, self.cfg.memory_dim
        out = self.mixture(h)
        logpi = F.log_softmax(out[:, :K], -1)
        mu, logstd = out[:, K:].view(len(h), K, 2 * D).split(D, -1)
        return logpi, mu, logstd.clamp(-7.0, 2.0)

    def encoding_nll(self, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of encodings s (B, D) under the mixture, per dimension,
        averaged over the batch."""
        logpi, mu, logstd = self.mixture_params(h)
        logn = (-0.5 * ((s.unsqueeze(1) - mu) / logstd.exp()) ** 2 - logstd
                - 0.5 * math.log(2 * math.pi)).sum(-1)
        return -torch.logsumexp(logpi + logn, -1).mean() / s.shape[-1]

    def sample_encoding(self, h: torch.Tensor, normal: torch.Tensor, u: torch.Tensor,
                        temperature: float) -> torch.Tensor:
        """A draw from the mixture with the given standard normals (B, D) and uniforms (B,)
        (a component by inverse CDF of the weights / temperature, then its Gaussian with the
        std x sqrt(temperature)), as World Models' MDN-RNN draws z; temperature 0: the most
        likely component's mean."""
        logpi, mu, logstd = self.mixture_params(h)
        rows = torch.arange(len(h), device=h.device)
        if temperature <= 0:
            return mu[rows, logpi.argmax(-1)]
        cdf = torch.softmax(logpi / temperature, -1).cumsum(-1)
        k = torch.searchsorted(cdf, u.unsqueeze(-1).clamp(max=1 - 1e-6)).squeeze(-1)
        k = k.clamp(max=cdf.shape[-1] - 1)
        return mu[rows, k] + logstd[rows, k].exp() * temperature ** 0.5 * normal

    def render_static(self, read: torch.Tensor) -> torch.Tensor:
        """The static component alone from a memory read (the cycle loss and the pictures)."""
        return self.renderer.components[0](read)[0]

    def hazard(self, done_logit: torch.Tensor) -> torch.Tensor:
        """Per-step probability of the end (:func:`dream_gym.hazard.window_hazard`)."""
        return window_hazard(done_logit, self.cfg.done_weight, self.cfg.done_window)
