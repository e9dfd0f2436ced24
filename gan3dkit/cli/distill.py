"""`gan3dkit distill-encoder`: train a feed-forward encoder on a generator's own renders (LP3D, TriPlaneNet, Ko)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from .common import console, emit_json, handle_errors

#: The built-in archs, literal so --help imports no torch (a test ties it to the registry); `register_arch` adds more.
ARCH_HELP = ("Encoder architecture, built in or added with gan3dkit.encoders.register_arch: lp3d | lp3d-lt | "
             "lp3d-release | lp3d-lt-release (Live3DPortrait's layout) | triplanenet-v1 | triplanenet-v2 | ko-pose | "
             "ko-latent.")


def _ko(arch: str, ckpt: Path, out: Path, sets: list[str], backbone_weights: str | None, random_init: bool,
        steps: int | None, minutes: float | None, json_out: bool, resume: bool, device: str,
        print_config: bool) -> None:
    """Ko et al.'s P / E pre-training (`encoders.ko_task.distill_ko`) on the training engine."""
    from ..encoders.ko_task import distill_ko, ko_config
    from ..train.checkpoint import expect_kind
    from ..utils.items import check_out_folder

    expect_kind(ckpt, "generator", "--ckpt")
    check_out_folder(out)
    cfg = ko_config(sets, backbone_weights, random_init, steps, minutes)
    if print_config:
        from ..utils.config import to_dict

        emit_json(to_dict(cfg))
        return
    main = int(os.environ.get("RANK", "0")) == 0
    summary = distill_ko(arch, ckpt, out, cfg, resume=resume, device=device, progress=main)
    if not main:
        return
    if json_out:
        emit_json(summary)
    else:
        console().print(f"[green]done[/]: {arch}, {summary['steps']} steps ({summary['stopped']}) -> "
                        f"{summary['checkpoint']}")


@handle_errors
def distill_encoder(
    arch: str = typer.Option(..., "--arch", help=ARCH_HELP),
    ckpt: Path = typer.Option(..., "--ckpt", help="Generator checkpoint written by `gan3dkit train` (the teacher)."),
    out: Path = typer.Option(..., "--out", help="Run directory (config.json, checkpoint, stats.jsonl, samples/)."),
    data: Path | None = typer.Option(None, "--data", help="TriPlaneNet: photos with measured cameras (gan3dkit "
                                     "LMDB, e.g. FFHQ), mixed with generator samples at their poses, mirrored."),
    preset: str = typer.Option("paper", help="paper (the papers' sizes and schedules) | tiny (CPU smoke runs)."),
    size: str | None = typer.Option(None, help="Encoder size paper | small | tiny (default: the preset's)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set loss.lpips_sr=0.8."),
    steps: int | None = typer.Option(None, help="Total gradient steps (run.steps)."),
    minutes: float | None = typer.Option(None, help="Stop this call after N minutes (checkpoint; resume later)."),
    backbone_weights: str | None = typer.Option(None, help="Pretrained backbone file/URL (ResNet34 / IR-SE-50)."),
    lpips_backbone: str | None = typer.Option(None, help="AlexNet/VGG16 ImageNet weights for the LPIPS loss."),
    identity_weights: str | None = typer.Option(None, help="ArcFace IR-SE-50 weights (model_ir_se50.pth)."),
    init: Path | None = typer.Option(None, "--init", help="Start from an encoder checkpoint's weights and "
                                     "architecture (e.g. `convert triplanenet`; optimisers fresh)."),
    random_init: bool = typer.Option(False, "--random-init", help="Train from nothing pretrained (no ImageNet/IR-SE-50 "
                                     "backbone, random LPIPS backbone, no identity loss); written into every output."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Continue <out>/checkpoint.safetensors "
                                "exactly."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    print_config: bool = typer.Option(False, help="Print the resolved config and exit."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary at the end."),
) -> None:
    """Distil a generator into an image -> tri-plane encoder, trained only on its renders made on the fly.

    Multi-process: `torchrun --nproc_per_node=N -m gan3dkit distill-encoder ...` (gloo on CPU, NCCL on GPU).

    Example: gan3dkit distill-encoder --arch lp3d-lt --ckpt runs/heads/checkpoint.safetensors --out runs/enc
    --preset tiny --minutes 10
    """
    from ..encoders.distill import distill, distill_config
    from ..encoders.registry import EXTERNAL_ARCHS
    from ..utils.device import check_device
    from ..utils.errors import check_number

    device = check_device(device)
    check_number("--steps", steps, ge=1, integer=True, allow_none=True)
    check_number("--minutes", minutes, gt=0, allow_none=True)
    if arch in EXTERNAL_ARCHS:
        return _ko(arch, ckpt, out, list(set_), backbone_weights, random_init, steps, minutes, json_out, resume, device,
                   print_config)
    cfg = distill_config(arch, ckpt, out, preset, set_, size=size, backbone_weights=backbone_weights,
                         lpips_backbone=lpips_backbone, identity_weights=identity_weights, data=data, init=init,
                         random_init=random_init, steps=steps, minutes=minutes)
    if print_config:
        emit_json(cfg.to_dict())
        return
    main = int(os.environ.get("RANK", "0")) == 0
    summary = distill(cfg, resume=resume, device=device, progress=main, ticks=main and not json_out)
    if not main:
        return
    if json_out:
        emit_json(summary)
        return
    c = console()
    c.print(f"[green]done[/]: {summary['steps']} steps ({summary['stopped']}); checkpoint {summary['checkpoint']}")
    for key in ("backbone", "lpips", "identity", "discriminator", "confidence", "stats"):
        if key in summary:
            c.print(f"{key}: {summary[key]}", highlight=False, soft_wrap=True)
