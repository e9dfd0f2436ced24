# SPDX-License-Identifier: Apache-2.0
"""One prepared GPU run: builds the CUDA ops, self-checks them, runs the GPU tests and measures; JSON + markdown.

Stages (each in its own child process, with its own time limit, so a crash or a slow stage cannot take the rest):

  build        compile the ops core with its CUDA kernels (ninja, MAX_JOBS = CPU count)
  selfcheck    every compiled op vs its pure-PyTorch reference on the CPU and each GPU (fwd, bwd, double bwd)
  gpu_tests    pytest -m gpu (the GPU-marked tests; they skip without CUDA)
  render       ffhq512 G at NRR 128, 48 + 48 samples: reference ops vs compiled, batch 1 and 8, ms/image
  train_step   ffhq512 training step at batch 8 with EG3D's fp16 layers: Gmain, Greg, Dmain, Dreg ms
  encoders     LP3D and TriPlaneNet (v2) encoder forward at 512², ms/image at batch 1 and 8
  ko_inversion one Ko et al. inversion (Alg. 1, 400 + 400 steps) of a 512² image, seconds
  train        two minutes of `gan3dkit train --preset ffhq512` on a synthetic-heads dataset, with its images

Weights are random (nothing is downloaded): the figures are speed and agreement, not quality. The run stops
scheduling stages when the overall budget (``--budget``, default 570 s) would be exceeded; each stage's limit is
``min(its cap, what the budget leaves after reserving the later stages' minimum)``.

``--dry-run`` runs every stage on the CPU at tiny sizes (tiny preset, NRR 16, a few steps) into ``--out`` (a
temporary folder by default, never docs/bench) so the script itself is proven end to end without a GPU.

Examples:
    python tools/gpu_check.py                      # on a GPU machine: writes docs/bench/gpu_check.{json,md}
    python tools/gpu_check.py --dry-run --out /tmp/gpu_check_dry
    python tools/gpu_check.py --stages render,train_step --budget 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gan3dkit.utils.files import atomic_write_bytes

ROOT = Path(__file__).resolve().parent.parent

#: (name, cap seconds on the GPU, minimum seconds it needs to be worth starting).
STAGES: list[tuple[str, float, float]] = [
    ("build", 200, 30),
    ("selfcheck", 60, 10),
    ("gpu_tests", 90, 20),
    ("render", 60, 15),
    ("train_step", 60, 15),
    ("encoders", 45, 10),
    ("ko_inversion", 130, 30),
    ("train", 175, 60),
]

#: Sizes of the full GPU run and of the CPU dry run.
SIZES: dict[str, dict[str, Any]] = {
    "gpu": {"preset": "ffhq512", "nrr": 128, "samples": (48, 48), "batches": (1, 8), "train_batch": 8,
            "encoder_size": "paper", "ko_steps": (400, 400), "w_avg_samples": 5000, "repeats": 5,
            "train_minutes": 2.0, "dataset": {"num": 32, "resolution": 512}, "test_paths": ["tests"]},
    "dry": {"preset": "tiny", "nrr": 16, "samples": (4, 4), "batches": (1, 2), "train_batch": 2,
            "encoder_size": "tiny", "ko_steps": (3, 3), "w_avg_samples": 64, "repeats": 1,
            "train_minutes": 0.05, "dataset": {"num": 8, "resolution": 64},
            "test_paths": ["tests/ops/test_selfcheck.py", "tests/networks/test_generator.py"]},
}


# ---------------------------------------------------------------------------------------------- helpers
def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_ms(fn: Callable[[], object], device: Any, repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in ms, CUDA-synchronised."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1000.0)
    return round(statistics.median(times), 2)


class _ReferenceOps:
    """Every op on its pure-PyTorch reference while inside (the backend reads this variable on each call)."""

    def __enter__(self) -> None:
        from gan3dkit.ops import _backend

        self.old = os.environ.get(_backend.NO_EXTENSION_ENV)
        os.environ[_backend.NO_EXTENSION_ENV] = "1"

    def __exit__(self, *exc: object) -> None:
        from gan3dkit.ops import _backend

        if self.old is None:
            os.environ.pop(_backend.NO_EXTENSION_ENV, None)
        else:
            os.environ[_backend.NO_EXTENSION_ENV] = self.old


def _generator(preset: str, device: Any, nrr: int | None = None, samples: tuple[int, int] | None = None):
    import torch

    from gan3dkit.networks import TriPlaneGenerator, get_preset

    cfg = get_preset(preset).generator
    if nrr:
        cfg.neural_rendering_resolution = nrr
    if samples:
        cfg.rendering.depth_resolution, cfg.rendering.depth_resolution_importance = samples
    torch.manual_seed(0)
    return TriPlaneGenerator(cfg).to(device).eval()


def _cameras(batch: int, device: Any):
    import torch

    from gan3dkit.cameras import get_prior

    return get_prior("synthetic_heads").sample(batch, torch.Generator().manual_seed(0)).to_label().float().to(device)


# ---------------------------------------------------------------------------------------------- stages
def stage_build(sz: dict[str, Any], device: Any, limit: float) -> dict[str, Any]:
    from gan3dkit.ops import _build
    from gan3dkit.ops.build import prebuild

    os.environ["MAX_JOBS"] = str(os.cpu_count() or 2)
    result = prebuild(timeout_s=max(10.0, limit - 5), verbose=False)
    spec = _build.build_spec()
    return {**result, "with_cuda": spec.with_cuda, "ok": bool(result["built"])}


def stage_selfcheck(sz: dict[str, Any], device: Any, limit: float) -> dict[str, Any]:
    from gan3dkit.ops import selfcheck

    rows = selfcheck.check_table(recheck=True)
    failed = [f"{r['op']} on {r['device']}: {r['error']}" for r in rows if r["ok"] is False]
    not_run = [f"{r['op']} on {r['device']}: {r['error']}" for r in rows if r["ok"] is None]
    return {"rows": rows, "failed": failed, "not_run": not_run, "ok": not failed and not not_run}


def stage_gpu_tests(sz: dict[str, Any], device: Any, limit: float) -> dict[str, Any]:
    import xml.etree.ElementTree as ET

    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", f"--junitxml={junit}",
               *sz["test_paths"]]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=max(5.0, limit - 5), check=False)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if junit.exists():
            suite = ET.parse(junit).getroot()
            suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
            counts = {k: int(suite.get(k, 0)) for k in counts}
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-8:]
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    ok = proc.returncode in (0, 5) and counts["failures"] == 0 and counts["errors"] == 0
    return {"command": " ".join(cmd[1:]), "returncode": proc.returncode, **counts, "passed": passed, "ok": ok,
            "output_tail": tail}


def stage_render(sz: dict[str, Any], device: Any, limit: float) -> dict[str, Any]:
    import torch

    G = _generator(sz["preset"], device, sz["nrr"], sz["samples"])
    rows = []
    for batch in sz["batches"]:
        z = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(1)).to(device)
        c = _cameras(batch, device)
        images, row = {}, {"batch": batch}
        def fn(z: Any = z, c: Any = c) -> Any:
            torch.manual_seed(0)  # the stratified and importance samples draw from the global generator
            return G(z, c, noise_mode="const")

        for name, ctx in (("reference", _ReferenceOps), ("compiled", None)):
            with torch.no_grad(), (ctx() if ctx else _nullcontext()):
                row[f"{name}_ms_per_image"] = round(_time_ms(fn, device, sz["repeats"]) / batch, 2)
                images[name] = fn()["image"].float()
        row["speedup"] = round(row["reference_ms_per_image"] / row["compiled_ms_per_image"], 2)
        diff = (images["reference"] - images["compiled"]).abs()
        row["max_abs_diff_image"], row["mean_abs_diff_image"] = float(diff.max()), float(diff.mean())
        rows.append(row)
    r = G.config.rendering
    return {"preset": sz["preset"], "nrr": G.config.neural_rendering_resolution,
            "samples": [r.depth_resolution, r.depth_resolution_importance], "rows": rows,
            "ok": all(row["mean_abs_diff_image"] < 1e-3 for row in rows)}


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def stage_train_step(sz: dict[str, Any], device: Any, limit: float) -> dict[str, Any]:
    import torch

    from gan3dkit.cameras import Cameras
    from gan3dkit.train.config import train_preset
    from gan3dkit.train.loop import _build_runtime, _make_phases
    from gan3dkit.utils import backends

    cfg = train_preset(sz["preset"])
    cfg.optim.batch = sz["train_batch"]
    cfg.run.mixed_precision = True
    batch, res = cfg.optim.batch, cfg.generator.img_resolution
    cams = _cameras(64, torch.device("cpu"))
    torch.manual_seed(0)
    with backends.scoped(backends.BackendPolicy(allow_tf32=cfg.run.allow_tf32)):
        runtime = _build_runtime(cfg, Cameras.from_label(cams), None, device)
        G, D, loss = runtime.G, runtime.D, runtime.loss
        phases = _make_phases(cfg, G, D)
        st = loss.step_state(0)
        real = loss.real_images(torch.rand(batch, 3, res, res, device=device) * 2 - 1, st)
        real_c = _cameras(batch, device)
        times = {}
        for phase in phases:
            module = G if phase.module == "G" else D
            G.requires_grad_(phase.module == "G")
            D.requires_grad_(phase.module == "D")

            def step(phase=phase, module=module) -> None:
                phase.opt.zero_grad(set_to_none=True)
                z = torch.randn(batch, G.z_dim, device=device)
                c = runtime.fake_cameras(batch).to(device)
                loss.accumulate_gradients(phase.name, real, real_c, z, c, float(phase.interval), st)
                phase.opt.step()

            times[phase.name] = _time_ms(step, device, sz["repeats"])
        fp16 = {"generator_backbone": G.config.num_fp16_res, "superres": G.config.superres.num_fp16_res,
                "discriminator": cfg.discriminator.num_fp16_res}
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    per_step = times["Gmain"] + times["Dmain"] + times["Greg"] / cfg.optim.g_reg_interval
    per_step += times["Dreg"] / cfg.optim.d_reg_interval
    return {"preset": sz["preset"], "batch": batch, "phase_ms": times, "amortised_step_ms": round(per_step, 1),
            "reg_intervals": {"G": cfg.optim.g_reg_interval, "D": cfg.optim.d_reg_interval},
            "num_fp16_res": fp16, "peak_memory_gib": None if peak is None else round(peak, 2), "ok": True}


def stage_encoders(sz: dict[str, Any], device: Any, limit: float) -> dict[str, Any]:
    import torch

    from gan3dkit.encoders import arch_config, build_encoder

    G = _generator(sz["preset"], device)
    res = G.config.img_resolution
    rows = []
    for arch in ("lp3d", "triplanenet-v2"):
        enc = build_encoder(arch, arch_config(arch, G, sz["encoder_size"]), G).to(device).eval()
        for batch in sz["batches"]:
            x = torch.rand(batch, 3, res, res, generator=torch.Generator().manual_seed(2)).to(device) * 2 - 1
            with torch.no_grad():
                ms = _time_ms(lambda enc=enc, x=x: enc(x), device, sz["repeats"])
            rows.append({"arch": arch, "size": sz["encoder_size"], "input": res, "batch": batch,
                         "ms_per_image": round(ms / batch, 2),
                         "params_m": round(sum(p.numel() for p in enc.parameters()) / 1e6, 1)})
    return {"rows": rows, "ok": True}


def stage_ko_inversion(sz: dict[str, Any], device: Any, limit: float) -> dict[str, Any]:
    import numpy as np
    import torch

    from gan3dkit.invert import InvertItem, invert, preset
    from gan3dkit.utils.visual import to_uint8_hwc

    G = _generator(sz["preset"], device)
    with torch.no_grad():
        c = _cameras(1, device)
        img = G(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(3)).to(device), c)["image"]
    image = to_uint8_hwc(img[0])
    cfg = preset("ko", 1)
    cfg.projector.steps, cfg.tune.steps = sz["ko_steps"]
    cfg.projector.w_avg_samples = sz["w_avg_samples"]
    cfg.pose.warmup_steps = min(cfg.pose.warmup_steps, cfg.projector.steps - 1)
    cfg.perceptual = cfg.tune_perceptual = "random-vgg-lpips"  # offline: the VGG cost without its weights
    cfg.pose.warp_features = "rgb"  # offline: no ImageNet VGG16 (the warp's conv3_3 cost is not in this timing)
    item = InvertItem("gpu_check", image, c[0].cpu().numpy().astype(np.float32), "given")
    start = time.perf_counter()
    inv = invert(G, item, cfg)
    _sync(device)
    seconds = time.perf_counter() - start
    report = inv.report if hasattr(inv, "report") else {}
    return {"preset": sz["preset"], "steps": list(sz["ko_steps"]), "seconds": round(seconds, 1),
            "timing": report.get("timing", {}) if isinstance(report, dict) else {},
            "perceptual": "random-backbone VGG LPIPS (timing only, not calibrated)", "ok": True}


def stage_train(sz: dict[str, Any], device: Any, limit: float, out: Path | None = None) -> dict[str, Any]:
    from gan3dkit.prepare.synthetic.build import build_synthetic

    work = Path(tempfile.mkdtemp(prefix="gpu_check_train_"))
    try:
        t0 = time.perf_counter()
        data = build_synthetic(work / "heads.lmdb", "heads", sz["dataset"]["num"], sz["dataset"]["resolution"],
                               ssaa=1, threads=os.cpu_count())
        t_data = time.perf_counter() - t0
        run = work / "run"
        # Two minutes of training unless the dataset took so long that the stage limit (start-up, the final
        # snapshot) would cut it: then as many as fit, and the report says so.
        minutes = max(0.02, min(sz["train_minutes"], (limit - t_data - 45) / 60))
        cmd = [sys.executable, "-m", "gan3dkit", "train", "--preset", sz["preset"], "--data", str(data),
               "--out", str(run), "--minutes", f"{minutes:.2f}", "--restart", "--json",
               "--device", device.type, "--set", "run.snapshot_ticks=1", "--set", f"optim.batch={sz['train_batch']}",
               "--set", "run.workers=2"]
        if device.type == "cpu":
            cmd += ["--set", "run.tick_kimg=0.004"]
        t1 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=max(10.0, limit - t_data - 10),
                              check=False)
        t_train = time.perf_counter() - t1
        summary = _last_json(proc.stdout)
        samples = run / "samples"
        fakes = sorted(samples.glob("fakes*.png")) if samples.exists() else []
        last = fakes[-1].name.split("_")[0].removesuffix(".png") if fakes else ""  # e.g. fakes000000004
        images = [p for p in [samples / "reals.png", *fakes] if p.exists() and (p.name == "reals.png" or
                                                                               p.name.startswith(last))]
        kept = []
        for src in images if out is not None else []:  # the reals and the last grids: rgb, raw, depth
            dst = out / f"gpu_check_train_{src.name}"
            shutil.copyfile(src, dst)
            kept.append(dst.name)
        ticks = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()] \
            if (run / "stats.jsonl").exists() else []
        return {"preset": sz["preset"], "dataset": sz["dataset"], "dataset_seconds": round(t_data, 1),
                "train_minutes": round(minutes, 2),
                "train_seconds": round(t_train, 1), "returncode": proc.returncode, "summary": summary,
                "ticks": len(ticks), "last_tick": ticks[-1] if ticks else None, "images": kept,
                "stderr_tail": proc.stderr.strip().splitlines()[-5:], "ok": proc.returncode == 0 and bool(images)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _last_json(text: str) -> Any:
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    start = text.find("{")
    try:
        return json.loads(text[start:]) if start >= 0 else None
    except ValueError:
        return None


STAGE_FNS: dict[str, Callable[..., dict[str, Any]]] = {
    "build": stage_build, "selfcheck": stage_selfcheck, "gpu_tests": stage_gpu_tests, "render": stage_render,
    "train_step": stage_train_step, "encoders": stage_encoders, "ko_inversion": stage_ko_inversion,
    "train": stage_train,
}


# ---------------------------------------------------------------------------------------------- driver
def run_stage_child(name: str, dry: bool, limit: float, result_path: Path, out: Path) -> None:
    """Body of a child process: run one stage, write its JSON result."""
    import torch

    device = torch.device("cpu" if dry else "cuda")
    sz = SIZES["dry" if dry else "gpu"]
    if dry:
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    kwargs = {"out": out} if name == "train" else {}
    result = STAGE_FNS[name](sz, device, limit, **kwargs)
    atomic_write_bytes(result_path, json.dumps(result, default=str).encode())


def run_stage(name: str, dry: bool, limit: float, out: Path) -> dict[str, Any]:
    """Run one stage in a child process under ``limit`` seconds; never raises."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        result_path = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--limit", str(limit),
               "--result", str(result_path), "--out", str(out)] + (["--dry-run"] if dry else [])
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit, check=False)
            if result_path.exists():
                result = json.loads(result_path.read_text())
            else:
                lines = (proc.stderr or proc.stdout).strip().splitlines()
                result = {"ok": False, "error": f"exit {proc.returncode}: {lines[-1] if lines else ''}",
                          "stderr_tail": lines[-12:]}
        except subprocess.TimeoutExpired:
            result = {"ok": False, "error": f"timed out after {limit:.0f} s (the stage's limit)"}
    result["seconds_total"] = round(time.monotonic() - start, 1)
    result["limit_s"] = round(limit, 1)
    return result


def environment(dry: bool) -> dict[str, Any]:
    import torch

    gpus = [{"name": torch.cuda.get_device_name(i),
             "capability": "sm_{}{}".format(*torch.cuda.get_device_capability(i)),
             "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1)}
            for i in range(torch.cuda.device_count())]
    return {"dry_run": dry, "host": platform.node(), "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "gpus": gpus, "cpu_count": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                     text=True, check=False).stdout.strip()}


def markdown(report: dict[str, Any]) -> str:
    """The human-readable summary written beside the JSON."""
    env, st = report["environment"], report["stages"]
    gpu = ", ".join(f"{g['name']} ({g['capability']}, {g['memory_gib']} GiB)" for g in env["gpus"]) or "none"
    title = f"# gpu_check {'(DRY RUN on the CPU: tiny sizes, not GPU figures)' if env['dry_run'] else ''}".strip()
    when = (f"{env['date']}, commit {env['commit']}, torch {env['torch']} (CUDA {env['cuda']}), GPU: {gpu}; "
            f"total {report['seconds_total']} s of a {report['budget_s']} s budget.")
    lines = [title, "", when, "", "| stage | ok | seconds | limit |", "|---|---|---|---|"]
    for name, r in st.items():
        lines.append(f"| {name} | {'yes' if r.get('ok') else 'NO'} | {r.get('seconds_total', '-')} | "
                     f"{r.get('limit_s', '-')} |")
    for name, r in st.items():
        if "error" in r:
            lines += ["", f"**{name}**: {r['error']}"]
    if st.get("selfcheck", {}).get("rows"):
        lines += ["", "## Self-check", "", "| device | op | verdict | max abs err |", "|---|---|---|---|"]
        for row in st["selfcheck"]["rows"]:
            err = max(row["max_abs_err"].values()) if row["max_abs_err"] else None
            verdict = {True: "pass", False: f"FAIL: {row['error']}", None: f"not run: {row['error']}"}[row["ok"]]
            lines.append(f"| {row['device']} ({row['capability']}) | {row['op']} | {verdict} | "
                         f"{'-' if err is None else f'{err:.1e}'} |")
    if "passed" in st.get("gpu_tests", {}):
        g = st["gpu_tests"]
        lines += ["", (f"## GPU tests\n\n`{g['command']}`: {g['passed']} passed, {g['failures']} failed, "
                       f"{g['errors']} errors, {g['skipped']} skipped.")]
    if st.get("render", {}).get("rows"):
        r = st["render"]
        lines += ["", f"## Render ({r['preset']}, NRR {r['nrr']}, {r['samples'][0]} + {r['samples'][1]} samples)", "",
                  "| batch | reference ms/image | compiled ms/image | speedup | max abs diff |",
                  "|---|---|---|---|---|"]
        lines += [f"| {x['batch']} | {x['reference_ms_per_image']} | {x['compiled_ms_per_image']} | {x['speedup']} | "
                  f"{x['max_abs_diff_image']:.1e} (mean {x['mean_abs_diff_image']:.1e}) |" for x in r["rows"]]
    if "phase_ms" in st.get("train_step", {}):
        t = st["train_step"]
        lines += ["", f"## Training step ({t['preset']}, batch {t['batch']}, fp16 layers {t['num_fp16_res']})", "",
                  "| phase | ms |", "|---|---|"] + [f"| {k} | {v} |" for k, v in t["phase_ms"].items()]
        lines += [f"| amortised step (reg every {t['reg_intervals']}) | {t['amortised_step_ms']} |",
                  "", f"peak memory: {t['peak_memory_gib']} GiB"]
    if st.get("encoders", {}).get("rows"):
        lines += ["", "## Encoders", "", "| arch | size | input | batch | ms/image | params (M) |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {e['arch']} | {e['size']} | {e['input']}² | {e['batch']} | {e['ms_per_image']} | "
                  f"{e['params_m']} |" for e in st["encoders"]["rows"]]
    if "seconds" in st.get("ko_inversion", {}):
        k = st["ko_inversion"]
        lines += ["", (f"## Ko et al. inversion\n\n{k['steps'][0]} + {k['steps'][1]} steps ({k['preset']}): "
                       f"{k['seconds']} s ({k['perceptual']}).")]
    if "train_seconds" in st.get("train", {}):
        t = st["train"]
        tick = t["last_tick"] or {}
        lines += ["", (f"## Training run\n\n`train --preset {t['preset']} --minutes {t['train_minutes']}` on "
                       f"{t['dataset']['num']} synthetic heads at {t['dataset']['resolution']}² (built in "
                       f"{t['dataset_seconds']} s): {t['train_seconds']} s, {t['ticks']} ticks, last tick "
                       f"kimg {tick.get('kimg', '-')}, sec/kimg {round(tick.get('sec_per_kimg') or 0, 1)}.")]
        lines += [f"\n![{name}]({name})" for name in t["images"]]
    lines += ["", "Weights are random: speed and agreement only. Produced by `python tools/gpu_check.py`."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="every stage on the CPU at tiny sizes")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default docs/bench; dry run: a temp dir)")
    parser.add_argument("--budget", type=float, default=570.0, help="overall seconds (stages are skipped past it)")
    parser.add_argument("--stages", default="", help="comma-separated subset of: " + ", ".join(s[0] for s in STAGES))
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_stage_child(args.child, args.dry_run, args.limit, args.result, args.out)
        return 0
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run on a GPU machine, or use --dry-run to exercise the script on the "
              "CPU at tiny sizes.", file=sys.stderr)
        return 2
    out = args.out or (Path(tempfile.mkdtemp(prefix="gpu_check_dry_")) if args.dry_run else ROOT / "docs" / "bench")
    out.mkdir(parents=True, exist_ok=True)
    wanted = [s for s in args.stages.split(",") if s] or [s[0] for s in STAGES]
    unknown = set(wanted) - {s[0] for s in STAGES}
    if unknown:
        parser.error(f"unknown stages: {', '.join(sorted(unknown))}")
    plan = [s for s in STAGES if s[0] in wanted]
    start = time.monotonic()
    report: dict[str, Any] = {"environment": environment(args.dry_run), "budget_s": args.budget, "stages": {}}
    for i, (name, cap, _minimum) in enumerate(plan):
        left = args.budget - (time.monotonic() - start) - sum(m for _, _, m in plan[i + 1 :])
        limit = min(cap * (3 if args.dry_run else 1), left)
        if limit < _minimum:
            report["stages"][name] = {"ok": False, "error": f"skipped: {max(0.0, left):.0f} s left in the budget"}
            continue
        print(f"gpu_check: {name} (limit {limit:.0f} s) ...", file=sys.stderr, flush=True)
        report["stages"][name] = run_stage(name, args.dry_run, limit, out)
        print(f"gpu_check: {name}: {'ok' if report['stages'][name].get('ok') else 'FAILED'} "
              f"in {report['stages'][name]['seconds_total']} s", file=sys.stderr, flush=True)
    report["seconds_total"] = round(time.monotonic() - start, 1)
    report["ok"] = all(r.get("ok") for r in report["stages"].values())
    stem = "gpu_check_dry_run" if args.dry_run else "gpu_check"
    atomic_write_bytes(out / f"{stem}.json", (json.dumps(report, indent=1, default=str) + "\n").encode())
    atomic_write_bytes(out / f"{stem}.md", markdown(report).encode())
    print(json.dumps({"gpu_check": {"ok": report["ok"], "out": str(out), "seconds": report["seconds_total"],
                                    "stages": {k: bool(v.get("ok")) for k, v in report["stages"].items()}}}))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
