"""`gan3dkit distill-encoder`: train a feed-forward encoder on a generator's own renders (LP3D, TriPlaneNet, Ko)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from .common import console, emit_json, err_console, handle_errors, progress_bar

ARCH_HELP = "lp3d | lp3d-lt | triplanenet-v1 | triplanenet-v2 | ko-pose | ko-latent."


def _ko(arch: str, ckpt: Path, out: Path, overrides: list[str], steps: int | None, json_out: bool,
        resume: bool) -> None:
    try:
        from ..encoders.ko import KoDistillConfig, distill_ko
    except ImportError as exc:
        raise ValueError(
            f"{arch} needs gan3dkit.encoders.ko (Ko et al.'s encoders), which is not available: {exc}"
        ) from exc
    from ..utils.config import apply_overrides

    cfg = apply_overrides(KoDistillConfig(), overrides + ([f"steps={steps}"] if steps is not None else []))
    with progress_bar(f"distill {arch}", total=cfg.steps, json_mode=json_out) as update:
        summary = distill_ko(arch, ckpt, out, cfg, on_step=lambda d, n, *_: update(d, n), resume=resume)
    if json_out:
        emit_json(summary)
    else:
        console().print(f"[green]done[/]: {arch} -> {summary.get('checkpoint')}")


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
                                "(ko-*: <out>/<arch>.train.safetensors) exactly."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    print_config: bool = typer.Option(False, help="Print the resolved config and exit."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary at the end."),
) -> None:
    """Distil a generator into an image -> tri-plane encoder, trained only on its renders made on the fly.

    Multi-process: `torchrun --nproc_per_node=N -m gan3dkit distill-encoder ...` (gloo on CPU, NCCL on GPU).

    Example: gan3dkit distill-encoder --arch lp3d-lt --ckpt runs/heads/checkpoint.safetensors --out runs/enc
    --preset tiny --minutes 10
    """
    from ..encoders.config import DISTILL_PRESETS
    from ..encoders.registry import ARCHS, EXTERNAL_ARCHS
    from ..train.checkpoint import expect_kind
    from ..utils.config import apply_overrides
    from ..utils.device import check_device
    from ..utils.errors import check_number
    from ..utils.items import check_out_folder

    device = check_device(device)
    check_number("--steps", steps, ge=1, integer=True, allow_none=True)
    check_number("--minutes", minutes, gt=0, allow_none=True)
    if arch in EXTERNAL_ARCHS:
        expect_kind(ckpt, "generator", "--ckpt")
        check_out_folder(out)
        ko_sets = [f"backbone_weights={json.dumps(backbone_weights)}"] if backbone_weights else []
        return _ko(arch, ckpt, out, list(set_) + ko_sets + (["random_init=true"] if random_init else []), steps,
                   json_out, resume)
    if arch not in ARCHS:
        raise ValueError(f"unknown --arch {arch!r}; choose one of: {ARCH_HELP}")
    if preset not in DISTILL_PRESETS:
        raise ValueError(f"unknown --preset {preset!r}; choose one of {', '.join(DISTILL_PRESETS)}")
    expect_kind(ckpt, "generator", "--ckpt", accept=("encoder",))  # an encoder checkpoint carries its teacher G
    check_out_folder(out)
    cfg = DISTILL_PRESETS[preset](arch)
    overrides = list(set_) + [f"generator={json.dumps(str(ckpt))}", f"out={json.dumps(str(out))}"]
    for key, value in (("size", size), ("backbone_weights", backbone_weights), ("lpips_backbone", lpips_backbone),
                       ("identity_weights", identity_weights), ("data", data and str(data))):  # fmt: skip
        if value is not None:
            overrides.append(f"{key}={json.dumps(value)}")
    if random_init:
        overrides.append("random_init=true")
    if init is not None:
        overrides.append(f"init_from={json.dumps(str(init))}")
    if steps is not None:
        overrides.append(f"run.steps={steps}")
    if minutes is not None:
        overrides.append(f"run.max_minutes={minutes}")
    cfg = apply_overrides(cfg, overrides)
    cfg.validate()
    if print_config:
        emit_json(cfg.to_dict())
        return
    from ..encoders.distill import distill

    main = int(os.environ.get("RANK", "0")) == 0

    def on_tick(rec: dict) -> None:
        if not json_out and main:
            vals = "  ".join(f"{k.split('/')[-1]} {v:.3f}" for k, v in rec.items() if k.startswith("val/"))
            err_console.print(f"step {rec['step']:>7}  stage {rec['stage']}  loss {rec.get('Loss/E', float('nan')):.3f}"
                              f"  {rec['sec_per_step']:.2f} s/step  {vals}", highlight=False)  # fmt: skip

    if main:
        with progress_bar(f"distill {arch}", total=cfg.run.steps, json_mode=json_out) as update:
            summary = distill(cfg, resume=resume, on_step=update, on_tick=on_tick, device=device)
    else:
        summary = distill(cfg, resume=resume, device=device)
        return
    if json_out:
        emit_json(summary)
        return
    c = console()
    c.print(f"[green]done[/]: {summary['steps']} steps ({summary['stopped']}); checkpoint {summary['checkpoint']}")
    for key in ("backbone", "lpips", "identity", "discriminator", "confidence", "stats"):
        if key in summary:
            c.print(f"{key}: {summary[key]}", highlight=False, soft_wrap=True)
