"""How much cheaper a dream is than the real game, all measured in one run on this machine.

    python benchmarks/throughput.py                   # all cores torch is allowed
    python benchmarks/throughput.py --threads 1       # one core, like the real game
    python benchmarks/throughput.py --device cuda     # the batched rows and the peak on a GPU

Prints a table and writes JSON: real-game steps/s (random actions), single dream env
steps/s (latent and pixels, each timed in windows alternating with the real game's, whose
ratio the table prints; with where a pixel step's time goes), batched dream steps/s
(``DreamVectorEnv``, latent for each N, pixels for a few N: a pixel step decodes every
dream's frame and resizes it to the real screen; and pixels at an agent's resolution,
``screen_size=64``, the frame as decoded, which a pixel agent's wrappers ask for;
World Models renders in bfloat16 where the CPU has it natively, ``render_bf16``, so
its pixel FLOP/s can pass the float32 peak), the batched dream's FLOP/s as a fraction
of a float32 matrix-multiply peak measured at the same thread count in half-second windows
alternating with the dream's own, and the memory the N dreams take. Every rate is the best
of half-second windows (:func:`timed`), the same statistic as the peak. FLOPs are counted
by ``torch.utils.flop_counter`` on the model's own calls (matrix multiplies and
convolutions, run for the count on torch's matmuls, which the counter sees), so any model
family is measured the same way; zero padding a model adds for speed (World Models'
``head_align``) is not counted. The peak is the faster of MKL and oneDNN. The last column is the
ceiling: the dream's steps/s if its FLOPs ran at the peak, over the real game's.
``--device cuda`` runs the batched dreams and the matmul peak on that device (the lone
dream and the real game stay on the CPU, as an agent stepping one env would have them);
its rows' memory column is then the device memory the N dreams hold.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from numba import njit
from torch.utils.flop_counter import FlopCounterMode

import dream_gym  # noqa: F401  (registers the ids)
from dream_gym.checkpoint import save_json
from dream_gym.contract import select_rows
from dream_gym.envs.upscale import upscale
from dream_gym.envs.vector import DreamVectorEnv
from dream_gym.games import get_game
from dream_gym.world_models.model import HAS_ONEDNN, onednn_linear

CPU = torch.device("cpu")


class MatmulPeak:
    """Float32 FLOP/s of an n x n matrix multiply (the machine's practical peak), by the
    faster of the two CPU matmul libraries torch ships: MKL (``torch.mm``) and oneDNN (the
    linear World Models' batched step uses, :func:`onednn_linear`), picked by a short race."""

    def __init__(self, n: int = 2048, device: torch.device = CPU) -> None:
        self.n = n
        self.a, self.b, self.c = (torch.randn(n, n, device=device),
                                  torch.randn(n, n, device=device),
                                  torch.empty(n, n, device=device))
        if self.a.is_cpu:
            kernels = {"mkl": lambda: torch.mm(self.a, self.b, out=self.c)}
            if HAS_ONEDNN:
                kernels["onednn"] = lambda: onednn_linear(self.a, self.b, None)
        else:  # a GPU's matmuls are asynchronous: a step ends when the device has done it
            kernels = {device.type: lambda: (torch.mm(self.a, self.b, out=self.c),
                                             torch.cuda.synchronize(device))}
        best = dict.fromkeys(kernels, float("inf"))
        for _ in range(4):  # interleaved, so both see the machine's drift
            for k, f in kernels.items():
                best[k] = min(best[k], _seconds(f))
        self.race_flops = {k: 2 * n**3 / t for k, t in best.items()}
        self.library = min(best, key=best.get)
        self._kernel = kernels[self.library]

    def __call__(self) -> int:
        self._kernel()
        return 2 * self.n**3


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def timed(step, min_seconds: float, window: float = 0.5, beside=None) -> tuple[float, float]:
    """Best rate of ``step()`` (returns items done per call) over windows of ``window``
    seconds, after a warm-up. Best-of, as for the matmul peak: this machine's speed drifts
    by a third from minute to minute (other tenants, turbo), and a ratio of a best to a mean
    would charge that drift to the dream. ``beside``: another step timed in windows that
    alternate with these, so both see the same drift; returns (best rate, its best rate)."""
    steps = [step] if beside is None else [step, beside]
    for f in steps:
        for _ in range(3):
            f()
    best = [0.0] * len(steps)
    t_end = time.perf_counter() + min_seconds
    while time.perf_counter() < t_end:
        for k, f in enumerate(steps):
            n, t0 = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - t0) < window:
                n += f()
            best[k] = max(best[k], n / elapsed)
    return best[0], (best[1] if beside is not None else 0.0)


def env_stepper(env: gym.Env):
    """A :func:`timed` step of one env: a random action, a reset when an episode ends."""
    env.reset(seed=0)
    env.action_space.seed(0)

    def step() -> int:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
        return 1
    return step


def single_vs_real(env: gym.Env, real: gym.Env, seconds: float) -> tuple[float, float]:
    """Steps/s of a lone dream env and of the real game, timed in alternating windows (the
    ratio is the figure; this machine's speed drifts between minutes)."""
    return timed(env_stepper(env), seconds, beside=env_stepper(real))


def one(fn):
    """``fn`` as a :func:`timed` step that does one item."""
    def step() -> int:
        fn()
        return 1
    return step


def flops(fn) -> int:
    """FLOPs of the matrix multiplies and convolutions ``fn()`` runs."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@contextmanager
def counted_ops(model) -> Iterator[None]:
    """The model on torch's own matmuls, which the FLOP counter sees (not oneDNN's), and
    without the zero outputs it pads its heads with for speed: the FLOPs counted are the
    model's own work."""
    saved = {k: getattr(model, k) for k in ("head_align", "onednn") if hasattr(model, k)}
    for k, off in (("head_align", 1), ("onednn", False)):
        if k in saved:
            setattr(model, k, off)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(model, k, v)


def pixel_breakdown(env: gym.Env, seconds: float) -> dict:
    """Where a lone pixel dream's step goes: the model's step, decoding its frame (V's
    decoder, FLOP/s), and resizing it to the real screen."""
    core = env.unwrapped._core
    env.reset(seed=0)
    model, state = core.model, core.state
    action = torch.from_numpy(core.check_actions(env.action_space.sample(), "benchmark"))
    frame = model.render(state)
    parts = {
        "model_step": lambda: model.imagine(state, action, 1.0),
        "decode": lambda: model.render(state),
        "upscale": lambda: upscale(frame, core.screen_hw, core.game.crop_rows),
    }
    out = {f"{k}_us": 1e6 / timed(one(f), seconds / 3)[0] for k, f in parts.items()}
    out["decode_flops"] = flops(parts["decode"])
    out["decode_flops_per_s"] = out["decode_flops"] / (out["decode_us"] * 1e-6)
    env.close()
    return out


@njit(cache=True, fastmath=True)
def _read_all(a: np.ndarray) -> float:
    total = np.float32(0.0)
    for i in range(a.shape[0]):
        total += a[i]
    return total


def weight_read(env: gym.Env, repeats: int = 2000) -> dict:
    """The floor under a lone latent step: one core reading the compiled step's weights
    (M's LSTM and heads, which stay in L3 between steps), at its best over ``repeats``."""
    weights = env.unwrapped._core.model._lone_weights()
    flat = np.concatenate([w.ravel() for w in weights]).astype(np.float32)
    _read_all(flat)
    best = min(_seconds(lambda: _read_all(flat)) for _ in range(repeats))
    env.close()
    return {"bytes": int(flat.nbytes), "us": best * 1e6, "gb_per_s": flat.nbytes / best / 1e9}


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory_mib(device: torch.device) -> float:
    """What the process holds where the dreams live: resident memory on the CPU, tensors
    allocated on a GPU."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    return rss_mib()


def batched(model_name: str, n: int, seconds: float, peak: MatmulPeak,
            obs_type: str = "latent", screen_size: int | None = None,
            device: torch.device = CPU) -> dict:
    before = memory_mib(device)
    venv = DreamVectorEnv(n, model=model_name, obs_type=obs_type, screen_size=screen_size,
                          device=str(device))
    venv.reset(seed=0)
    venv.action_space.seed(0)
    action = torch.from_numpy(venv.action_space.sample()).to(device)
    model, state = venv.model, venv._core.state
    # counted on two rows: a lone dream's step runs outside torch (world_models.lone_step)
    two = select_rows(state, torch.zeros(2, dtype=torch.long))
    actions = action[:1].expand(2, *action.shape[1:])
    with counted_ops(model):
        per_step = flops(lambda: model.imagine(two, actions, 1.0)) / 2
    if obs_type == "pixels":  # and each step decodes every dream's frame
        per_step += flops(lambda: model.render(two)) / 2

    def step() -> int:  # returns observations on the host: a GPU step is done when it returns
        venv.step(venv.action_space.sample())
        return n

    rate, peak_flops = timed(step, seconds, beside=peak)
    out = {"steps_per_s": rate, "flops_per_step": per_step, "flops_per_s": per_step * rate,
           "matmul_peak_flops": peak_flops, "rss_mib": memory_mib(device),
           "rss_added_mib": memory_mib(device) - before}
    venv.close()
    return out


def cpu_name() -> str:
    """The CPU's model name (Linux), else the machine type: which library is faster, and
    whether the real game or the dream gains more from AVX-512, differs between CPUs."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="Dream-TakeCover-v0")
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024, 4096])
    p.add_argument("--pixel-sizes", type=int, nargs="+", default=[64, 256],
                   help="batch sizes of the batched pixel dream")
    p.add_argument("--agent-size", type=int, default=64,
                   help="screen_size of the batched pixel rows at an agent's resolution")
    p.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--device", default="cpu",
                   help="torch device of the batched dreams and the matmul peak: cpu, cuda, ...")
    p.add_argument("--out", default="benchmarks/results/throughput.json")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch sees no CUDA device here "
                         f"(torch {torch.__version__}); leave --device out to measure the CPU")
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = gym.spec(args.env)
    model_name, game = spec.kwargs["model"], spec.kwargs["game"]

    peak = MatmulPeak(device=device)
    res: dict = {"env": args.env, "threads": torch.get_num_threads(), "device": str(device),
                 "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                                 else cpu_name()),
                 "matmul_peak_library": peak.library, "matmul_race_flops": peak.race_flops,
                 "cpu": cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                 "torch": torch.__version__}
    real_env, real_rates = get_game(game).make(), []
    for kind in ("latent", "pixels"):
        rate, real = single_vs_real(gym.make(args.env, obs_type=kind), real_env, args.seconds)
        res[f"single_{kind}_steps_per_s"], res[f"real_beside_{kind}_steps_per_s"] = rate, real
        real_rates.append(real)
    res["real_steps_per_s"] = max(real_rates)
    real_env.close()
    res["single_pixels_breakdown"] = pixel_breakdown(gym.make(args.env), args.seconds)
    res["lone_weight_read"] = weight_read(gym.make(args.env, obs_type="latent"))
    res["batched"] = {str(n): batched(model_name, n, args.seconds, peak, device=device)
                      for n in args.sizes}
    res["batched_pixels"] = {str(n): batched(model_name, n, args.seconds, peak, "pixels",
                                             device=device)
                             for n in args.pixel_sizes}
    res["agent_size"] = args.agent_size
    res["batched_agent_pixels"] = {
        str(n): batched(model_name, n, args.seconds, peak, "pixels", args.agent_size, device)
        for n in args.pixel_sizes}
    parts = ("batched", "batched_pixels", "batched_agent_pixels")
    res["matmul_peak_flops"] = max(b["matmul_peak_flops"] for part in parts
                                   for b in res[part].values())
    res["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    real, peak = res["real_steps_per_s"], res["matmul_peak_flops"]
    where = "" if device.type == "cpu" else f", batched rows on {res['device_name']}"
    print(f"\n{args.env} on {res['threads']} torch thread(s){where}; matmul peak "
          f"{peak / 1e9:.1f} GFLOP/s ({res['matmul_peak_library']}, 2048 x 2048, best window; "
          "% peak below uses the peak measured in "
          "windows alternating with that row's)")
    mem = "RSS MiB" if device.type == "cpu" else "dev MiB"
    print(f"{'what':<28}{'steps/s':>12}{'x real':>9}{'% peak':>8}{mem:>9}"
          f"{'x real at 100% peak':>21}")
    print(f"{'real ' + get_game(game).env_id:<28}{real:>12,.0f}{1:>9.1f}")
    for kind in ("latent", "pixels"):
        r = res[f"single_{kind}_steps_per_s"]  # over the real rate timed beside it
        print(f"{'dream, single, ' + kind:<28}{r:>12,.0f}"
              f"{r / res[f'real_beside_{kind}_steps_per_s']:>9.1f}")
    rows = [(f"latent N={n}", b) for n, b in res["batched"].items()]
    rows += [(f"pixels N={n}", b) for n, b in res["batched_pixels"].items()]
    rows += [(f"pixels {args.agent_size}px N={n}", b)
             for n, b in res["batched_agent_pixels"].items()]
    for name, b in rows:
        print(f"{'dream, batched ' + name:<28}{b['steps_per_s']:>12,.0f}"
              f"{b['steps_per_s'] / real:>9.1f}"
              f"{100 * b['flops_per_s'] / b['matmul_peak_flops']:>8.1f}"
              f"{b['rss_added_mib']:>9.0f}"
              f"{b['matmul_peak_flops'] / b['flops_per_step'] / real:>21.1f}")
    px = res["single_pixels_breakdown"]
    print(f"a lone pixel step: model {px['model_step_us']:.0f} us + decode {px['decode_us']:.0f} "
          f"us ({px['decode_flops'] / 1e6:.0f} MFLOP, "
          f"{100 * px['decode_flops_per_s'] / peak:.0f}% of peak) + resize to the screen "
          f"{px['upscale_us']:.0f} us; a real step: {1e6 / real:.0f} us")
    w = res["lone_weight_read"]
    print(f"a lone latent step reads M's {w['bytes'] / 1e6:.1f} MB of weights: {w['us']:.0f} us "
          f"at best ({w['gb_per_s']:.1f} GB/s on one core), so at most "
          f"{1e6 / w['us'] / real:.1f}x the real game")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_json(args.out, res)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
