"""`gan3dkit train`: resolve a typed config (preset + overrides), save it, and run the training loop."""

from __future__ import annotations

import contextlib
import json
import os
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
    from ..train.config import TRAIN_STAGES, TrainConfig, train_preset
    from ..utils.config import apply_overrides
    from ..utils.device import check_device
    from ..utils.errors import DataError, UsageError

    device = check_device(device)
    if stage is not None and (stage not in TRAIN_STAGES or init is None):
        raise UsageError(f"--stage {stage} needs --init CKPT" if stage in TRAIN_STAGES
                         else f"--stage must be one of {', '.join(TRAIN_STAGES)}, got {stage!r}")
    try:
        if config:
            cfg = TrainConfig.from_dict(json.loads(config.read_text()))
        elif init:
            from ..train.checkpoint import read_header

            cfg = TrainConfig.from_dict(read_header(init)["config"])
        else:
            cfg = train_preset(preset, method or DEFAULT_METHOD)
    except json.JSONDecodeError as exc:
        raise DataError(f"--config {config} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if init is not None:
        if stage:
            cfg = TRAIN_STAGES[stage](cfg, str(init))
        else:
            cfg = apply_overrides(cfg, [f"run.init={json.dumps(str(init))}"])
    if method is not None and method != cfg.method_name:  # the --config / --init run's method, switched
        cfg = cfg.with_method(method)
    overrides = list(set_) + [f"data={json.dumps(str(data))}", f"out={json.dumps(str(out))}"]
    if kimg is not None:
        overrides.append(f"run.kimg={kimg}")
    if max_steps is not None:
        overrides.append(f"run.max_steps={max_steps}")
    if minutes is not None:
        overrides.append(f"run.max_minutes={minutes}")
    cfg = apply_overrides(cfg, overrides)
    cfg.validate()
    if print_config:
        emit_json(cfg.to_dict())
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..train.loop import train as run_training

    main = int(os.environ.get("RANK", "0")) == 0
    _resume_notice(out, resume, main)
    total = (
        int(cfg.run.kimg * 1000)
        if cfg.run.max_steps is None
        else min(int(cfg.run.kimg * 1000), cfg.run.max_steps * cfg.optim.batch)
    )
    columns = [
        TextColumn("[bold]training[/]"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} img"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    with contextlib.ExitStack() as stack, Progress(*columns, console=err_console, disable=not main) as bar:
        if view and main:
            from ..view.follow import ViewerProcess

            viewer = stack.enter_context(ViewerProcess(out, port=view_port))
            err_console.print(f"viewer: {viewer.url} (shows each new checkpoint; log {viewer.log})", highlight=False)
        task = bar.add_task("train", total=total)

        def on_tick(rec: dict) -> None:
            losses = "  ".join(f"{k.split('/')[-1]} {v:.3f}" for k, v in rec.items() if k.startswith("Loss/"))
            bar.console.print(
                f"tick {rec['tick']:>4}  kimg {rec['kimg']:8.3f}  {rec['sec_per_kimg']:7.1f} s/kimg  "
                f"nrr {rec['nrr']}  {losses}",
                highlight=False,
            )

        summary = run_training(
            cfg,
            resume=resume,
            on_tick=on_tick,
            on_step=lambda n, t: bar.update(task, completed=min(n, total)),
            device=device,
        )
    if not main:
        return
    if json_out:
        emit_json(summary)
    else:
        console().print(
            f"[green]done[/]: {summary['nimg']:,} images in {summary['steps']} steps; "
            f"checkpoint {summary['checkpoint']}; samples in {out / 'samples'}"
        )


def _resume_notice(out: Path, resume: bool, main: bool) -> None:
    """Say where a resumed run continues from (the checkpoint's step and kimg)."""
    from ..train.checkpoint import read_header

    ckpt = out / "checkpoint.safetensors"
    if resume and main and ckpt.exists():
        progress = read_header(ckpt)["progress"]
        err_console.print(f"resuming from step {progress['step']} (kimg {progress['nimg'] / 1000:.3f}, tick "
                          f"{progress['tick']}) in {ckpt} (--restart starts over)", highlight=False)


# one line per method in `gan3dkit train --help`, from the registry
train.__doc__ = (train.__doc__ or "").replace(
    "{methods}", "\n\n    ".join(f"- {name}: {spec.description} ({spec.source})." for name, spec in METHODS.items())
).replace("{pose_free}", next((n for n, s in METHODS.items() if not s.needs_labels), DEFAULT_METHOD))
