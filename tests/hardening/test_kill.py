"""kill -9 mid-run (`train`: inside a checkpoint write), rerun, compare: `prepare synthetic` and `train` end
bit-identical to uninterrupted runs, say what they resume from, and leave no temp files or repeated log lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gan3dkit.data import DatasetReader
from gan3dkit.data.writer import partial_progress
from gan3dkit.prepare.synthetic import build_synthetic
from gan3dkit.train.checkpoint import load_tensors, read_header

from .conftest import set_args
from .test_kill_writes import run_stalled

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "250"}


def gan3dkit(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gan3dkit", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=ENV)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 900.0) -> None:
    """SIGKILL `proc` as soon as `ready()` holds (fail if it ends first or never gets there)."""
    start = time.time()
    while not ready():
        assert proc.poll() is None, f"finished before it could be killed: {proc.stdout.read()}"
        assert time.time() - start < timeout, "never reached the kill point"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out
    return out


def _safe_progress(out: Path) -> int:
    try:
        return partial_progress(out) or 0
    except Exception:  # caught mid-commit
        return 0


def test_prepare_synthetic_survives_kill_9(tmp_path):
    out = tmp_path / "k.lmdb"
    # 300 samples: rendering takes ~1.7 s here (12 took 90 ms, short enough for CI's faster CPU to finish first)
    num = 300
    args = ["prepare", "synthetic", "--family", "heads", "--num", str(num), "--resolution", "16", "--ssaa", "1",
            "--batch", "2", "--out", str(out)]
    proc = gan3dkit(*args)
    kill_when(proc, lambda: _safe_progress(out) >= 4)
    assert not out.exists() and (tmp_path / "k.lmdb.partial").exists()
    done = partial_progress(out)
    assert 4 <= done < num
    rerun = finish(gan3dkit(*args))
    assert f"resuming from {done} samples" in rerun
    clean = build_synthetic(tmp_path / "c.lmdb", family="heads", num=num, resolution=16, ssaa=1, batch_size=5,
                            resume=False)
    a, b = DatasetReader(out), DatasetReader(clean)
    assert len(a) == len(b) == num
    for i in range(num):
        for field in a.meta["fields"]:
            assert a.read_raw(i, field) == b.read_raw(i, field), (i, field)
    assert not list(tmp_path.rglob("*.tmp*")) and not (tmp_path / "k.lmdb.partial").exists()


@pytest.fixture(scope="module")
def train_data(tmp_path_factory):
    return build_synthetic(tmp_path_factory.mktemp("kill") / "heads.lmdb", family="heads", num=8, resolution=64,
                           ssaa=1, resume=False)


def _step(ckpt: Path) -> int:
    try:
        return int(read_header(ckpt)["progress"]["step"])
    except Exception:  # not there yet, or being replaced
        return -1


def test_train_survives_kill_9(train_data, tmp_path):
    steps = 2
    base = ["train", "--data", str(train_data), "--max-steps", str(steps), *set_args()]
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    stale = Path(run_stalled([*base, "--out", str(killed)], ".checkpoint.safetensors.*", killed, nth=2,
                                 env=ENV))
    at = _step(killed / "checkpoint.safetensors")  # killed inside the second checkpoint write
    assert 1 <= at < steps
    sample = killed / "samples" / ".fakes000004.png.999999999.k2j4x9q1.tmp"  # ... and inside a sample write
    sample.parent.mkdir(exist_ok=True)
    sample.write_bytes(b"\0" * 1000)
    rerun = finish(gan3dkit(*base, "--out", str(killed)))
    assert f"resuming from step {at}" in rerun
    finish(gan3dkit(*base, "--out", str(straight)))
    a, b = load_tensors(killed / "checkpoint.safetensors"), load_tensors(straight / "checkpoint.safetensors")
    assert set(a) == set(b)
    for key in a:
        if not key.startswith("rng"):
            assert torch.equal(a[key], b[key]), key
    assert read_header(killed / "checkpoint.safetensors")["progress"] == read_header(
        straight / "checkpoint.safetensors")["progress"]
    assert not stale.exists() and not sample.exists() and not list(killed.rglob(".*tmp*"))
    for run in (killed, straight):
        recs = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
        seen = [r["step"] for r in recs]
        assert seen == sorted(set(seen)) and seen[-1] == steps  # never a step twice (a kill may cost one line)
        assert all(0 < r["sec_per_kimg"] < 1e5 for r in recs)  # the last tick's timing too
    assert np.isfinite([r["sec_per_kimg"] for r in recs]).all()
