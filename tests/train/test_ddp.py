"""Two-process data-parallel training on CPU through torchrun (gloo): replicas stay identical."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_torchrun_two_processes(heads_lmdb, tmp_path):
    if shutil.which("torchrun") is None and not os.path.exists(
        os.path.join(os.path.dirname(sys.executable), "torchrun")
    ):
        pytest.skip("torchrun not on PATH")
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "gan3dkit",
        "train",
        "--data",
        str(heads_lmdb),
        "--out",
        str(out),
        "--preset",
        "tiny",
        "--max-steps",
        "2",
        "--json",
        "--set",
        "run.workers=0",
        "--set",
        "run.grid_size=4",
        "--set",
        "generator.rendering.depth_resolution=6",
        "--set",
        "generator.rendering.depth_resolution_importance=6",
        "--set",
        "loss.density_reg_points=64",
        "--set",
        "discriminator.mbstd_group_size=2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert summary["world"] == 2 and summary["nimg"] == 8
    records = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert records[-1]["replicas_in_sync"] is True
    assert (out / "checkpoint.safetensors").exists()
