"""Why GameGAN's recipe first trains its renderer as an autoencoder: the start, measured.

    python benchmarks/gamegan_start.py --data runs/takecover_gamegan/data --updates 150

At this CPU's sizes, a freshly initialised generator passes little of a frame to its
render: printed are the spread across a batch of real frames of the frame encoding s, of
the engine's hidden state h after one step and of the rendered frame. Then two copies are
trained on the reconstruction loss alone, teacher-forced (every input a true frame), one
from the default initialisation and one after ``--autoencoder-steps`` of the recipe's
autoencoder stage; reported: the one-step-ahead and 7-step open-loop pixel error (64x64,
[0, 1]) on held-out windows, beside the error of holding the last true frame.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dream_gym.checkpoint import save_json
from dream_gym.data import load_episodes
from dream_gym.gamegan.dream import to_unit
from dream_gym.gamegan.model import GameGANConfig, GameGANGenerator
from dream_gym.gamegan.training import (
    GameGANTrainConfig,
    WindowSampler,
    _pretrain_autoencoder,
    _unroll,
    open_loop_error,
)


class _Quiet:
    def add_scalar(self, *args, **kwargs) -> None:
        pass


@torch.no_grad()
def spreads(G: GameGANGenerator, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    x = to_unit(batch["frames"])
    state = G.initial(x[:, 0])
    new, out = G.step(state, batch["actions"][:, 0], torch.zeros(len(x), G.cfg.z_dim))
    return {"s": state["s"].std(0).mean().item(), "h": new["h"].std(0).mean().item(),
            "frame": out.frame.std(0).mean().item()}


def run(G: GameGANGenerator, train: WindowSampler, held: dict, updates: int, lr: float
        ) -> list[dict[str, float]]:
    opt = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.0, 0.9))
    L = held["frames"].shape[1]
    curve = []
    for step in range(updates + 1):
        if step % 50 == 0:
            err = open_loop_error(G, held, warm=1)
            curve.append({"update": step, "one_step": float(err[0]),
                          f"step_{L - 1}": float(err[-1]),
                          "teacher_forced": float(open_loop_error(G, held, warm=L).mean())})
            print(curve[-1], flush=True)
        if step == updates:
            break
        r = _unroll(G, train.sample(8), L)
        loss = (r["fake"] - r["x"][:, 1:]).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return curve


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="runs/takecover_gamegan/data",
                   help="TakeCover episodes (the recipe's collect stage writes them)")
    p.add_argument("--shards", type=int, default=6)
    p.add_argument("--updates", type=int, default=150)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--autoencoder-steps", type=int, default=500)
    p.add_argument("--out", default="benchmarks/results/gamegan_start.json")
    args = p.parse_args()
    eps = load_episodes(args.data, max_shards=args.shards)
    ids = np.arange(len(eps.lengths))
    cfg = GameGANConfig(action_dim=3, mirror_actions=[[2, 1]], done_window=30)
    train = WindowSampler(eps, "TakeCover", 8, 100.0, 30, np.random.default_rng(0), ids[:-5])
    held = WindowSampler(eps, "TakeCover", 8, 100.0, 30, np.random.default_rng(1),
                         ids[-5:]).sample(16)
    f = held["frames"].float() / 255
    held_frame = ((f[:, :1] - f[:, 1:]) ** 2).mean((0, 2, 3, 4))
    res = {"held_frame": {"one_step": float(held_frame[0]), "last": float(held_frame[-1])}}
    t0 = time.time()
    for name, ae_steps in (("default_init", 0), ("autoencoder_first", args.autoencoder_steps)):
        torch.manual_seed(0)
        G = GameGANGenerator(cfg)
        if ae_steps:
            _pretrain_autoencoder(G, train, GameGANTrainConfig(autoencoder_steps=ae_steps),
                                  _Quiet())
        res[name] = {"spread": spreads(G, held), "curve": run(G, train, held, args.updates,
                                                              args.lr)}
        print(name, res[name]["spread"], f"({time.time() - t0:.0f} s)", flush=True)
    save_json(args.out, res)
    print(f"held frame: one step {res['held_frame']['one_step']:.5f}, 7 steps "
          f"{res['held_frame']['last']:.5f}; saved {args.out}")


if __name__ == "__main__":
    main()
