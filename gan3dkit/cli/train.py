"""`gan3dkit train`: parse the options, resolve the typed config (`train.resolve`) and run the training engine."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import typer

from ..methods.registry import DEFAULT_METHOD, METHODS
from .common import console, emit_json, err_console, handle_errors, number_option

_METHODS_HELP = ", ".join(METHODS) + " (see Methods above)."
_PRESETS_HELP = (
    "tiny, tiny_objects (CPU, synthetic heads / objects), ffhq512, ffhq256, afhq512, shapenet128 (EG3D), "
    "lsun_bedroom256, lsun_church256, afhq256, cub256 (seed 000 Table C datasets)."
)


@handle_errors
def train(
    data: Path = typer.Option(..., "--data", help="Training dataset (gan3dkit LMDB)."),
    out: Path = typer.Option(..., "--out", help="Run directory (config.json, checkpoint, samples, stats.jsonl)."),
    method: str | None = typer.Option(None, help=f"Training method (default: {DEFAULT_METHOD}, or the --config / "
                                      "--init run's). " + _METHODS_HELP),
    preset: str = typer.Option("tiny", help="Config preset: " + _PRESETS_HELP),
    config: Path | None = typer.Option(None, help="Start from a saved config.json instead of a preset."),
    init: Path | None = typer.Option(None, "--init", help="Start a new run from this checkpoint's G, D and G_ema "
                                     "(a fine-tune; its config is the starting point unless --config is given)."),
    stage: str | None = typer.Option(None, "--stage", help="A stage derived from the --init checkpoint: lp3d-sr "
                                     "(LP3D supplement A2: the whole EG3D fine-tuned with its SR latent a constant 1, "
                                     "6.8M images)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set optim.batch=8 (repeatable)."),
    kimg: float | None = typer.Option(None, callback=number_option(gt=0), help="Shortcut for --set run.kimg=..."),
    max_steps: int | None = typer.Option(
        None, min=1, help="Stop after this many steps (shortcut for run.max_steps)."
    ),
    minutes: float | None = typer.Option(
        None, callback=number_option(gt=0), help="Stop after this many minutes (run.max_minutes); resume later."
    ),
    resume: bool = typer.Option(True, "--resume/--restart", help="Continue <out>/checkpoint.safetensors exactly."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N (refused when this machine lacks it)."),
    print_config: bool = typer.Option(False, help="Print the resolved config and exit."),
    view: bool = typer.Option(False, "--view", help="Also serve `gan3dkit view <out>` at --view-port (follows the "
                              "newest checkpoint; a low-priority child process, stopped with the training)."),
    view_port: int = typer.Option(8080, min=1, max=65535, help="Port of --view (the next free one if taken)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary at the end."),
) -> None:
    """Train a 3D-aware GAN. Multi-GPU: `torchrun --nproc_per_node=N -m gan3dkit train ...` (gloo on CPU).

    Methods (--method; each has its own config sections, set with `--set SECTION.KEY=VALUE` and shown by
    --print-config under "method"):

    {methods}

    The pose-free methods never read the camera labels: they render fakes at a prior (section pose: the dataset's
    recorded prior by default, or `--set pose.prior=NAME`, `--set pose.yaw_std=...`) or learn the camera
    distribution from w.

    Example: gan3dkit train --data heads.lmdb --out runs/heads --preset tiny --kimg 20

    Example: gan3dkit train --method {pose_free} --data bedrooms.lmdb --out runs/bed --preset lsun_bedroom256

    Example: gan3dkit train --stage lp3d-sr --init runs/ffhq/checkpoint.safetensors --data ffhq.lmdb --out runs/sr1
    """
    from ..train.loop import train as run_training
    from ..train.resolve import resolve_train_config
    from ..utils.device import check_device

    device = check_device(device)
    cfg = resolve_train_config(data, out, method, preset, config, init, stage, set_, kimg, max_steps, minutes)
    if print_config:
        emit_json(cfg.to_dict())
        return
    main = int(os.environ.get("RANK", "0")) == 0
    with _viewer(out, view_port, view and main):
        summary = run_training(cfg, resume=resume, device=device, progress=main)
    if not main:
        return
    if json_out:
        emit_json(summary)
    else:
        console().print(
            f"[green]done[/]: {summary['nimg']:,} images in {summary['steps']} steps ({summary['stopped']}); "
            f"checkpoint {summary['checkpoint']}; samples in {out / 'samples'}"
        )


@contextlib.contextmanager
def _viewer(out: Path, port: int, enabled: bool) -> Iterator[None]:
    """`--view`: serve `gan3dkit view <out>` beside the training (a low-priority child, stopped with it)."""
    if not enabled:
        yield
        return
    from ..view.follow import ViewerProcess

    with ViewerProcess(out, port=port) as viewer:
        err_console.print(f"viewer: {viewer.url} (shows each new checkpoint; log {viewer.log})", highlight=False)
        yield


# one line per method in `gan3dkit train --help`, from the registry
train.__doc__ = (train.__doc__ or "").replace(
    "{methods}", "\n\n    ".join(f"- {name}: {spec.description} ({spec.source})." for name, spec in METHODS.items())
).replace("{pose_free}", next((n for n, s in METHODS.items() if not s.needs_labels), DEFAULT_METHOD))
