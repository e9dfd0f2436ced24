#!/usr/bin/env python3
"""Pose-free methods side by side: train each for the same image budget on synthetic heads (true pose and depth),
then tabulate FID, depth error, pose error, pose-distribution JS, NFS and Depth-FID, with pictures.

The pose-free methods never read the dataset's labels; they render at the dataset's recorded prior (the true pose
distribution of the synthetic family, unless --set pose.* overrides it). EG3D trains on the true labels: the upper
reference. Phases can run separately, e.g. the trainings in parallel processes (one thread each):

    python tools/bench_methods.py --work /tmp/pf --phase data
    for m in eg3d eg3d-posereg hyperpose; do
        python tools/bench_methods.py --work /tmp/pf --phase train --methods $m --kimg 8 &
    done; wait
    python tools/bench_methods.py --work /tmp/pf --phase eval --out docs/pose_free

Prints one JSON object (per method: budget, wall time, metrics; figure paths).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

METRICS = ["fid", "depth", "pose", "pose_js", "nfs", "depth_fid"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="dataset, probes and run folders")
    ap.add_argument("--out", type=Path, default=Path("docs/pose_free"), help="pictures and results.json")
    ap.add_argument("--phase", default="all", choices=["all", "data", "train", "eval"])
    ap.add_argument("--methods", default="eg3d,eg3d-posereg,hyperpose")
    ap.add_argument("--prior", default="synthetic_heads_wide", help="pose prior of the synthetic heads")
    ap.add_argument("--num-data", type=int, default=2000)
    ap.add_argument("--kimg", type=float, default=8.0, help="training budget per method (thousand real images)")
    ap.add_argument("--num", type=int, default=512, help="fakes per metric")
    ap.add_argument("--max-real", type=int, default=1000)
    ap.add_argument("--probe-steps", type=int, default=800)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ckpt-name", default="checkpoint.safetensors",
                    help="checkpoint file evaluated in each run folder (e.g. a copy taken at an equal budget)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config overrides for every run")
    ap.add_argument("--tag", default="", help="suffix of the run folders and result names, e.g. '@narrow' for a run "
                    "started from a deliberately wrong prior (--set pose.init_learned=true --set pose.yaw_std=0.3)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    data, probes = args.work / "heads.lmdb", {t: args.work / f"probe-{t}.safetensors" for t in ("pose", "depth")}
    if args.phase in ("all", "data"):
        _data(args, data, probes)
    if args.phase in ("all", "train"):
        for m in methods:
            _train(args, data, m)
    if args.phase in ("all", "eval"):
        print(json.dumps(_evaluate(args, data, probes, methods), indent=2))


def _data(args: argparse.Namespace, data: Path, probes: dict[str, Path]) -> None:
    from gan3dkit.metrics.probes import ProbeConfig, save_probe, train_probe
    from gan3dkit.prepare.synthetic import build_synthetic

    if not data.exists():
        build_synthetic(data, family="heads", num=args.num_data, resolution=64, prior=args.prior, resume=True)
    for target, path in probes.items():
        if not path.exists():
            t0 = time.time()
            probe = train_probe(data, ProbeConfig(target=target, steps=args.probe_steps))
            save_probe(probe, path)
            print(json.dumps({"probe": target, "s": time.time() - t0}), file=sys.stderr)


def _train(args: argparse.Namespace, data: Path, method: str) -> None:
    from gan3dkit.train.config import train_preset
    from gan3dkit.train.loop import train
    from gan3dkit.utils.config import apply_overrides

    run = args.work / f"run-{method}{args.tag}"
    cfg = apply_overrides(train_preset("tiny", method), [
        f'data="{data}"', f'out="{run}"', "run.workers=1", f"run.cpu_threads={args.threads}", f"run.kimg={args.kimg}",
        "run.tick_kimg=0.5", "run.snapshot_ticks=2", *args.overrides,
    ])
    t0 = time.time()
    summary = train(cfg, resume=True)
    (run / "bench.json").write_text(json.dumps({**summary, "wall_s_this_call": time.time() - t0}, indent=2))


def _evaluate(args: argparse.Namespace, data: Path, probes: dict[str, Path], methods: list[str]) -> dict:
    from gan3dkit.generate import load_generator, render_views
    from gan3dkit.metrics.context import EvalOptions
    from gan3dkit.metrics.suite import evaluate
    from gan3dkit.train.checkpoint import read_header

    args.out.mkdir(parents=True, exist_ok=True)
    opts = EvalOptions(num=args.num, max_real=args.max_real, pose_probe=str(probes["pose"]),
                       depth_probe=str(probes["depth"]), poses="auto")
    previous = args.out / "results.json"  # evaluations of other methods (separate calls) are kept
    results: dict[str, dict] = json.loads(previous.read_text())["results"] if previous.exists() else {}
    yaws_fake: dict[str, np.ndarray] = {}
    for method in methods:
        m = method + args.tag
        ckpt = args.work / f"run-{m}" / args.ckpt_name
        if not ckpt.exists():
            continue
        # poses "auto": EG3D at dataset labels, prior methods at their prior (here the true distribution),
        # learned-pose methods where G itself puts its camera (PoF3D's protocol)
        report = evaluate(METRICS, data, ckpt, opts)
        header = read_header(ckpt)
        kimg = header["progress"]["nimg"] / 1000
        # one row per tick (the last one written, should a resume have repeated it), up to this checkpoint's budget;
        # total_sec restarts at every resume, so the training time is the sum of the ticks' times
        ticks = {r["tick"]: r for r in map(json.loads, (ckpt.parent / "stats.jsonl").read_text().splitlines())}
        stats = [r for _, r in sorted(ticks.items()) if r["kimg"] <= kimg + 1e-9]
        results[m] = {
            "kimg": kimg,
            "steps": header["progress"]["step"],
            "train_s": sum(r["sec_per_tick"] for r in stats),
            **{r.metric: r.value for r in report.results},
            "extras": {r.metric: r.extras for r in report.results if r.metric in ("pose", "depth_nmse")},
            "learned_pose_per_tick": _learned_trajectory(stats),
        }
        G, _ = load_generator(ckpt)
        if getattr(G, "pose_mapping", None) is not None:
            results[m]["learned_pose_final"] = _learned_moments(G)
        grid, _ = render_views(G, [0, 1, 2, 3], yaws=(0.8, 0.4, 0.0, -0.4, -0.8), nrr=header["progress"]["nrr"])
        from PIL import Image

        Image.fromarray(grid).save(args.out / f"views_{m}.png")
        yaws_fake[m] = _probe_yaws(G, probes["pose"], header["progress"]["nrr"], data)
        np.save(args.out / f"yaws_{m}.npy", yaws_fake[m])
    for m in results:
        if m not in yaws_fake and (args.out / f"yaws_{m}.npy").exists():
            yaws_fake[m] = np.load(args.out / f"yaws_{m}.npy")
    figs = {"pose_hist": str(_pose_histogram(args.out / "pose_hist.png", data, yaws_fake))}
    out = {"budget_kimg": args.kimg, "metrics": METRICS, "num": args.num, "results": results, "figures": figs,
           "torch": torch.__version__, "threads": args.threads}
    (args.out / "results.json").write_text(json.dumps(out, indent=2, default=str))
    return out


def _learned_trajectory(stats: list[dict]) -> list[dict] | None:
    """Per tick: kimg and the mean/std of G's learned yaw offset and pitch (training batches; learned methods)."""

    def value(r: dict, key: str) -> float | None:
        v = r.get(key)
        return v.get("mean") if isinstance(v, dict) else v

    rows = [{"kimg": r["kimg"], "h_mean": value(r, "Pose/learned_h_mean"), "h_std": value(r, "Pose/learned_h_std"),
             "v_mean": value(r, "Pose/learned_v_mean")} for r in stats]
    rows = [r for r in rows if r["h_mean"] is not None]
    return rows or None


def _learned_moments(G: torch.nn.Module, n: int = 4096) -> dict[str, float]:
    """G's own learned (yaw, pitch) about frontal on n fresh z: what it renders at (no probe involved)."""
    import math

    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        hv = G.pose_mapping(G.mapping(z, torch.zeros(n, 25))[:, 0]) - math.pi / 2
    return {"yaw_mean": hv[:, 0].mean().item(), "yaw_std": hv[:, 0].std().item(),
            "pitch_mean": hv[:, 1].mean().item(), "pitch_std": hv[:, 1].std().item()}


def _probe_yaws(G: torch.nn.Module, probe_path: Path, nrr: int, data: Path, n: int = 256) -> np.ndarray:
    """Yaw (radians) the pose probe reads on fakes: rendered at dataset poses, or at G's own learned poses."""
    from gan3dkit.data.reader import DatasetReader
    from gan3dkit.metrics.probes import load_probe
    from gan3dkit.metrics.sampling import draw_poses, render_fakes

    probe = load_probe(probe_path)
    if getattr(G, "pose_mapping", None) is not None:
        from gan3dkit.metrics.sampling import learned_poses

        cams = learned_poses(G, n, seed=5)
    else:
        cams = draw_poses("dataset", n, seed=5, reader=DatasetReader(data), mirror=False)
    fakes = render_fakes(G, cams, seed=1, nrr=nrr, keep=("image",))
    return probe.predict_pose(fakes["image"])[:, 0].numpy()


def _pose_histogram(path: Path, data: Path, yaws_fake: dict[str, np.ndarray]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gan3dkit.data.reader import DatasetReader

    reader = DatasetReader(data)
    true_yaw = np.array([reader.read(i, ["ypr"])["ypr"][0] for i in range(len(reader))])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(-2.0, 2.0, 41)
    ax.hist(true_yaw, bins=bins, density=True, color="0.8", label="dataset (true)")
    for m, y in yaws_fake.items():
        ax.hist(y, bins=bins, density=True, histtype="step", linewidth=1.6, label=f"{m} (probe on fakes)")
    ax.set_xlabel("yaw (rad)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
