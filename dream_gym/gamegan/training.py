"""Train GameGAN (Kim et al. 2020) on real episodes; its recipe stages (``family = "gamegan"``).

One update: the generator runs a window of ``seq_len`` real frames, seeing the true frames
for the first K steps (the warm-up, K decaying from ``warmup_start`` to ``warmup_end``) and
its own detached renders after; the three discriminators take a hinge step on real against
generated frames, transitions (real ones under shuffled actions count as fake) and windows;
then the generator takes a step on: the hinge losses, action and z reconstruction by the
action-conditioned discriminator, feature matching on the single-frame discriminator,
frame reconstruction, the memory cycle loss (the static component re-rendered from the final
memory at every earlier attention), L1 on the dynamic masks, and the reward, done and
game-variable heads. Adam, betas (0, 0.9), as the official code. TensorBoard: losses, the
warm-up length, held-out open-loop error, and real/dreamed sequence grids.

Two stages before the first update, both departures from the paper that a measured failure
at this CPU's scale forced: the encoder and renderer learn to draw real frames as an
autoencoder (``autoencoder_steps``), then the dynamics engine and memory learn to hand the
renderer the next real frame's encoding over long windows (``dynamics_steps``). Without the
second, the adversarial updates gave a dream whose view did not move when the player strafed;
trained on by them (even with that loss kept, ``dynamics_weight``), the engine forgot how far
the player had strafed, so ``freeze_dynamics`` leaves them the renderer to train.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from dream_gym.checkpoint import load_json, load_state_dict, load_tensors, save_tensors
from dream_gym.config import pick
from dream_gym.data import (
    CollectConfig,
    Episodes,
    collect,
    concat_episodes,
    load_episodes,
)
from dream_gym.frame_gan.images import image_grid
from dream_gym.gamegan.discriminators import (
    DiscriminatorConfig,
    Discriminators,
    EncodingCritic,
)
from dream_gym.gamegan.dream import GameGANDream, to_uint8, to_unit
from dream_gym.gamegan.heads import EpisodeHeads, EpisodeHeadsConfig, train_heads
from dream_gym.gamegan.model import GameGANConfig, GameGANGenerator
from dream_gym.games import get_game
from dream_gym.training import ddp
from dream_gym.training.common import (
    load_training_state,
    make_writer,
    save_training_state,
    seed_everything,
)
from dream_gym.training.controller import ControllerTrainConfig
from dream_gym.training.iterate import RoundsConfig, round_episodes, run_round
from dream_gym.training.recipe import (
    ContextConfig,
    EvaluateConfig,
    controller_stage,
    final_stages,
    save_recipe_contexts,
)

__all__ = ["GameGANTrainConfig", "WindowSampler", "train_gamegan", "run_stages", "GameGANRun",
           "RECIPE_SECTIONS", "GameGANIterateConfig", "open_loop_error", "encoding_residual_std"]


@dataclass
class GameGANTrainConfig:
    steps: int = 6000
    """Updates (one discriminator and one generator step each)."""
    batch_size: int = 8
    seq_len: int = 16
    """Frames per training window (official 32)."""
    warmup_start: int = 8
    """True frames fed at first (official 16 of 32)."""
    warmup_end: int = 2
    """True frames fed at the end of the decay."""
    warmup_decay_steps: int = 4000
    lr: float = 1e-4
    lr_disc: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.0, 0.9])
    recon_weight: float = 0.05
    """Frame reconstruction, summed over pixels per sequence (official 0.05: the key knob)."""
    feature_weight: float = 10.0
    z_recon_weight: float = 30.0
    action_recon_weight: float = 1.0
    cycle_weight: float = 0.05
    mask_weight: float = 7.5e-5
    """L1 on the dynamic component's mask (official alpha_loss_multiplier)."""
    head_weight: float = 1.0
    """Reward, done and game-variable heads (supervised, on real targets)."""
    adversarial: bool = True
    """False trains the generator on the reconstruction and head losses alone."""
    grad_clip: float = 10.0
    autoencoder_steps: int = 0
    """Before the first update: this many steps training the frame encoder and the renderer
    (both components fed the encoding) as an autoencoder of single real frames. Without it,
    at this CPU's scale, a frame's signal reached the renderer 100x attenuated and the dream
    stayed a blurred mean room for 1,250 updates (``benchmarks/gamegan_start.py``)."""
    autoencoder_batch: int = 120
    autoencoder_lr: float = 1e-3
    dynamics_steps: int = 0
    """After the autoencoder stage: this many steps training the dynamics engine and the
    memory, the encoder frozen, to give the renderer the next real frame's encoding (what
    it learnt to draw), over long windows of encodings (no rendering, so cheap). Without it
    the adversarial updates left the dream deaf to the actions: strafing moved no pixel,
    the action discriminator's cross-entropy stayed at ln 3 (one step moves the view
    under a pixel, ``benchmarks/strafe_shift.py``)."""
    dynamics_batch: int = 32
    dynamics_seq_len: int = 32
    dynamics_warmup: int = 8
    """True encodings fed first; the engine's own predictions after (detached)."""
    dynamics_start_share: float = 0.0
    """Share of the dynamics stage's windows that begin at an episode's first frame, where
    every dream begins. Where the player stands is not in the frame (the back wall looks the
    same along the room: a real frame's encoding moves by less than its noise in 40 steps of
    strafing, then jumps when the side wall comes into view), so the engine must count the
    strafing from the spawn point; windows from anywhere else cannot teach it that."""
    dynamics_lr: float = 1e-3
    scene_window: int = 0
    """0: the paper's renderer. W > 0: the static component is taught to draw the scene, what
    the frames of the last W steps share, and the dynamic one what moves (the characters of
    a fixed-screen game, as GameGAN's Pac-Man): in the autoencoder stage the static component
    is fed the mean encoding of ``scene_frames`` frames drawn from the W steps up to the frame
    (:func:`scene_rows`) and the dynamic one the frame's own encoding, with
    ``scene_mask_weight`` x the dynamic mask's mean added to the loss; in the dynamics stage
    the memory read is trained towards that scene encoding of the next frame, the dynamic
    input towards the next frame's own. Over a stretch the characters have moved, so the
    static component cannot know where they are and the mask's cost leaves them to the
    dynamic one; the paper's renderer, fed the same vector in both, separates nothing."""
    scene_frames: int = 8
    scene_mask_weight: float = 0.05
    scene_motion_weight: float = 0.0
    """With ``scene_window``: each pixel's reconstruction error in the autoencoder stage is
    weighted by 1 + this x its distance to the median of the scene's frames there (what has
    moved over the stretch, in [0, 2]): the characters cover under 1% of a Ms. Pac-Man
    frame, so an unweighted L1 leaves them out of the mix."""
    scene_dynamic_weight: float = 0.0
    """With ``scene_window``: weight of the dynamic component's own image against the frame
    (weighted as the mix's), whatever its mask: the mask's cost shuts the mask before the
    component has learned to draw anything, and a shut mask passes it no gradient
    (measured on Ms. Pac-Man: mask mean 0.02, no character in the mix after 900 updates)."""
    keypoint_motion_weight: float = 0.0
    """With ``scene_window`` and keypoints in the encoding: weight of a loss that draws the
    keypoints' heat maps to what moved (:func:`_keypoint_motion_loss`)."""
    keypoint_concentration: float = 0.0
    """Weight, inside the keypoint loss, of each heat map's spatial variance in grid cells
    squared (:func:`_keypoint_motion_loss`)."""
    dynamics_read_loss: str = "all"
    """Which steps' memory reads the dynamics stage trains: "all", or "predicted", only the
    steps after the warm-up, which act from the model's own predictions (with
    ``memory_writes = "seen"`` nothing is written there, so a read gains only by finding a
    place of the memorised walk; on the warm-up the cell just written holds the frame the
    step started from, close to the next one, which every action's kernel learned to keep
    reading)."""
    dynamics_gate_open_share: float = 0.0
    """The first share of the dynamics stage runs with the memory's shift gate held open, so
    that the shift kernels learn where each action moves before the gate can stop them
    (measured on ImageNav: with the gate free from the start, it shut at every place and
    the attention never moved)."""
    dynamics_mirror: bool = False
    """Half of the dynamics windows mirrored left-right: frames flipped, each pair of
    ``mirror_actions`` swapped (a left-right symmetric game, as TakeCover's room). Refit on
    the rounds' real play, whose controller strafed right, the engine learned where the right
    wall is under strafing mixed with no-ops and forgot the left one
    (``benchmarks/hold_action.py --share 0.6``)."""
    dynamics_kl_weight: float = 0.1
    """With ``z_posterior``: weight of the KL of q(z | ...) to the prior, per encoding dimension
    (the squared errors are per dimension over its variance, so 0.1 is a Gaussian likelihood
    that expects a tenth of each dimension's variance to stay unexplained)."""
    dynamics_teacher_share: float = 0.0
    """Share of the dynamics windows whose engine is fed the true encodings throughout, as
    in the game (``GameGANDream.observe``), not only in the warm-up: otherwise the engine
    runs the game's hundreds of true frames in a regime it was fitted in for 8 steps only.
    Measured at 0.5 on TakeCover's round-2 refit (``benchmarks/gamegan_refit.py --set
    dynamics_teacher_share=0.5``): its controller 180.4 on the selection seeds, random 214.4
    (card, "GameGAN: an adversarial refit"); off in the recipe."""
    dynamics_adversarial_weight: float = 0.0
    """Weight of a hinge loss from an :class:`EncodingCritic` that tells windows of what an
    agent sees, [s, h], in the dream (open loop, z drawn from the prior) from the same in
    the game (the engine fed the true encodings, z at the prior's mean, as ``observe``),
    under the same actions; the official GameGAN also trains its engine adversarially.
    Fitted by squared error alone, the engine's state in its own dream parts from its state
    in the game, and a controller evolved in that dream decides otherwise in the game after
    about 50 steps (``benchmarks/decision_drift.py``). Measured (TakeCover card, "GameGAN:
    an adversarial refit"): one of four refits with it gave a controller that beats random;
    the critic's game is won or lost by chance across seeds. (In a toy world whose encoding
    steps +u or -u at random, this loss alone, without the posterior, did not teach the
    engine to draw one of the steps instead of their mean in 600 updates: the critic won.)"""
    dynamics_moment_weight: float = 0.0
    """Weight of :func:`moment_gap` between the same two kinds of windows as the critic's
    (dream and game, [s, h] after the warm-up), in stretches of ``dynamics_moment_bucket``
    steps: a stable, critic-free pull of the open loop's statistics towards the game's,
    aimed at the drift a linear controller reads as a clock. Measured at 0.03 on TakeCover's
    round-2 refit (``benchmarks/gamegan_refit.py --set dynamics_moment_weight=0.03``): the
    gap fell from 0.4..1.0 to 0.1..0.4 in 400 updates, and CMA-ES found always-left in that
    dream (174.6 on the selection seeds, random 214.4; card, "GameGAN: an adversarial
    refit"). Off in the recipe."""
    dynamics_moment_bucket: int = 8
    dynamics_adversarial_len: int = 64
    """Window length of those rollouts, the critic's and the moments' (the open loop
    back-propagated through every step; at most ``dynamics_seq_len``, the shortest episode
    the windows are drawn from)."""
    dynamics_critic_lr: float = 1e-3
    """(2e-4 left the critic at the hinge loss of chance for 70 updates on TakeCover.)"""
    freeze_encoder: bool = False
    """Keep the frame encoder as the autoencoder stage left it during the updates: it is the
    language the renderer and the dynamics stage were taught in. Trained jointly, it
    drifted under the adversarial losses and the dynamics loss grew 100-fold in 300 updates,
    while the dream's response to strafing faded (-1.59 to +0.20 pixels after 8 MOVE_RIGHT)."""
    freeze_dynamics: bool = False
    """Keep the dynamics engine, the memory and z's prior and posterior as the dynamics stage
    left them: the adversarial updates then train the renderer and the generator's heads.
    Trained on, with the dynamics loss kept at weight 100, the engine moved by 4% in 100
    updates and the dream held at MOVE_LEFT from the spawn no longer reached the side wall
    (the game's first wall frame is step 50, the dynamics stage's dream's 60; after: never in
    120 steps; the dynamics stage's engine put back: 90)."""
    dynamics_weight: float = 0.0
    """During the adversarial updates: weight of the same loss (:func:`_dynamics_loss` on
    ``dynamics_main_batch`` windows like the stage's), so that what it taught is kept."""
    dynamics_main_batch: int = 8
    """Windows per adversarial update for that loss."""
    holdout: float = 0.05
    """Share of episodes held out for the open-loop error."""
    eval_every: int = 250
    checkpoint_every: int = 100
    seed: int = 0


class WindowSampler:
    """Random windows of ``seq_len`` frames inside single episodes, with the actions between
    them and the heads' targets. A third of the windows end with their episode, so the rare
    end is seen about as often as it happens."""

    def __init__(self, episodes: Episodes, game: str, seq_len: int, gamevar_scale: float,
                 done_window: int, rng: np.random.Generator,
                 episode_ids: np.ndarray | None = None) -> None:
        self.ep, self.game = episodes, get_game(game)
        self.L, self.scale, self.window, self.rng = seq_len, gamevar_scale, done_window, rng
        ids = np.arange(len(episodes.lengths)) if episode_ids is None else episode_ids
        self.ids = ids[episodes.lengths[ids] >= seq_len]
        if not len(self.ids):
            raise ValueError(f"No episode has {seq_len} frames: collect longer episodes or "
                             "shorten seq_len.")

    def sample(self, batch: int) -> dict[str, torch.Tensor]:
        L = self.L
        e = self.ids[self.rng.integers(len(self.ids), size=batch)]
        starts, lengths = self.ep.starts[e], self.ep.lengths[e]
        ends = self.rng.random(batch) < 1 / 3
        off = np.where(ends, lengths - L,
                       (self.rng.random(batch) * (lengths - L + 1)).astype(np.int64))
        t = (starts + off)[:, None] + np.arange(L)
        last = (starts + lengths - 1)[:, None]
        return {
            "frames": torch.from_numpy(self.ep.frames[t]),  # (B, L, S, S, 3) uint8
            # the model's action features (the game's one-hot or Box values), (B, L - 1, A)
            "actions": torch.from_numpy(self.game.action_features(self.ep.actions[t[:, :-1]])),
            "reward": torch.from_numpy(self.ep.rewards[t[:, :-1]]),
            # ends (terminated, not cut) within the window after action t
            "done": torch.from_numpy((self.ep.dones[last] & (last - t[:, :-1] < self.window))
                                     .astype(np.float32)),
            "gamevars": torch.from_numpy(self.ep.gamevars[t[:, 1:]] / self.scale),
        }


def _warmup(cfg: GameGANTrainConfig, step: int) -> int:
    frac = min(1.0, step / max(1, cfg.warmup_decay_steps))
    return max(1, round(cfg.warmup_start + (cfg.warmup_end - cfg.warmup_start) * frac))


def scene_rows(ep: Episodes, rows: np.ndarray, window: int, frames: int,
               rng: np.random.Generator) -> np.ndarray:
    """For each frame row (N,): ``frames`` rows of its episode (N, frames), the row itself
    first and the rest drawn uniformly from the ``window`` steps up to it (never before the
    episode's first frame): the frames whose mean encoding is the row's scene."""
    first = np.repeat(ep.starts, ep.lengths)[rows]
    low = np.maximum(first, rows - window + 1)
    drawn = low[:, None] + (rng.random((len(rows), frames - 1))
                            * (rows - low + 1)[:, None]).astype(np.int64)
    return np.concatenate([rows[:, None], drawn], 1)


def _unroll(net: GameGANGenerator, b: dict[str, torch.Tensor], warm: int,
            z: torch.Tensor | None = None) -> dict[str, Any]:
    """The generator over a window: true frames for the first ``warm`` inputs, its own
    (detached) renders after. Returns the rendered frames x^_1.. and what the losses need."""
    x = to_unit(b["frames"])
    a = b["actions"]
    B, L = x.shape[:2]
    if z is None:
        z = torch.randn(B, L - 1, net.cfg.z_dim, device=x.device)
    state = net.initial(x[:, 0])
    inputs, outs, statics, alphas = [x[:, 0]], [], [], []
    for t in range(L - 1):
        state, out = net.step(state, a[:, t], z[:, t])
        outs.append(out)
        statics.append(out.images[0])
        if "alpha" in state:
            alphas.append(state["alpha"])
        if t + 1 < warm:
            nxt = x[:, t + 1]
            state = net.feed(state, net.encoder(nxt), True)
        else:  # its own render (or prediction), no gradient back through the unroll
            nxt = out.frame.detach()
            state = net.feed(state, net.next_encoding(nxt, out.inputs[-1].detach()), False)
        inputs.append(nxt)
    return {"x": x, "a": a, "z": z, "outs": outs, "inputs": torch.stack(inputs[:-1], 1),
            "fake": torch.stack([o.frame for o in outs], 1), "statics": statics,
            "alphas": alphas, "state": state}


def _heads_loss(net: GameGANGenerator, outs: list, b: dict[str, torch.Tensor]
                ) -> tuple[torch.Tensor, dict[str, float]]:
    reward = torch.stack([o.reward for o in outs], 1)
    logit = torch.stack([o.done_logit for o in outs], 1)
    gv = torch.stack([o.gamevars for o in outs], 1)
    done = b["done"]
    weight = 1.0 + (net.cfg.done_weight - 1.0) * done
    r_loss = F.mse_loss(reward, b["reward"])
    d_loss = F.binary_cross_entropy_with_logits(logit, done, weight=weight)
    g_loss = F.mse_loss(gv, b["gamevars"]) if gv.shape[-1] else reward.new_zeros(())
    return r_loss + d_loss + g_loss, {"reward_mse": r_loss.item(), "done_bce": d_loss.item(),
                                      "gamevars_mse": g_loss.item()}


def _encoding_scale(target: torch.Tensor) -> torch.Tensor:
    """Each dimension's variance over a batch of encodings (B, T, D): the loss's units."""
    return target.flatten(0, 1).var(0).clamp_min(1e-6)


def _encoding_loss(inputs: list[list[torch.Tensor]], target: torch.Tensor,
                   scale: torch.Tensor | None = None) -> torch.Tensor:
    """Renderer inputs per step (T lists of (B, D)) against the next frames' encodings
    (B, T, D): squared error per dimension over the encodings' variance (``scale``; None:
    this batch's), averaged."""
    scale = _encoding_scale(target) if scale is None else scale
    return torch.stack([sum(((v - target[:, k]) ** 2 / scale).mean() for v in step) / len(step)
                        for k, step in enumerate(inputs)]).mean()


def _hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


@torch.no_grad()
def open_loop_error(net: GameGANGenerator, b: dict[str, torch.Tensor], warm: int = 1
                    ) -> torch.Tensor:
    """Per-step mean squared pixel error (in [0, 1] units) of the generator fed only its own
    frames after ``warm`` true ones, at z = 0 (the mean future): (L - 1,)."""
    was = net.training
    net.eval()
    B, L = b["frames"].shape[:2]
    z = torch.zeros(B, L - 1, net.cfg.z_dim)
    r = _unroll(net, b, warm, z)
    net.train(was)
    return (((r["fake"] - r["x"][:, 1:]) / 2) ** 2).mean((0, 2, 3, 4))


def train_gamegan(sampler: WindowSampler, held: WindowSampler | None, net_cfg: GameGANConfig,
                  d_cfg: DiscriminatorConfig, cfg: GameGANTrainConfig, run_dir: str | Path,
                  device: torch.device, time_limit: float | None = None) -> GameGANGenerator:
    """Train for ``cfg.steps`` updates, resuming from ``run_dir/ckpt``; ``time_limit``
    (seconds) stops early after a checkpoint (a working stretch shorter than the run)."""
    if cfg.dynamics_weight > 0 and not cfg.freeze_encoder:
        raise ValueError("dynamics_weight > 0 needs freeze_encoder = true: the frame encodings "
                         "that loss aims at are computed once, after the autoencoder stage.")
    if cfg.freeze_dynamics and cfg.dynamics_weight > 0:
        raise ValueError("freeze_dynamics = true leaves the dynamics loss nothing to train: "
                         "set dynamics_weight = 0.")
    if cfg.adversarial and net_cfg.frame_size < 16:
        raise ValueError(f"GameGAN's discriminators halve a frame four times, so a "
                         f"{net_cfg.frame_size}x{net_cfg.frame_size} frame is too small for them "
                         "(16 at least): set adversarial = false in [gamegan] to train without "
                         "them, as training/imagenav_gamegan.toml does for its 8x8 view.")
    if cfg.scene_window and not net_cfg.use_memory:
        raise ValueError("scene_window teaches the static component (the memory's) the scene: "
                         "the no-memory variant has none; set scene_window = 0.")
    if ddp.world() > 1 and cfg.dynamics_adversarial_weight > 0:
        raise ValueError("dynamics_adversarial_weight > 0 is not data-parallel (its critic is "
                         "standardised by one process's batch): train it in one process.")
    seed_everything(cfg.seed)  # the same initial weights in every process
    run_dir = Path(run_dir)
    G = GameGANGenerator(net_cfg).to(device)
    D = Discriminators(d_cfg, net_cfg.action_dim, net_cfg.z_dim, net_cfg.frame_size).to(device)
    both = torch.nn.ModuleDict({"G": G, "D": D})
    betas = tuple(cfg.betas)
    opt = torch.optim.Adam([{"params": G.parameters(), "lr": cfg.lr},
                            {"params": D.parameters(), "lr": cfg.lr_disc}], betas=betas)
    resumed = load_training_state(run_dir / "ckpt", both, opt)
    progress = resumed or {"step": 0}
    held_batch = held.sample(16) if held is not None else None
    writer = make_writer(run_dir, cfg)
    dynamics_ckpt = run_dir / "dynamics_ckpt"  # the dynamics stage's own, mid-stage
    midway = resumed is None and (dynamics_ckpt / "progress.json").exists()
    if midway:  # the autoencoder stage's weights are in it: the windows encode with them
        step = load_json(dynamics_ckpt / "progress.json")["step"]
        load_state_dict(G, dynamics_ckpt / f"model_{step}.safetensors")
    elif resumed is None and cfg.autoencoder_steps > 0:
        _pretrain_autoencoder(G, sampler, cfg, writer, parallel=True)
    stage = resumed is None and cfg.dynamics_steps > 0
    windows = DynamicsWindows(G, sampler, cfg) if stage or cfg.dynamics_weight > 0 else None
    if stage:
        _pretrain_dynamics(G, windows, cfg, writer, parallel=True, ckpt_dir=dynamics_ckpt)
    if resumed is None and cfg.autoencoder_steps + cfg.dynamics_steps > 0:
        save_training_state(run_dir / "ckpt", both, opt, progress)  # the stages, done once
        shutil.rmtree(dynamics_ckpt, ignore_errors=True)
    G.encoder.requires_grad_(not cfg.freeze_encoder)  # no gradient: Adam leaves it as it is
    for part in _dynamics_parts(G):
        part.requires_grad_(not cfg.freeze_dynamics)
    t0 = time.time()
    bar = tqdm(range(progress["step"], cfg.steps), initial=progress["step"], total=cfg.steps,
               desc="train GameGAN")
    for step in bar:
        # each update draws from its own seeds: a resumed run repeats the uninterrupted one
        sampler.rng = np.random.default_rng((cfg.seed, step))
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        warm = _warmup(cfg, step)
        whole = sampler.sample(cfg.batch_size)  # the global batch; this process trains its rows
        b = {k: v.to(device) for k, v in ddp.share(whole).items()}
        L = whole["frames"].shape[1]
        r = _unroll(G, b, warm, _draw(torch.randn, True, len(b["frames"]), L - 1, net_cfg.z_dim,
                                      device=device))
        x, a, fake = r["x"], r["a"], r["fake"]
        real_next, prev = x[:, 1:].flatten(0, 1), r["inputs"].flatten(0, 1)
        a_flat = a.flatten(0, 1)
        logs: dict[str, float] = {}
        if cfg.adversarial:  # discriminators' step on detached fakes
            D.requires_grad_(True)
            f_detached = fake.detach().flatten(0, 1)
            d_frame = _hinge_d(D.frame(real_next)[0], D.frame(f_detached)[0])
            a_all = whole["actions"].flatten(0, 1)  # other rows' actions as negatives, as in
            wrong = ddp.share(a_all[torch.randperm(len(a_all))].view_as(  # one process
                whole["actions"])).to(device).flatten(0, 1)
            real_pair, a_logits, _ = D.pair(x[:, :-1].flatten(0, 1), real_next, a_flat)
            fake_pair = D.pair(prev, f_detached, a_flat)[0]
            neg_pair = D.pair(x[:, :-1].flatten(0, 1), real_next, wrong)[0]
            d_pair = _hinge_d(real_pair, torch.cat([fake_pair, neg_pair]))
            d_action = F.cross_entropy(a_logits, a_flat.argmax(-1)) if G.cfg.action_dim > 1 \
                else a_logits.new_zeros(())
            seq_fake = torch.cat([x[:, :1], fake.detach()], 1)
            d_time = _hinge_d(D.sequence(x), D.sequence(seq_fake))
            d_loss = d_frame + d_pair + d_time + cfg.action_recon_weight * d_action
            opt.zero_grad(set_to_none=True)
            d_loss.backward()
            ddp.average_gradients(D.parameters())
            torch.nn.utils.clip_grad_norm_(D.parameters(), cfg.grad_clip)
            opt.step()
            logs.update(d_frame=d_frame.item(), d_pair=d_pair.item(), d_time=d_time.item(),
                        d_action=d_action.item())
        # generator's step
        D.requires_grad_(False)
        flat = fake.flatten(0, 1)
        recon = ((fake - x[:, 1:]).abs().sum() / len(x))
        g_loss = cfg.recon_weight * recon
        heads, head_logs = _heads_loss(G, r["outs"], b)
        g_loss = g_loss + cfg.head_weight * heads
        logs.update(recon_l1=recon.item() / (fake[0].numel()), **head_logs)
        if cfg.adversarial:
            f_logit, f_feat = D.frame(flat)
            with torch.no_grad():
                real_feat = D.frame(real_next)[1]
            p_logit, p_action, p_z = D.pair(prev, flat, a_flat)
            t_logit = D.sequence(torch.cat([x[:, :1], fake], 1))
            adv = -f_logit.mean() - p_logit.mean() - t_logit.mean()
            feat = F.l1_loss(f_feat, real_feat)
            z_rec = F.mse_loss(p_z, r["z"].flatten(0, 1))
            a_rec = F.cross_entropy(p_action, a_flat.argmax(-1)) if G.cfg.action_dim > 1 \
                else p_z.new_zeros(())
            g_loss = g_loss + adv + cfg.feature_weight * feat + cfg.z_recon_weight * z_rec \
                + cfg.action_recon_weight * a_rec
            logs.update(g_adv=adv.item(), g_feat=feat.item(), g_z_recon=z_rec.item(),
                        g_action_recon=a_rec.item())
        if windows is not None and cfg.dynamics_weight > 0:  # the dynamics stage's loss
            s, a_dyn = windows.sample(sampler.rng, cfg.dynamics_main_batch)
            dyn_loss, dyn_mse, dyn_kl = _dynamics_loss(
                G, ddp.share(s), ddp.share(a_dyn), cfg, _encoding_scale(s[:, 1:]), True)
            g_loss = g_loss + cfg.dynamics_weight * dyn_loss
            logs.update(dynamics_mse=dyn_mse.item(), dynamics_kl=dyn_kl.item())
        if r["alphas"] and cfg.cycle_weight > 0:
            # the static component drawn from the final memory at each earlier attention
            # must match what was drawn then: what the memory wrote, it keeps
            M = r["state"]["M"]
            alphas = torch.cat(r["alphas"])
            reread = G.render_static(G.memory.read_at(alphas, M.repeat(len(r["alphas"]), 1, 1)))
            target = torch.cat(r["statics"]).detach()
            cycle = (reread - target).abs().sum() / len(x)
            g_loss = g_loss + cfg.cycle_weight * cycle
            logs["cycle_l1"] = cycle.item() / target[0].numel() / len(r["alphas"])
            dyn = torch.stack([o.masks[:, 1] for o in r["outs"]], 1)
            g_loss = g_loss + cfg.mask_weight * dyn.abs().sum() / len(x)
            logs["dynamic_mask_mean"] = dyn.mean().item()
        opt.zero_grad(set_to_none=True)
        g_loss.backward()
        ddp.average_gradients(G.parameters())
        torch.nn.utils.clip_grad_norm_(G.parameters(), cfg.grad_clip)
        opt.step()
        if step % 10 == 0:
            for k, v in logs.items():
                writer.add_scalar(f"losses/{k}", v, step)
            writer.add_scalar("charts/warm_up", warm, step)
            bar.set_postfix(recon=f"{logs['recon_l1']:.3f}", done=f"{logs['done_bce']:.3f}")
        if held_batch is not None and ddp.is_main() and ((step + 1) % cfg.eval_every == 0
                                                         or step == 0):
            err = open_loop_error(G, {k: v.to(device) for k, v in held_batch.items()})
            for h in (1, 5, 10):
                if h <= len(err):
                    writer.add_scalar(f"held_out/open_loop_mse_{h}", err[h - 1].item(), step + 1)
            _log_grids(writer, G, held_batch, step + 1, device)
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            save_training_state(run_dir / "ckpt", both, opt, {"step": step + 1})
            if ddp.any_process(time_limit is not None and time.time() - t0 > time_limit):
                break
    writer.close()
    return G.eval()


def _pretrain_autoencoder(G: GameGANGenerator, sampler: WindowSampler,
                          cfg: GameGANTrainConfig, writer, parallel: bool = False) -> None:
    """Frame encoder and renderer as an autoencoder of real frames of the training episodes
    (``autoencoder_steps``, L1); deterministic given the seed, so an interrupted run that
    repeats it repeats it exactly. ``parallel``: each torchrun process trains on its share
    of the batch (:mod:`dream_gym.training.ddp`)."""
    rng = np.random.default_rng((cfg.seed, 1))
    torch.manual_seed(cfg.seed)
    ep = sampler.ep
    rows = np.concatenate([np.arange(ep.starts[e], ep.starts[e] + ep.lengths[e])
                           for e in sampler.ids])
    params = [*G.encoder.parameters(), *G.renderer.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.autoencoder_lr, betas=tuple(cfg.betas))
    device = next(G.parameters()).device
    for step in tqdm(range(cfg.autoencoder_steps), desc="renderer as autoencoder"):
        picked = rng.choice(rows, cfg.autoencoder_batch)
        if cfg.scene_window:  # the row itself first: x is column 0
            picked = scene_rows(ep, picked, cfg.scene_window, cfg.scene_frames, rng)
        picked = ddp.share(picked) if parallel else picked
        x = to_unit(torch.from_numpy(ep.frames[picked.reshape(-1)]).to(device))
        s, heat = G.encoder.encode(x)
        if cfg.scene_window:
            s, x = s.view(*picked.shape, -1), x.view(*picked.shape, *x.shape[1:])
            frame, images, masks = G.renderer([s.mean(1), s[:, 0]])
            # what moved: the frame's distance to the scene frames' median (a character
            # there in under half of them is not in it)
            moved = (x[:, 0] - x.median(1).values).abs().mean(1, keepdim=True)
            x = x[:, 0]
            weight = 1 + cfg.scene_motion_weight * moved
            loss = (weight * (frame - x).abs()).mean() \
                + cfg.scene_mask_weight * masks[:, 1].mean() \
                + cfg.scene_dynamic_weight * (weight * (images[1] - x).abs()).mean()
            if heat is not None and cfg.keypoint_motion_weight:
                drawn = _keypoint_motion_loss(heat.view(*picked.shape, *heat.shape[1:])[:, 0],
                                              moved, cfg.keypoint_concentration)
                loss = loss + cfg.keypoint_motion_weight * drawn
        else:
            loss = (G.renderer([s] * len(G.renderer.components))[0] - x).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if parallel:
            ddp.average_gradients(params)
        opt.step()
        if step % 10 == 0:
            writer.add_scalar("pretrain/autoencoder_l1", loss.item(), step)
            if cfg.scene_window:
                writer.add_scalar("pretrain/dynamic_mask_mean", masks[:, 1].mean().item(), step)
            if heat is not None and cfg.keypoint_motion_weight:
                writer.add_scalar("pretrain/keypoint_motion", drawn.item(), step)


def _keypoint_motion_loss(heat: torch.Tensor, moved: torch.Tensor, concentration: float
                          ) -> torch.Tensor:
    """Cross-entropy of where things moved (``moved`` (B, 1, S, S), pooled to the heat
    maps' grid and normalised) under the mean of the K keypoints' heat maps (B, K, G*G):
    the keypoints are drawn to the moving characters, spread over them, before the
    renderer can reward sitting on one (alone, on Ms. Pac-Man all of them stayed in the
    middle of the screen); plus ``concentration`` x each heat map's spatial variance (in
    cells of the grid), as the concentration loss of Zhang et al. 2018, since a keypoint
    is its map's mean and a map spread over two characters puts it between them."""
    side = math.isqrt(heat.shape[-1])
    target = F.adaptive_avg_pool2d(moved, side).flatten(1) + 1e-6
    target = target / target.sum(1, keepdim=True)
    cross_entropy = -(target * heat.mean(1).clamp_min(1e-8).log()).sum(1).mean()
    at = torch.arange(side, dtype=heat.dtype, device=heat.device)
    cells = torch.stack(torch.meshgrid(at, at, indexing="ij")).flatten(1)  # (2, G*G)
    mean = heat @ cells.T  # (B, K, 2)
    variance = heat @ cells.square().sum(0) - mean.square().sum(-1)
    return cross_entropy + concentration * variance.mean()


@torch.no_grad()
def encode_frames(G: GameGANGenerator, frames: np.ndarray, chunk: int = 2048) -> torch.Tensor:
    """The frame encoder over uint8 frames (N, S, S, 3): (N, memory_dim)."""
    device = next(G.parameters()).device
    return torch.cat([G.encoder(to_unit(torch.from_numpy(np.ascontiguousarray(
        frames[i:i + chunk])).to(device)))
                      for i in range(0, len(frames), chunk)])


class DynamicsWindows:
    """Windows of the training episodes' frame encodings and actions for
    :func:`_dynamics_loss`: ``dynamics_seq_len`` long, ``dynamics_start_share`` of them from
    an episode's first frame. The encodings are computed once (the encoder is frozen)."""

    def __init__(self, G: GameGANGenerator, sampler: WindowSampler, cfg: GameGANTrainConfig
                 ) -> None:
        self.ep, self.game, self.cfg = sampler.ep, sampler.game, cfg
        self.ids = sampler.ids[self.ep.lengths[sampler.ids] >= cfg.dynamics_seq_len]
        if not len(self.ids):
            raise ValueError(f"No training episode has {cfg.dynamics_seq_len} frames: lower "
                             f"dynamics_seq_len.")
        self.swap = np.arange(G.cfg.action_dim)  # action feature -> its mirror image's
        for a, b in G.cfg.mirror_actions:
            self.swap[[a, b]] = [b, a]
        if cfg.dynamics_mirror and not G.cfg.mirror_actions:
            raise ValueError("dynamics_mirror = true needs mirror_actions (which actions are "
                             "each other's mirror image, e.g. [[2, 1]] for TakeCover).")
        if cfg.dynamics_mirror and cfg.scene_window:
            raise ValueError("dynamics_mirror and scene_window together are not implemented: "
                             "set one of them.")
        with torch.no_grad():
            self.S = encode_frames(G, self.ep.frames)
            self.S_mirrored = encode_frames(G, self.ep.frames[:, :, ::-1]) \
                if cfg.dynamics_mirror else None
        self.scene = None
        """Each frame's scene encoding (N, D) with ``scene_window``: the memory read's target."""
        if cfg.scene_window:
            rows = scene_rows(self.ep, np.arange(len(self.S)), cfg.scene_window,
                              cfg.scene_frames, np.random.default_rng((cfg.seed, 4)))
            self.scene = self.S[torch.from_numpy(rows)].mean(1)

    def sample(self, rng: np.random.Generator, batch: int, length: int | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """(encodings (B, L, D), action features (B, L - 1, A)); L = ``length`` or
        ``dynamics_seq_len``."""
        s, a, _ = self.sample_scene(rng, batch, length)
        return s, a

    def sample_scene(self, rng: np.random.Generator, batch: int, length: int | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """:meth:`sample` and the windows' scene encodings (B, L, D) (None without
        ``scene_window``), from the same draws."""
        ep, L = self.ep, length or self.cfg.dynamics_seq_len
        if (length or 0) > self.cfg.dynamics_seq_len:  # self.ids: episodes that long, no longer
            raise ValueError(f"Windows of {L} steps: at most dynamics_seq_len "
                             f"({self.cfg.dynamics_seq_len}); raise it or shorten the window.")
        e = self.ids[rng.integers(len(self.ids), size=batch)]
        off = (rng.random(batch) * (ep.lengths[e] - L + 1)).astype(np.int64)
        off[rng.random(batch) < self.cfg.dynamics_start_share] = 0  # where every dream starts
        rows = (ep.starts[e] + off)[:, None] + np.arange(L)
        t = torch.from_numpy(rows).to(self.S.device)
        a = torch.from_numpy(self.game.action_features(ep.actions[rows[:, :-1]]))
        s = self.S[t]
        if self.S_mirrored is not None:  # the second half, seen in a mirror
            half = batch // 2
            s = torch.cat([s[:half], self.S_mirrored[t[half:]]])
            a = torch.cat([a[:half], a[half:][..., torch.from_numpy(self.swap)]])
        scene = self.scene[t] if self.scene is not None else None
        return s, a.to(self.S.device), scene


def _dynamics_parts(G: GameGANGenerator) -> list[torch.nn.Module]:
    """What the dynamics stage trains: the engine, the memory (or the no-memory variant's
    projection) and z's posterior and prior."""
    parts = [G.engine, G.memory if G.memory is not None else G.to_dynamic, G.posterior, G.prior,
             G.mixture]
    return [p for p in parts if p is not None]


def _pretrain_dynamics(G: GameGANGenerator, windows: DynamicsWindows, cfg: GameGANTrainConfig,
                       writer, parallel: bool = False, ckpt_dir: Path | None = None) -> None:
    """The dynamics engine and the memory learn to hand the renderer the next real frame's
    encoding (``dynamics_steps``): :func:`_dynamics_loss` on :class:`DynamicsWindows`.
    Deterministic given the seed, like the autoencoder stage. ``parallel``: each torchrun
    process trains on its share of the windows. ``ckpt_dir``: every ``checkpoint_every``
    updates the weights, the optimizer and both random streams are saved there, and a run
    that finds them goes on from there, as the uninterrupted one would (without the
    adversarial or moment losses, whose critic is not saved: then the stage starts over)."""
    if cfg.dynamics_read_loss not in ("all", "predicted"):
        raise ValueError(f"dynamics_read_loss = {cfg.dynamics_read_loss!r}: use \"all\" or "
                         "\"predicted\".")
    rng = np.random.default_rng((cfg.seed, 2))
    torch.manual_seed(cfg.seed + 2)  # processes draw the global batch's noise (shared_draw)
    share = ddp.share if parallel else (lambda batch: batch)
    params = [p for part in _dynamics_parts(G) for p in part.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.dynamics_lr, betas=tuple(cfg.betas))
    critic = None
    start = 0
    resumable = ckpt_dir is not None and not (cfg.dynamics_adversarial_weight > 0
                                              or cfg.dynamics_moment_weight > 0)
    if resumable:
        progress = load_training_state(ckpt_dir, G, opt)
        if progress is not None:
            start = progress["step"]
            rng.bit_generator.state = progress["numpy_rng"]
            torch.set_rng_state(torch.tensor(progress["torch_rng"], dtype=torch.uint8))
    for step in tqdm(range(start, cfg.dynamics_steps), initial=start,
                     total=cfg.dynamics_steps, desc="dynamics on frame encodings"):
        if G.memory is not None:
            G.memory.gate_held_open = step < cfg.dynamics_gate_open_share * cfg.dynamics_steps
        s, a, scene = windows.sample_scene(rng, cfg.dynamics_batch)
        # a process's share is scaled by the global batch's variance, as one process scales it
        scale = _encoding_scale(s[:, 1:]) if parallel else None
        if G.mixture is not None:  # teacher-forced likelihood, as World Models' M
            loss = mse = _mixture_loss(G, share(s), share(a))
            kl = loss.new_zeros(())
        else:
            loss, mse, kl = _dynamics_loss(G, share(s), share(a), cfg, scale, parallel,
                                           share(scene) if scene is not None else None)
        if not torch.isfinite(loss):  # stop before NaN weights reach a checkpoint
            if ckpt_dir is not None:  # the next run starts the stage over, at its new rate
                shutil.rmtree(ckpt_dir, ignore_errors=True)
            raise FloatingPointError(
                f"The dynamics stage diverged at update {step} (loss {loss.item()}): lower "
                f"dynamics_lr (now {cfg.dynamics_lr:g}) or grad_clip ({cfg.grad_clip:g}) "
                "and run the same command again; the stage starts over.")
        if cfg.dynamics_adversarial_weight > 0 or cfg.dynamics_moment_weight > 0:
            s, a = map(share, windows.sample(rng, cfg.dynamics_batch,
                                             cfg.dynamics_adversarial_len))
            w = cfg.dynamics_warmup  # the part after the warm-up, where the two differ
            with torch.no_grad():
                real = _feature_rollout(G, s, a, w, teacher=True)[:, w - 1:]
            fake, act = _feature_rollout(G, s, a, w, teacher=False)[:, w - 1:], a[:, w - 1:]
        if cfg.dynamics_adversarial_weight > 0:
            if critic is None:  # standardised by the game's side of the first batch
                flat = real.flatten(0, 1)
                critic = EncodingCritic(flat.mean(0), flat.std(0),
                                        torch.diff(real, dim=1).flatten(0, 1).std(0),
                                        G.cfg.action_dim).to(s.device)
                c_opt = torch.optim.Adam(critic.parameters(), lr=cfg.dynamics_critic_lr,
                                         betas=tuple(cfg.betas))
            d_loss = _hinge_d(critic(real, act), critic(fake.detach(), act))
            c_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            c_opt.step()
            adv = -critic(fake, act).mean()
            loss = loss + cfg.dynamics_adversarial_weight * adv
            if step % 10 == 0:
                writer.add_scalar("pretrain/dynamics_critic", d_loss.item(), step)
                writer.add_scalar("pretrain/dynamics_adversarial", adv.item(), step)
        if cfg.dynamics_moment_weight > 0:
            gap = moment_gap(real, fake, cfg.dynamics_moment_bucket)
            loss = loss + cfg.dynamics_moment_weight * gap
            if step % 10 == 0:
                writer.add_scalar("pretrain/dynamics_moment_gap", gap.item(), step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if parallel:
            ddp.average_gradients(params)
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        if step % 10 == 0:
            if G.mixture is not None:
                writer.add_scalar("pretrain/dynamics_nll", mse.item(), step)
            else:
                writer.add_scalar("pretrain/dynamics_mse", mse.item(), step)
                writer.add_scalar("pretrain/dynamics_kl", kl.item(), step)
        if resumable and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.dynamics_steps:
            save_training_state(ckpt_dir, G, opt, {
                "step": step + 1, "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state().tolist()})
    if G.memory is not None:
        G.memory.gate_held_open = False


def moment_gap(real: torch.Tensor, fake: torch.Tensor, bucket: int) -> torch.Tensor:
    """How far the per-feature mean and spread of ``fake`` (B, T, F) are from ``real``'s,
    in stretches of ``bucket`` steps (pooled over the batch), in units of the real
    features' spread: 0 when every stretch matches in both moments. A linear read-out of
    the features whose mean moves with time in one and not the other (a clock) pays it."""
    scale = real.flatten(0, 1).std(0)
    scale = scale.clamp_min(0.01 * scale.mean())
    n = real.shape[1] // bucket * bucket
    r = real[:, :n].unflatten(1, (-1, bucket)).transpose(0, 1).flatten(1, 2)
    f = fake[:, :n].unflatten(1, (-1, bucket)).transpose(0, 1).flatten(1, 2)
    mean_gap = (f.mean(1) - r.mean(1)) / scale
    std_gap = (f.std(1) - r.std(1)) / scale
    return (mean_gap ** 2 + std_gap ** 2).mean()


def _dynamics_loss(G: GameGANGenerator, s_true: torch.Tensor, a: torch.Tensor,
                   cfg: GameGANTrainConfig, scale: torch.Tensor | None = None,
                   parallel: bool = False, scene: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_dynamics_rollout`'s :func:`_encoding_loss` on every renderer input, plus, with
    a posterior, ``dynamics_kl_weight`` x the KL of q(z | h, s_t, a_t, s_t+1) to the learned
    prior p(z | h, s_t, a_t) (summed over z, per encoding dimension): a conditional VAE.
    ``parallel``: these are one torchrun process's rows of a global batch (``scale`` is
    then the global batch's), their noise drawn as one process draws it for them.
    ``scene`` (B, L, D): the windows' scene encodings, the memory reads' targets
    (``scene_window``). Returns (loss, encoding loss, KL per step)."""
    teacher = (_draw(torch.rand, parallel, len(s_true), device=s_true.device)
               < cfg.dynamics_teacher_share
               if cfg.dynamics_teacher_share > 0 else None)  # (no draw: older runs' stream)
    steps, kls = _dynamics_rollout(G, s_true, a, cfg, teacher, parallel)
    if cfg.dynamics_read_loss == "predicted":  # the warm-up's reads go untrained
        steps = [step if k >= cfg.dynamics_warmup else step[-1:] for k, step in enumerate(steps)]
    if scene is None:
        mse = _encoding_loss(steps, s_true[:, 1:], scale)
    else:  # the reads (first of each step's inputs) aim at the scene, the rest at s_t+1
        mse = _encoding_loss([step[-1:] for step in steps], s_true[:, 1:], scale)
        reads = [step[:1] for step in steps if len(step) > 1]
        if reads:
            first = len(steps) - len(reads)  # (with dynamics_read_loss = "predicted")
            mse = (mse + _encoding_loss(reads, scene[:, 1 + first:],
                                        _encoding_scale(scene[:, 1:]))) / 2
    kl = torch.stack(kls).mean() if kls else mse.new_zeros(())
    return mse + cfg.dynamics_kl_weight * kl / s_true.shape[-1], mse, kl


@torch.no_grad()
def encoding_residual_std(G: GameGANGenerator, windows: DynamicsWindows,
                          rng: np.random.Generator, batches: int = 8, batch: int = 32
                          ) -> torch.Tensor:
    """Per-dimension std (D,) of the true next encoding around the engine's prediction (the
    input it feeds back), over windows as the dynamics stage runs them, after the warm-up:
    the spread a dream draws its encodings with (``GameGANDream.encoding_noise``)."""
    cfg = windows.cfg
    residuals = []
    for _ in range(batches):
        s_true, a = windows.sample(rng, batch)
        steps, _ = _dynamics_rollout(G, s_true, a, cfg)
        residuals += [s_true[:, k + 1] - step[-1]
                      for k, step in enumerate(steps) if k + 1 >= cfg.dynamics_warmup]
    return torch.cat(residuals).std(0)


def _mixture_loss(G: GameGANGenerator, s_true: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The engine fed the true encodings s_true (B, L, D) and actions a (B, L - 1, A), z at
    the prior's mean: negative log-likelihood per dimension of each next encoding under the
    mixture of its new hidden state (:attr:`GameGANConfig.encoding_mixture`)."""
    state = G.initial_from_encoding(s_true[:, 0])
    zero = s_true.new_zeros(len(s_true), G.cfg.z_dim)
    nll = []
    for k in range(s_true.shape[1] - 1):
        new, _ = G.advance(state, a[:, k], zero)
        nll.append(G.encoding_nll(new["h"], s_true[:, k + 1]))
        state = {**new, "s": s_true[:, k + 1]}
    return torch.stack(nll).mean()


def _draw(draw, parallel: bool, rows: int, *shape: int, device=None) -> torch.Tensor:
    """``draw`` (torch.randn, torch.rand) for ``rows`` rows; ``parallel``: this process's
    rows of the global batch's draw (:func:`dream_gym.training.ddp.shared_draw`)."""
    if parallel:
        return ddp.shared_draw(draw, rows, *shape, device=device)
    return draw(rows, *shape, device=device)


def _dynamics_rollout(G: GameGANGenerator, s_true: torch.Tensor, a: torch.Tensor,
                      cfg: GameGANTrainConfig, teacher: torch.Tensor | None = None,
                      parallel: bool = False
                      ) -> tuple[list[list[torch.Tensor]], list[torch.Tensor]]:
    """The engine and memory over a window of true encodings s_true (B, L, D) and actions
    a (B, L - 1, A): the first ``dynamics_warmup`` inputs true, then the engine's own
    dynamic input fed back (detached), except in the ``teacher`` rows (B,), fed the true
    ones throughout; with a posterior, each step's z drawn from it.
    Returns (the renderer's inputs per step, the KL to the prior per step)."""
    B, L = s_true.shape[:2]
    state = G.initial_from_encoding(s_true[:, 0])
    steps, kls = [], []
    for k in range(L - 1):
        z = _draw(torch.randn, parallel, B, G.cfg.z_dim, device=s_true.device)
        if G.posterior is not None:
            mean, logvar = G.posterior(state["h"], state["s"], a[:, k], s_true[:, k + 1])
            p_mean, p_logvar = G.prior(state["h"], state["s"], a[:, k])
            z = mean + z * (0.5 * logvar).exp()
            kls.append(0.5 * (p_logvar - logvar + (logvar.exp() + (mean - p_mean) ** 2)
                              / p_logvar.exp() - 1).sum(-1).mean())
        state, inputs = G.advance(state, a[:, k], z, z_drawn=G.posterior is not None)
        steps.append(inputs)
        if k + 1 < cfg.dynamics_warmup:
            state = G.feed(state, s_true[:, k + 1], True)
        elif teacher is None:
            state = G.feed(state, inputs[-1].detach(), False)
        else:
            state = G.feed(state, torch.where(teacher[:, None], s_true[:, k + 1],
                                              inputs[-1].detach()), teacher)
    return steps, kls


def _feature_rollout(G: GameGANGenerator, s_true: torch.Tensor, a: torch.Tensor, warm: int,
                     teacher: bool) -> torch.Tensor:
    """What an agent sees after each of the L - 1 steps, [s, h] (B, L - 1, D + H): in the
    game (``teacher``: the true encodings fed, z at the prior's mean, as
    ``GameGANDream.observe``) or in a dream (the engine's own encodings fed back after the
    first ``warm`` true ones, z drawn from the prior; not detached)."""
    state = G.initial_from_encoding(s_true[:, 0])
    out = []
    for k in range(s_true.shape[1] - 1):
        z = torch.randn(len(s_true), G.cfg.z_dim, device=s_true.device)
        state, inputs = G.advance(state, a[:, k], torch.zeros_like(z) if teacher else z)
        real = teacher or k + 1 < warm
        state = G.feed(state, s_true[:, k + 1] if real else inputs[-1], real)
        out.append(torch.cat([state["s"], state["h"]], -1))
    return torch.stack(out, 1)


@torch.no_grad()
def _log_grids(writer, G: GameGANGenerator, batch: dict[str, torch.Tensor], step: int,
               device: torch.device) -> None:
    """Real and dreamed (open loop after one true frame, z = 0) sequences, 4 of them, and
    the static and dynamic components with the dynamic mask."""
    b = {k: v[:4].to(device) for k, v in batch.items()}
    was = G.training
    G.eval()
    r = _unroll(G, b, 1, torch.zeros(4, b["frames"].shape[1] - 1, G.cfg.z_dim, device=device))
    G.train(was)
    real = b["frames"][:, 1:].cpu().numpy()
    dream = to_uint8(r["fake"]).cpu().numpy()
    rows = np.concatenate([np.stack([real[i], dream[i]]) for i in range(len(real))])
    cols = rows.shape[1]
    writer.add_image("sequences/real_then_dreamed", image_grid(rows.reshape(-1, *rows.shape[2:]),
                     cols=cols), step, dataformats="HWC")
    if len(r["outs"][0].images) == 2:
        o = r["outs"][-1]
        parts = [to_uint8(o.images[0]), to_uint8(o.images[1]),
                 (o.masks[:, 1:2].movedim(1, -1).repeat(1, 1, 1, 3) * 255).to(torch.uint8),
                 to_uint8(o.frame)]
        grid = torch.stack(parts, 1).flatten(0, 1).cpu().numpy()
        writer.add_image("components/static_dynamic_mask_frame", image_grid(grid, cols=4),
                         step, dataformats="HWC")


@dataclass
class GameGANIterateConfig(RoundsConfig):
    """GameGAN's rounds (World Models' iterative procedure, :mod:`dream_gym.training.iterate`):
    the dynamics engine and memory are refit on all real data so far, starting each round
    from the trained generator's (as ``refit_from = "first"`` in the TakeCover World Models
    recipe), the encoder and renderer fixed as the updates left them; then the episode
    heads and the encoding noise are fitted again on all the data. The controller evolved
    in the first dream strafed right in short bursts mixed with no-ops, which random held
    actions never show from the spawn: the dream never reached the right wall under them."""

    dynamics_steps: int = 400
    dynamics_lr: float = 5e-4


@dataclass
class GameGANRecipe:
    """What ``[gamegan]`` sets beyond the generator's shape and training."""

    done_mode: str = "bernoulli"
    """Only "bernoulli" (done sampled from the hazard) is implemented for GameGAN."""
    gamevar_scale: float | None = None
    """Game-variable targets are divided by this; None: their largest magnitude (>= 1)."""
    time_limit_minutes: float | None = None
    """Stop the training stage after this long (it resumes on the next run)."""
    encoding_noise: bool = False
    """The dream draws each next encoding around the engine's prediction with the spread of
    the real ones (:func:`encoding_residual_std`, measured once after training), as World
    Models' M draws z. Acting from the prediction alone, the dream's encodings vary less than
    the real ones, and a controller fitted to them read the real game's differently (its
    output shifted by 0.47; dream 565, real 219 on 32 episodes). With the noise, 12
    generations: real 308 on the same 32; the recipe's 20: 238 on 100 (random 227), so the
    gap is not closed by it alone."""
    features: str | None = None
    """The blocks of [s, h, g] an agent sees (:class:`~dream_gym.gamegan.dream.GameGANDream`);
    None: all of them."""


RECIPE_SECTIONS: dict[str, tuple[type, ...]] = {
    "collect": (CollectConfig,),
    "gamegan": (GameGANConfig, GameGANTrainConfig, GameGANRecipe),
    "discriminators": (DiscriminatorConfig,),
    "heads": (EpisodeHeadsConfig,),
    "controller": (ControllerTrainConfig,),
    "iterate": (GameGANIterateConfig,),
    "final_controller": (ControllerTrainConfig,),
    "context": (ContextConfig,),
    "evaluate": (EvaluateConfig,),
}
"""Which dataclasses read each section of a GameGAN recipe (collection, controller, contexts
and evaluation as in World Models' recipes)."""


def _heads(net: GameGANGenerator, episodes: Episodes, game: str, train_ids: np.ndarray,
           held_ids: np.ndarray, scale: float, hcfg: EpisodeHeadsConfig, out: Path,
           noise_std: list[float] | None = None) -> dict[str, Any]:
    """Fit the episode heads (:func:`train_heads`), save them to ``out/heads.safetensors``."""
    writer = make_writer(out / "heads", hcfg)
    noise = torch.tensor(noise_std) if noise_std is not None else None
    fitted, report = train_heads(net, episodes, game, train_ids, held_ids, scale, hcfg, writer,
                                 noise)
    writer.close()
    save_tensors(out / "heads.safetensors", fitted.state_dict())
    return {"held_out": report, "inputs": fitted.gru.input_size}


def _noise(net: GameGANGenerator, windows: DynamicsWindows, seed: int) -> dict[str, Any]:
    torch.manual_seed(seed + 3)  # the posterior's draws
    std = encoding_residual_std(net, windows, np.random.default_rng((seed, 3)))
    return {"std": [round(float(v), 6) for v in std]}


@dataclass
class GameGANRun:
    """What a GameGAN recipe's stages share once the data are collected: the configs read
    from the recipe, the episodes, the held-out split and the game-variable scale. Its
    :meth:`refit` is one iterative round's refit, also callable on a finished run folder
    with other settings (``benchmarks/gamegan_refit.py``)."""

    r: dict[str, Any]
    run_dir: Path
    episodes: Episodes
    scale: float
    net_cfg: GameGANConfig
    tcfg: GameGANTrainConfig
    extra: GameGANRecipe
    hcfg: EpisodeHeadsConfig | None
    train_ids: np.ndarray
    held_ids: np.ndarray

    @classmethod
    def load(cls, r: dict[str, Any], run_dir: Path) -> GameGANRun:
        seed = r.get("seed", 0)
        episodes = load_episodes(run_dir / "data")
        section = r.get("gamegan", {})
        extra = pick(GameGANRecipe, section)
        scale = extra.gamevar_scale or (float(max(1.0, np.abs(episodes.gamevars).max()))
                                        if episodes.gamevars.size else 1.0)
        game = get_game(r["game"])
        net_cfg = pick(GameGANConfig, section, action_dim=game.action_dim,
                       gamevars=episodes.gamevars.shape[1])
        tcfg = pick(GameGANTrainConfig, section, seed=seed)
        held = np.random.default_rng(seed).random(len(episodes.lengths)) < tcfg.holdout
        hcfg = pick(EpisodeHeadsConfig, r["heads"], seed=seed) if "heads" in r else None
        return cls(r, run_dir, episodes, scale, net_cfg, tcfg, extra, hcfg,
                   np.flatnonzero(~held), np.flatnonzero(held))

    @property
    def seed(self) -> int:
        return self.r.get("seed", 0)

    @property
    def game(self) -> str:
        return get_game(self.r["game"]).name

    @property
    def final(self) -> Path:
        """The trained generator (the ``gamegan`` stage's output)."""
        return self.run_dir / "gamegan" / "final.safetensors"

    def windows(self, eps: Episodes, ids: np.ndarray, stream: int = 0) -> WindowSampler:
        return WindowSampler(eps, self.game, self.tcfg.seq_len, self.scale,
                             self.net_cfg.done_window,
                             np.random.default_rng(self.seed + stream), ids)

    def heads(self, net: GameGANGenerator, eps: Episodes, ids: np.ndarray, out: Path,
              noise_std: list[float] | None = None, hcfg: EpisodeHeadsConfig | None = None
              ) -> dict[str, Any] | None:
        hcfg = hcfg or self.hcfg
        if hcfg is None:
            return None
        return _heads(net, eps, self.game, ids, self.held_ids, self.scale, hcfg, out,
                      noise_std)

    def export(self, net: GameGANGenerator, heads_dir: Path, heads_report: dict | None,
               noise_std: list[float] | None, to: list[Path]) -> None:
        heads = None
        if self.hcfg is not None and heads_report is not None:
            heads = EpisodeHeads(heads_report["inputs"], self.net_cfg.gamevars, self.hcfg)
            heads.load_state_dict(load_tensors(heads_dir / "heads.safetensors"))
        noise = torch.tensor(noise_std) if noise_std is not None else None
        for d in to:
            GameGANDream(self.game, net, self.scale, heads, noise, self.extra.features).save(d)

    def refit(self, k: int, rdir: Path, export_to: list[Path],
              heads: dict[str, Any] | None = None, net: dict[str, Any] | None = None,
              **overrides: Any) -> dict[str, Any]:
        """Round k's refit: the dynamics engine and memory fitted again on all real data
        so far (``[iterate]``'s steps and learning rate; ``overrides`` replace any other
        :class:`GameGANTrainConfig` field), starting from the trained generator's, then the
        encoding noise and the episode heads (``heads`` replace :class:`EpisodeHeadsConfig`
        fields; ``net`` :class:`GameGANConfig` fields, of parts the trained generator lacks,
        e.g. ``encoding_mixture``); written to ``rdir``, the dream exported to each of
        ``export_to``."""
        icfg = pick(GameGANIterateConfig, self.r["iterate"], seed=self.seed)
        eps = concat_episodes([self.episodes, *round_episodes(self.run_dir, k)])
        ids = np.concatenate([self.train_ids, np.arange(len(self.episodes.lengths),
                                                        len(eps.lengths))])
        G = GameGANGenerator(dataclasses.replace(self.net_cfg, **(net or {})))
        missing, unexpected = G.load_state_dict(load_tensors(self.final), strict=False)
        if unexpected or any(not key.startswith("mixture.") for key in missing):
            raise ValueError(f"{self.final} does not fit these settings {net}: missing "
                             f"{missing}, unexpected {unexpected}.")
        rcfg = dataclasses.replace(self.tcfg, dynamics_steps=icfg.dynamics_steps,
                                   dynamics_lr=icfg.dynamics_lr, seed=self.seed + k)
        rcfg = dataclasses.replace(rcfg, **overrides)
        writer = make_writer(rdir / "dynamics", rcfg)
        dyn = DynamicsWindows(G, self.windows(eps, ids), rcfg)  # encodes every frame once
        _pretrain_dynamics(G, dyn, rcfg, writer)
        writer.close()
        G.eval()
        report: dict[str, Any] = {"real_frames_total": int(eps.lengths.sum())}
        if self.extra.encoding_noise and G.mixture is None:  # (a mixture draws its own)
            # the encoder is frozen: the refit's encodings serve the noise too
            report["encoding_noise"] = _noise(G, dyn, self.seed + k)
        hcfg = dataclasses.replace(self.hcfg, **(heads or {})) if self.hcfg else None
        fitted = self.heads(G, eps, ids, rdir, report.get("encoding_noise", {}).get("std"),
                            hcfg)
        if fitted is not None:
            report["heads"] = fitted
        save_tensors(rdir / "gamegan.safetensors", G.state_dict())
        self.export(G, rdir, report.get("heads"),
                    report.get("encoding_noise", {}).get("std"), export_to)
        return report


def run_stages(r: dict[str, Any], run_dir: Path, stages, device: torch.device) -> Path:
    """Collect (the same stage and data format as World Models'), train, export, then the
    controller, World Models' iterative rounds (``[iterate]``) and the evaluation exactly as
    a World Models recipe runs them."""
    seed = r.get("seed", 0)
    data_dir, model_dir = run_dir / "data", run_dir / "model"
    ccfg = pick(CollectConfig, r["collect"], game=r["game"], seed=seed)
    stages.run("collect", lambda: {"frames": collect(ccfg, data_dir)})
    run = GameGANRun.load(r, run_dir)
    episodes, tcfg, extra = run.episodes, run.tcfg, run.extra
    d_cfg = pick(DiscriminatorConfig, r.get("discriminators", {}))

    def train_stage():
        test = run.windows(episodes, run.held_ids, stream=1) if len(run.held_ids) else None
        limit = extra.time_limit_minutes * 60 if extra.time_limit_minutes else None
        net = train_gamegan(run.windows(episodes, run.train_ids), test, run.net_cfg, d_cfg,
                            tcfg, run_dir / "gamegan", device, limit)
        ddp.barrier()  # process 0's last checkpoint is on disk
        if load_json(run_dir / "gamegan" / "ckpt" / "progress.json")["step"] < tcfg.steps:
            raise SystemExit(f"[recipe] gamegan: stopped at the time limit; run the same "
                             f"command again to resume from {run_dir / 'gamegan' / 'ckpt'}.")
        if ddp.is_main():
            save_tensors(run.final, net.state_dict())
        return {"steps": tcfg.steps}

    stages.run("gamegan", train_stage, parallel=True)  # data-parallel under torchrun
    net = GameGANGenerator(run.net_cfg)
    net.load_state_dict(load_tensors(run.final))
    if extra.encoding_noise:
        stages.run("encoding_noise", lambda: _noise(
            net, DynamicsWindows(net, run.windows(episodes, run.train_ids), tcfg), seed))
    if run.hcfg is not None:  # reward, done and game variables from whole episodes (heads.py)
        stages.run("heads", lambda: run.heads(
            net, episodes, run.train_ids, run_dir / "gamegan",
            stages.done.get("encoding_noise", {}).get("std")))

    def export_first() -> None:  # once: a rerun must not put it back over a round's dream
        run.export(net, run_dir / "gamegan", stages.done.get("heads"),
                   stages.done.get("encoding_noise", {}).get("std"), [model_dir])
        save_recipe_contexts(r, episodes, model_dir)

    stages.run("export", export_first)
    if "controller" in r:
        ctrl_cfg = controller_stage(r, run_dir, model_dir, stages, device)
        icfg = pick(GameGANIterateConfig, r["iterate"], seed=seed) if "iterate" in r else None
        for k in range(1, icfg.rounds + 1 if icfg else 1):
            rdir = run_dir / f"round{k}"
            run_round(k, icfg, run_dir, model_dir, "dynamics",
                      lambda k=k, rdir=rdir: run.refit(k, rdir, [model_dir, rdir / "model"]),
                      ctrl_cfg, stages, device)
        final_stages(r, run_dir, model_dir, stages, device)
    return model_dir
