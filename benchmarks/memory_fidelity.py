"""Does a dream remember? GTM-SM against a memory-less MDN-RNN on held-out pictures.

    python benchmarks/memory_fidelity.py --model imagenav --sequences 64
    python benchmarks/memory_fidelity.py --model imagenav --sequences 64 \
        --gamegan runs/imagenav_gamegan/model \
        --gamegan-nomemory runs/imagenav_gamegan_nomemory/model

DESIGN section 4's protocol for memory models, with the GTM-SM paper's image-navigation test: on
pictures of the test split (never trained on), a random walk of 256 steps is memorised (real
frames and actions), then both models predict the next 256 frames from the true actions
alone. Reported per prediction step: mean squared pixel error ([0, 1] scale) and PSNR, for
GTM-SM (most likely retrieval, tau -> 0), the MDN-RNN baseline shipped beside it (seed
003's M over the same frame encodings, teacher-forced through the memorisation phase, then
open-loop on its most likely mixture component), and GTM-SM on steps at places the walk
had seen; and, as a reference that needs no model, the mean of the memorised frames
shown at every step. With ``--gamegan`` (and ``--gamegan-nomemory``, the same recipe without
its memory module) GameGAN dreams of the same world run the same walks through the model
contract (their memory written while they are fed the memorised walk's true frames, then
tau 0), the memory model also with its memory's reads zeroed, and their errors at
revisited places are compared walk by walk (paired t).
Also: R^2 of a linear map from GTM-SM's inferred states to the true grid
positions (states inferred from each walk's frames and actions; fitted on half the
sequences, scored on the other half). Writes JSON and a
picture of true vs predicted frames.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from dream_gym.checkpoint import save_json
from dream_gym.contract import WorldModel, seed_dreams
from dream_gym.envs.image_nav import make_image, random_actions, walk
from dream_gym.gtm_sm.gtm_sm import frame_changed
from dream_gym.gtm_sm.model import GTMSMDream
from dream_gym.world_models.mdnrnn import MDNRNN
from dream_gym.zoo import load_baseline, load_model


def held_out_walks(n: int, steps: int, seed: int, mean_hold: float = 3.0):
    """Walks on test pictures 0..n-1: frames (n, steps + 1, 8, 8, 3), actions, positions."""
    pics = np.stack([make_image(i, "test") for i in range(n)])
    actions = random_actions(np.random.default_rng(seed), n, steps, mean_hold)
    frames, pos = walk(pics, actions)
    return frames, actions, pos


@torch.no_grad()
def dream_predict(model: WorldModel, frames: np.ndarray, actions: np.ndarray,
                  memorize: int, temperature: float = 1e-3) -> np.ndarray:
    """Frames predicted for steps memorize+1.. from actions alone, through the contract
    (any family: GTM-SM at tau -> 0 retrieves the most likely, GameGAN at 0 draws z = 0)."""
    state = model.initial_state(torch.from_numpy(frames[:, : memorize + 1]),
                                torch.from_numpy(actions[:, :memorize]))
    state = seed_dreams(state, torch.arange(len(frames)))
    out = []
    for t in range(memorize, actions.shape[1]):
        state, _ = model.imagine(state, torch.from_numpy(actions[:, t]), temperature)
        out.append(model.render(state))
    return torch.stack(out, 1).numpy()


@torch.no_grad()
def mdnrnn_predict(model: GTMSMDream, rnn: MDNRNN, frames: np.ndarray, actions: np.ndarray,
                   memorize: int) -> np.ndarray:
    """The baseline: LSTM teacher-forced through the memorised frames, then fed its own most
    likely next encoding."""
    net = model.net
    z, _ = net.encode(torch.from_numpy(frames[:, : memorize + 1]))
    a = F.one_hot(torch.from_numpy(actions), net.cfg.actions).float()
    _, hc = rnn(z[:, :-1], a[:, :memorize])
    zt, out = z[:, -1:], []
    for t in range(memorize, actions.shape[1]):
        o, hc = rnn(zt, a[:, t : t + 1], hc)
        k = o.logit_pi.argmax(-1, keepdim=True)
        zt = o.mu.gather(-1, k).squeeze(-1)
        out.append(net.decode(zt[:, 0]))
    return torch.stack(out, 1).numpy()


def per_step_mse(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(n, T) mean squared error per frame on the [0, 1] scale."""
    d = pred.astype(np.float32) / 255 - true.astype(np.float32) / 255
    return (d**2).reshape(*d.shape[:2], -1).mean(-1)


def psnr(mse: np.ndarray) -> np.ndarray:
    return 10 * np.log10(1.0 / np.maximum(mse, 1e-10))


@torch.no_grad()
def position_r2(model: GTMSMDream, frames: np.ndarray, actions: np.ndarray,
                pos: np.ndarray) -> float:
    """R^2 of a linear map (with intercept) from the states GTM-SM infers from a walk's
    frames and actions to the true positions, fitted on the first half of the walks and
    scored on the second."""
    a = F.one_hot(torch.from_numpy(actions), model.net.cfg.actions).float()
    s = model.net.roll_states(a, moved=frame_changed(torch.from_numpy(frames))).numpy()
    X = np.concatenate([s, np.ones((*s.shape[:2], 1))], -1)
    half, n = len(s) // 2, X.shape[-1]
    coef, *_ = np.linalg.lstsq(X[:half].reshape(-1, n), pos[:half].reshape(-1, 2), rcond=None)
    y, fit = pos[half:].reshape(-1, 2), X[half:].reshape(-1, n) @ coef
    return float(1 - ((y - fit) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())


def picture(true: np.ndarray, rows_of: dict[str, np.ndarray], steps: list[int], path: Path,
            rows: int = 4) -> None:
    """For ``rows`` walks: the true frames, then each model's, at the given prediction steps."""
    strips = []
    for i in range(rows):
        for seq in (true, *rows_of.values()):
            strips.append(np.concatenate([np.pad(seq[i, s - 1], ((1, 1), (1, 1), (0, 0)),
                                                 constant_values=255) for s in steps], 1))
        strips.append(np.full_like(strips[-1][:3], 255))
    img = np.concatenate(strips, 0)
    Image.fromarray(img).resize((img.shape[1] * 8, img.shape[0] * 8), Image.NEAREST).save(path)


@torch.no_grad()
def attention_use(model: WorldModel, frames: np.ndarray, actions: np.ndarray, pos: np.ndarray,
                  memorize: int) -> dict[str, float]:
    """Where a GameGAN memory's attention goes while it is fed the memorised walk: the share
    of steps it moved (its most attended cell changed) on free moves, on moves blocked by a
    wall and on stays, and the share of returns to a place that attend the cell its first
    visit did (1 for a memory that keeps one cell per place, also for one that never moves)."""
    state = model.initial_state(torch.from_numpy(frames[:, :1]),
                                torch.from_numpy(actions[:, :0]))
    cells = [state["alpha"].argmax(1).numpy()]
    for t in range(memorize):
        state = model.observe(state, torch.from_numpy(actions[:, t]),
                              torch.from_numpy(frames[:, t + 1]))
        cells.append(state["alpha"].argmax(1).numpy())
    cells = np.stack(cells, 1)
    a, p = actions[:, :memorize], pos[:, : memorize + 1]
    moved = cells[:, 1:] != cells[:, :-1]
    blocked = (p[:, 1:] == p[:, :-1]).all(-1) & (a != 0)
    free = ~blocked & (a != 0)
    same = []  # per return to a place: does it attend the cell its first visit did?
    for walk_pos, walk_cells in zip(p, cells, strict=True):
        first: dict[tuple[int, ...], int] = {}
        for place, cell in zip(map(tuple, walk_pos), walk_cells, strict=True):
            if place in first:
                same.append(cell == first[place])
            else:
                first[place] = cell
    return {"moved_on_free_moves": float(moved[free].mean()),
            "moved_on_blocked_moves": float(moved[blocked].mean()),
            "moved_on_stays": float(moved[a == 0].mean()),
            "returns_to_the_first_visits_cell": float(np.mean(same))}


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean, stderr and t of the per-walk differences a - b (walks with a value in both)."""
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    se = float(d.std(ddof=1) / np.sqrt(len(d)))
    return {"mean_difference": float(d.mean()), "stderr": se, "t": float(d.mean() / se),
            "walks": int(len(d))}


def walk_means(err: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each walk's mean error over the steps in ``mask`` (NaN where it has none)."""
    n = mask.sum(1)
    return np.where(n > 0, (err * mask).sum(1) / np.maximum(n, 1), np.nan)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="imagenav")
    p.add_argument("--gamegan", help="a GameGAN model folder of ImageNav (its recipe: "
                   "training/imagenav_gamegan.toml)")
    p.add_argument("--gamegan-nomemory", dest="gamegan_nomemory",
                   help="the same recipe without its memory module "
                   "(training/imagenav_gamegan_nomemory.toml)")
    p.add_argument("--sequences", type=int, default=64)
    p.add_argument("--memorize", type=int, default=256)
    p.add_argument("--predict", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    model = load_model(args.model, game="ImageNav")
    rnn = load_baseline(args.model)
    frames, actions, pos = held_out_walks(args.sequences, args.memorize + args.predict,
                                          args.seed)
    true = frames[:, args.memorize + 1 :]
    preds = {"GTM-SM": dream_predict(model, frames, actions, args.memorize),
             "MDN-RNN": mdnrnn_predict(model, rnn, frames, actions, args.memorize)}
    attention = None
    for label, path in (("GameGAN", args.gamegan),
                        ("GameGAN, no memory", args.gamegan_nomemory)):
        if path:
            gamegan = load_model(path, game="ImageNav")
            preds[label] = dream_predict(gamegan, frames, actions, args.memorize,
                                         temperature=0.0)
            if label == "GameGAN":
                attention = attention_use(gamegan, frames, actions, pos, args.memorize)
                gamegan.memory_reads = False  # the same model, what its memory gives zeroed
                preds["GameGAN, zero reads"] = dream_predict(
                    gamegan, frames, actions, args.memorize, temperature=0.0)
    errs = {k: per_step_mse(v, true) for k, v in preds.items()}
    e_gtm, e_base = errs["GTM-SM"], errs["MDN-RNN"]
    # a reference that needs no model: the mean of the memorised frames, shown at every step
    mean_frame = frames[:, : args.memorize + 1].mean(1, keepdims=True).round().astype(np.uint8)
    e_mean = per_step_mse(np.broadcast_to(mean_frame, true.shape), true)
    seen = np.array([[tuple(q) in {tuple(r) for r in pp[: args.memorize + 1]}
                      for q in pp[args.memorize + 1 :]] for pp in pos])
    r2 = position_r2(model, frames, actions, pos)
    early, late = slice(0, 50), slice(199, args.predict)
    result = {
        "sequences": args.sequences, "memorize": args.memorize, "predict": args.predict,
        "seed": args.seed,
        "gtm_sm_mse": float(e_gtm.mean()), "mdnrnn_mse": float(e_base.mean()),
        "mean_memorised_frame_mse": float(e_mean.mean()),
        "ratio_gtm_to_mdnrnn": float(e_gtm.mean() / e_base.mean()),
        "gtm_sm_mse_steps_1_50": float(e_gtm[:, early].mean()),
        "gtm_sm_mse_steps_200_256": float(e_gtm[:, late].mean()),
        "late_to_early": float(e_gtm[:, late].mean() / e_gtm[:, early].mean()),
        "gtm_sm_mse_seen_places": float(e_gtm[seen].mean()),
        "gtm_sm_mse_unseen_places": float(e_gtm[~seen].mean()) if (~seen).any() else None,
        "share_of_steps_at_seen_places": float(seen.mean()),
        "gtm_sm_psnr": float(psnr(e_gtm.mean(0)).mean()),
        "mdnrnn_psnr": float(psnr(e_base.mean(0)).mean()),
        "position_r2": r2,
        "models": {k: {"mse": float(e.mean()), "mse_steps_1_50": float(e[:, early].mean()),
                       "mse_steps_200_256": float(e[:, late].mean()),
                       "mse_seen_places": float(e[seen].mean()),
                       "mse_unseen_places": float(e[~seen].mean()) if (~seen).any() else None}
                   for k, e in errs.items()},
        "per_step_mse": {**{k: e.mean(0).tolist() for k, e in errs.items()},
                         "mean_memorised_frame": e_mean.mean(0).tolist()},
    }
    if attention is not None:
        result["gamegan_attention"] = attention
    for key, other in (("gamegan_memory_vs_none", "GameGAN, no memory"),
                       ("gamegan_memory_vs_zeroed_reads", "GameGAN, zero reads")):
        if "GameGAN" in errs and other in errs:
            with_m, without = errs["GameGAN"], errs[other]
            result[key] = {  # negative: the memory's error is lower
                "seen_places": paired(walk_means(with_m, seen), walk_means(without, seen)),
                "unseen_places": paired(walk_means(with_m, ~seen), walk_means(without, ~seen)),
            }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_json(out / "memory_fidelity.json", result)
    steps = [s for s in (1, 32, 64, 128, 192, 256) if s <= args.predict]
    picture(true, preds, steps, out / "memory_fidelity.png")
    cols = [("all", slice(None)), ("1..50", early), ("200..256", late)]
    print(f"{'pixel MSE':<20}" + "".join(f"{c:>10}" for c, _ in cols)
          + f"{'seen':>10}{'unseen':>10}")
    for k, e in [*errs.items(), ("mean frame", e_mean)]:
        print(f"{k:<20}" + "".join(f"{e[:, sl].mean():>10.5f}" for _, sl in cols)
              + f"{e[seen].mean():>10.5f}"
              + (f"{e[~seen].mean():>10.5f}" if (~seen).any() else f"{'-':>10}"))
    print(f"{100 * seen.mean():.0f}% of predicted steps at places the memorised walk had seen")
    print(f"GTM-SM / MDN-RNN: {result['ratio_gtm_to_mdnrnn']:.3f}; late / early: "
          f"{result['late_to_early']:.2f}; position R^2 {r2:.4f}")
    for key, other in (("gamegan_memory_vs_none", "GameGAN without memory"),
                       ("gamegan_memory_vs_zeroed_reads", "GameGAN with its reads zeroed")):
        for where, d in result.get(key, {}).items():
            print(f"GameGAN - {other}, {where.replace('_', ' ')}: "
                  f"{d['mean_difference']:+.5f} (stderr {d['stderr']:.5f}, paired t "
                  f"{d['t']:.2f}, {d['walks']} walks)")
    if attention is not None:
        print("GameGAN's attention while memorising: moved on "
              f"{attention['moved_on_free_moves']:.0%} of free moves, "
              f"{attention['moved_on_blocked_moves']:.0%} of blocked ones, "
              f"{attention['moved_on_stays']:.0%} of stays; returns on the first visit's cell: "
              f"{attention['returns_to_the_first_visits_cell']:.0%}")
    print(f"wrote {out / 'memory_fidelity.json'} and {out / 'memory_fidelity.png'}")


if __name__ == "__main__":
    main()
