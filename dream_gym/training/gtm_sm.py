"""Train GTM-SM on random walks in the real ImageNav world (the GTM-SM paper, section 4.1).

Training sequences are drawn fresh every step: a picture from a fixed pool of train
pictures, a random walk of held actions from the centre, and the crops the real env shows
along it (:func:`dream_gym.envs.image_nav.walk`, the env's own step rule). Checkpoints
resume; losses go to TensorBoard.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from dream_gym.checkpoint import load_json, load_tensors, save_json, save_tensors
from dream_gym.envs.image_nav import make_image, random_actions, walk
from dream_gym.gtm_sm.gtm_sm import GTMSM, GTMSMConfig
from dream_gym.training.common import (
    gradient_step,
    load_training_state,
    make_writer,
    pick,
    save_training_state,
    seed_everything,
)
from dream_gym.world_models.mdnrnn import MDNRNN, MDNRNNConfig

__all__ = ["GTMSMTrainConfig", "WalkSampler", "image_pool", "train_gtm_sm", "train_baseline",
           "run_stages"]


@dataclass
class GTMSMTrainConfig:
    images: int = 4000
    """Train pictures in the pool (pictures 0..images-1 of the train split)."""
    memorize: int = 256
    predict: int = 32
    """Prediction steps per training sequence (the GTM-SM paper: 32 in training, 256 at test)."""
    mean_hold: float = 3.0
    steps: int = 6000
    batch_size: int = 32
    lr: float = 1e-3
    lr_final: float = 1e-4
    """Annealed linearly over the run (the GTM-SM paper: from 1e-3, linearly, over 50k updates)."""
    curriculum_neighbours: int = 64
    curriculum_steps: int = 1000
    """For the first ``curriculum_steps`` updates the walks never push into a wall and each
    prior reads ``curriculum_neighbours`` neighbours instead of the model's k. A third of a
    random walk's moves are blocked by walls, and with the gate still open those moves
    scrambled the states; and gradients reach B only through the keys retrieved: with random
    initial displacements the key of a revisited place is rarely among the 5 nearest."""
    freeze_displacement: bool = True
    """Keep B as the wall-free stage learned it: walls change which moves happen, not what a
    move is, and with the gate still leaky the walled walks pulled every displacement
    towards a common drift."""
    ssm_lr_scale: float = 10.0
    """The SSM's few parameters (displacements, wall gate) learn this much faster than the
    VAE: with the paper's single rate, B took thousands of updates to find its structure."""
    grad_clip: float = 10.0
    checkpoint_every: int = 250
    seed: int = 0


def image_pool(count: int, split: str, cache: Path | None = None) -> np.ndarray:
    """Pictures 0..count-1 of ``split`` (count, 32, 32, 3), cached as safetensors."""
    if cache is not None and cache.exists():
        pics = load_tensors(cache)["images"].numpy()
        if len(pics) == count:
            return pics
    pics = np.stack([make_image(i, split) for i in tqdm(range(count), desc=f"{split} pictures",
                                                         leave=False)])
    if cache is not None:
        save_tensors(cache, {"images": torch.from_numpy(pics)})
    return pics


class WalkSampler:
    """Batches of (frames (B, T + 1, S, S, 3) uint8, actions (B, T) int64, positions)."""

    def __init__(self, images: np.ndarray, steps: int, mean_hold: float,
                 rng: np.random.Generator) -> None:
        self.images, self.steps, self.mean_hold, self.rng = images, steps, mean_hold, rng

    def sample(self, batch: int, avoid_walls: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pics = self.images[self.rng.integers(len(self.images), size=batch)]
        actions = random_actions(self.rng, batch, self.steps, self.mean_hold, avoid_walls)
        frames, pos = walk(pics, actions)
        return frames, actions, pos


def _linear_lr(cfg: GTMSMTrainConfig, step: int) -> float:
    """The GTM-SM paper's schedule: from ``lr`` down to ``lr_final``, linearly over the run."""
    return cfg.lr + (cfg.lr_final - cfg.lr) * step / max(cfg.steps - 1, 1)


def train_gtm_sm(model_cfg: GTMSMConfig, cfg: GTMSMTrainConfig, images: np.ndarray,
                 run_dir: str | Path, device: torch.device) -> GTMSM:
    """Maximise the ELBO for ``cfg.steps`` updates, resuming from ``run_dir/ckpt``."""
    seed_everything(cfg.seed)
    run_dir = Path(run_dir)
    model = GTMSM(model_cfg).to(device)
    ssm = [*model.displacement.parameters(), *model.gate.parameters()]
    ssm_ids = {id(p) for p in ssm}
    rest = [p for p in model.parameters() if id(p) not in ssm_ids]
    opt = torch.optim.Adam([{"params": rest, "scale": 1.0},
                            {"params": ssm, "scale": cfg.ssm_lr_scale}], lr=cfg.lr)
    progress = load_training_state(run_dir / "ckpt", model, opt) or {"step": 0}
    sampler = WalkSampler(images, cfg.memorize + cfg.predict, cfg.mean_hold,
                          np.random.default_rng([cfg.seed, progress["step"]]))
    torch.manual_seed(cfg.seed + progress["step"])
    writer = make_writer(run_dir, cfg)
    bar = tqdm(range(progress["step"], cfg.steps), initial=progress["step"], total=cfg.steps,
               desc="train GTM-SM")
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = g["scale"] * _linear_lr(cfg, step)
        early = step < cfg.curriculum_steps
        model.displacement.requires_grad_(early or not cfg.freeze_displacement)
        frames, actions, _ = sampler.sample(cfg.batch_size, avoid_walls=early)
        x = torch.from_numpy(frames).to(device)
        a = F.one_hot(torch.from_numpy(actions).to(device), model_cfg.actions).float()
        neighbours = cfg.curriculum_neighbours if early else None
        loss, parts = model.loss(x, a, cfg.memorize, neighbours)
        gradient_step(opt, loss, model, cfg.grad_clip)
        if step % 25 == 0:
            for k, v in parts.items():
                writer.add_scalar(f"losses/{k}", v, step)
            bar.set_postfix(recon=f"{parts['recon']:.1f}", kl=f"{parts['kl']:.2f}",
                            pred_kl=f"{parts['pred_kl']:.2f}")
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            save_training_state(run_dir / "ckpt", model, opt, {"step": step + 1})
    writer.close()
    return model.eval()


def train_baseline(net: GTMSM, rnn_cfg: MDNRNNConfig, cfg: GTMSMTrainConfig,
                   images: np.ndarray, run_dir: str | Path, device: torch.device) -> MDNRNN:
    """The memory-less baseline: World Models' MDN-RNN over GTM-SM's own frame encodings
    (posterior means, encoder frozen), trained on the same walks; it sees the whole
    memorisation phase through its LSTM state instead of a spatial memory."""
    seed_everything(cfg.seed)
    run_dir = Path(run_dir)
    rnn = MDNRNN(rnn_cfg).to(device)
    opt = torch.optim.Adam(rnn.parameters(), lr=cfg.lr)
    progress = load_training_state(run_dir / "ckpt", rnn, opt) or {"step": 0}
    sampler = WalkSampler(images, cfg.memorize + cfg.predict, cfg.mean_hold,
                          np.random.default_rng([cfg.seed, 1, progress["step"]]))
    writer = make_writer(run_dir, cfg)
    bar = tqdm(range(progress["step"], cfg.steps), initial=progress["step"], total=cfg.steps,
               desc="train MDN-RNN baseline")
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = _linear_lr(cfg, step)
        frames, actions, _ = sampler.sample(cfg.batch_size)
        with torch.no_grad():
            z, _ = net.encode(torch.from_numpy(frames).to(device))
        a = F.one_hot(torch.from_numpy(actions).to(device), rnn_cfg.action_dim).float()
        B, T = actions.shape
        zeros, ones = torch.zeros(B, T, device=device), torch.ones(B, T, device=device)
        loss, parts = rnn.loss(z[:, :-1], a, z[:, 1:], zeros, zeros.bool(),
                               torch.zeros(B, T, 0, device=device), ones, ones)
        gradient_step(opt, loss, rnn, cfg.grad_clip)
        if step % 25 == 0:
            writer.add_scalar("losses/z_nll", parts["z_nll"], step)
            bar.set_postfix(z=f"{parts['z_nll']:.3f}")
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            save_training_state(run_dir / "ckpt", rnn, opt, {"step": step + 1})
    writer.close()
    return rnn.eval()


@dataclass
class GTMSMContextConfig:
    count: int = 32
    """Memorisation walks shipped as the dream's starting contexts."""
    memorize: int | None = None
    """Steps per walk (None: the training walks' ``memorize``)."""
    first_test_picture: int = 10_000
    """Test pictures first_test_picture.. (never seen in training)."""


RECIPE_SECTIONS: dict[str, tuple[type, ...]] = {
    "gtm_sm": (GTMSMConfig, GTMSMTrainConfig),
    "baseline": (MDNRNNConfig, GTMSMTrainConfig),
    "context": (GTMSMContextConfig,),
}
"""Which dataclasses read each section of a GTM-SM recipe."""


def run_stages(r: dict, run_dir: Path, stages, device: torch.device) -> Path:
    """A GTM-SM recipe (``family = "gtm_sm"``): pictures, GTM-SM, the baseline, then the
    model folder with memorisation walks on test pictures as its starting contexts."""
    from dream_gym.gtm_sm.model import GTMSMDream

    seed = r.get("seed", 0)
    model_cfg = pick(GTMSMConfig, r["gtm_sm"])
    tcfg = pick(GTMSMTrainConfig, r["gtm_sm"], seed=seed)
    pics = image_pool(tcfg.images, "train", run_dir / "pictures.safetensors")
    net_path = run_dir / "gtm_sm" / "final.safetensors"

    def gtm_stage():
        net = train_gtm_sm(model_cfg, tcfg, pics, run_dir / "gtm_sm", device)
        save_tensors(net_path, net.state_dict())

    stages.run("gtm_sm", gtm_stage)
    net = GTMSM(model_cfg).to(device)
    net.load_state_dict(load_tensors(net_path, device))
    net.requires_grad_(False)
    rnn_cfg = pick(MDNRNNConfig, r["baseline"], z_dim=model_cfg.z_dim,
                   action_dim=model_cfg.actions, gamevars=0)
    bcfg = pick(GTMSMTrainConfig, r["gtm_sm"] | r["baseline"], seed=seed)
    base_path = run_dir / "baseline" / "final.safetensors"

    def baseline_stage():
        rnn = train_baseline(net, rnn_cfg, bcfg, pics, run_dir / "baseline", device)
        save_tensors(base_path, rnn.state_dict())

    stages.run("baseline", baseline_stage)
    model_dir = run_dir / "model"
    GTMSMDream(r["game"], net).save(model_dir)
    save_tensors(model_dir / "baseline_mdnrnn.safetensors", load_tensors(base_path))
    config = load_json(model_dir / "config.json")
    save_json(model_dir / "config.json", config | {"baseline_mdnrnn": asdict(rnn_cfg)})
    ctx = pick(GTMSMContextConfig, r.get("context", {}))
    count, steps = ctx.count, ctx.memorize or tcfg.memorize
    first = ctx.first_test_picture
    test_pics = np.stack([make_image(first + i, "test") for i in range(count)])
    actions = random_actions(np.random.default_rng([seed, 2]), count, steps, tcfg.mean_hold)
    frames, _ = walk(test_pics, actions)
    save_tensors(model_dir / "contexts.safetensors", {
        "frames": torch.from_numpy(frames), "actions": torch.from_numpy(actions),
        "gamevars": torch.zeros(count, 0)})
    return model_dir
