"""The stages that fan out, in one process and on a local Ray cluster of 1 and 2 workers.

    python benchmarks/cluster.py

Times, on this machine, TakeCover's data collection (``--shards`` shards of one episode),
real-game scoring (``--episodes`` episodes of the random policy and of the shipped
controller) and a short CMA-ES run (``--generations`` generations of 16 candidates x 4
dreams) in one process (collection: one process, as ``workers = 1``; scoring: the
lockstep games of :class:`~dream_gym.evaluate.RealGames`), then through
:mod:`dream_gym.cluster` with 1 and with 2 Ray workers (starting the cluster is timed
apart). Each cluster result is checked equal to the one-process one. Writes
``benchmarks/results/cluster.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from dream_gym import cluster
from dream_gym.agents.controller import LinearController
from dream_gym.data import CollectConfig, collect, load_episodes
from dream_gym.evaluate import evaluate_controller, evaluate_random
from dream_gym.training.controller import ControllerTrainConfig, train_in_dream
from dream_gym.zoo import load_model, resolve


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--episodes", type=int, default=16)
    p.add_argument("--generations", type=int, default=5)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--out", default="benchmarks/results/cluster.json")
    args = p.parse_args()
    model = load_model("takecover")
    controller, _ = LinearController.load(resolve("takecover") / "controller")
    collect_cfg = CollectConfig("TakeCover", episodes=args.shards, episodes_per_shard=1,
                                workers=1, max_steps=2100, seed=11)
    es_cfg = ControllerTrainConfig(temperature=1.15, generations=args.generations,
                                   population=16, rollouts=4, max_steps=2100,
                                   eval_rollouts=16, seed=0)
    scratch = Path(tempfile.mkdtemp())

    def stages(ray: bool, tag: str) -> dict:
        out = {}
        t = time.perf_counter()
        frames = collect(collect_cfg, scratch / f"data_{tag}", ray=ray)
        out["collect"] = {"seconds": time.perf_counter() - t, "frames": frames}
        t = time.perf_counter()
        rand = evaluate_random("TakeCover", args.episodes, 70_000, progress=False, ray=ray)
        out["score_random"] = {"seconds": time.perf_counter() - t, "returns": rand["returns"]}
        t = time.perf_counter()
        ctrl = evaluate_controller(model, controller, args.episodes, 70_000, progress=False,
                                   ray=ray)
        out["score_controller"] = {"seconds": time.perf_counter() - t,
                                   "returns": ctrl["returns"]}
        t = time.perf_counter()
        es = train_in_dream("takecover", es_cfg, scratch / f"es_{tag}", "cpu", progress=False,
                            ray=ray)
        out["cma_es"] = {"seconds": time.perf_counter() - t, "dream_score": es["dream_score"]}
        return out

    results = {"one process": stages(False, "local")}
    base = results["one process"]
    reference = load_episodes(scratch / "data_local").frames
    for n in args.workers:
        t = time.perf_counter()
        cluster.init(num_workers=n)
        start = time.perf_counter() - t
        row = stages(True, f"ray{n}")
        cluster.shutdown()
        row["start_cluster_seconds"] = start
        row["same_as_one_process"] = bool(
            np.array_equal(load_episodes(scratch / f"data_ray{n}").frames, reference)
            and row["score_random"]["returns"] == base["score_random"]["returns"]
            and row["score_controller"]["returns"] == base["score_controller"]["returns"]
            and row["cma_es"]["dream_score"] == base["cma_es"]["dream_score"])
        results[f"ray, {n} worker{'s' * (n > 1)}"] = row
    shutil.rmtree(scratch)

    print(f"{'stage':<18}" + "".join(f"{k:>22}" for k in results))
    for stage in ("collect", "score_random", "score_controller", "cma_es"):
        cells = [f"{r[stage]['seconds']:8.1f} s "
                 f"({base[stage]['seconds'] / r[stage]['seconds']:.2f}x)"
                 for r in results.values()]
        print(f"{stage:<18}" + "".join(f"{c:>22}" for c in cells))
    for k, r in results.items():
        if "start_cluster_seconds" in r:
            print(f"{k}: cluster start {r['start_cluster_seconds']:.1f} s, same results as one "
                  f"process: {r['same_as_one_process']}")
    Path(args.out).write_text(json.dumps(
        {"command": "python benchmarks/cluster.py", "shards": args.shards,
         "episodes": args.episodes, "generations": args.generations,
         "results": {k: {s: ({kk: vv for kk, vv in v.items() if kk != "returns"}
                             if isinstance(v, dict) else v) for s, v in r.items()}
                     for k, r in results.items()}}, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
