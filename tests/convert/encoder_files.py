"""Shared by the conversion tests: non-trivial BN statistics, slopes and weights; the CLI calls they all make."""

from __future__ import annotations

import json
from typing import Any

import torch


def randomize(net: torch.nn.Module, seed: int = 1) -> None:
    """Random BN running statistics and affine, PReLU slopes, and values for any all-zero parameter (gan3dkit starts
    some heads at zero; a converted file must show every tensor)."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
        elif isinstance(m, torch.nn.PReLU):
            m.weight.data.uniform_(0.05, 0.4, generator=g)
    for p in net.parameters():
        if p.abs().sum() == 0:
            p.data.normal_(0, 0.05, generator=g)


def convert_cli(*args: Any) -> dict:
    """`gan3dkit convert ARGS --json` through the CLI; its JSON summary (the exit code checked)."""
    from typer.testing import CliRunner

    from gan3dkit.cli.main import app

    res = CliRunner().invoke(app, ["convert", *map(str, args), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout[res.stdout.index("{") :])


def fine_tune(arch: str, converted: Any, run: Any) -> Any:
    """One tiny `distill-encoder` step from a converted file (`--init` and `--ckpt` both the file, --random-init)."""
    from typer.testing import CliRunner

    from gan3dkit.cli.main import app

    return CliRunner().invoke(app, ["distill-encoder", "--arch", arch, "--ckpt", str(converted), "--init",
                                    str(converted), "--out", str(run), "--preset", "tiny", "--steps", "1",
                                    "--random-init", "--set", "optim.batch=2", "--set", "run.val_samples=2", "--set",
                                    "run.tick_steps=1", "--set", "run.cpu_threads=1", "--json"])  # fmt: skip
