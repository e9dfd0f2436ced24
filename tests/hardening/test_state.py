"""What a run leaves on disk: finite checkpoints only, no stale temp files, logs without repeated steps; and the
one error path (exit codes, one line, --debug) for any command built on `handle_errors`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch
import typer
from typer.testing import CliRunner

from gan3dkit.cli.common import handle_errors, one_line
from gan3dkit.train.checkpoint import (
    CheckpointError,
    NonFiniteStateError,
    load_checkpoint,
    read_header,
    save_checkpoint,
)
from gan3dkit.train.logging import StatsLog
from gan3dkit.train.loop import TrainingDiverged
from gan3dkit.utils.errors import DataError, UsageError
from gan3dkit.utils.files import atomic_write_bytes, remove_stale_temps


def _net_and_opt():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    return net, opt


def test_a_checkpoint_is_written_only_when_weights_and_optimiser_state_are_finite(tmp_path):
    net, opt = _net_and_opt()
    path = save_checkpoint(tmp_path / "c.safetensors", {"G": net}, {"G": opt}, {"x": 1}, {"step": 1})
    good = path.read_bytes()
    opt.state[net.weight]["exp_avg_sq"].fill_(float("inf"))  # Adam moments overflowed, weights still finite
    with pytest.raises(NonFiniteStateError, match="opt.G.state"):
        save_checkpoint(path, {"G": net}, {"G": opt}, {"x": 1}, {"step": 2})
    with torch.no_grad():
        net.bias.fill_(float("nan"))
    with pytest.raises(NonFiniteStateError, match="G.bias"):
        save_checkpoint(path, {"G": net}, {}, {"x": 1}, {"step": 2})
    assert path.read_bytes() == good and read_header(path)["progress"] == {"step": 1}  # the last good one stays
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_checkpoint_with_nonfinite_optimiser_state_cannot_be_resumed(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    net, opt = _net_and_opt()
    path = save_checkpoint(tmp_path / "c.safetensors", {"G": net}, {"G": opt}, {"x": 1}, {"step": 1})
    tensors = load_file(str(path))
    key = next(k for k in tensors if "exp_avg_sq" in k)
    tensors[key] = torch.full_like(tensors[key], float("inf"))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="NaN/inf"):
        load_checkpoint(path, {"G": net}, {"G": opt})


def test_stale_temp_files_are_removed_live_ones_kept(tmp_path):
    target = tmp_path / "checkpoint.safetensors"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [
        tmp_path / f".checkpoint.safetensors.tmp{dead.pid}",
        tmp_path / f".checkpoint.safetensors.{dead.pid}.ab.tmp",
    ]
    live = tmp_path / f".checkpoint.safetensors.tmp{os.getpid()}"
    old_anon, new_anon = tmp_path / ".checkpoint.safetensors.x1y2.tmp", tmp_path / ".checkpoint.safetensors.q9.tmp"
    for p in (*stale, live, old_anon, new_anon):
        p.write_bytes(b"x")
    os.utime(old_anon, (time.time() - 7200, time.time() - 7200))
    other = tmp_path / ".other.tmp1"
    other.write_bytes(b"x")
    assert sorted(remove_stale_temps(target)) == sorted([*stale, old_anon])
    assert live.exists() and new_anon.exists() and other.exists()
    atomic_write_bytes(tmp_path / "a.bin", b"data")
    assert (tmp_path / "a.bin").read_bytes() == b"data" and not list(tmp_path.glob(".a.bin*"))


def test_stats_log_keeps_only_steps_up_to_the_checkpoint(tmp_path):
    lines = [json.dumps({"tick": i, "step": i * 2}) for i in range(1, 6)] + ['{"tick": 6, "st']  # torn by a kill
    (tmp_path / "stats.jsonl").write_text("\n".join(lines))
    log = StatsLog(tmp_path, keep_until_step=6)
    log.write({"tick": 4, "step": 8, "kimg": 0.032})
    steps = [json.loads(x)["step"] for x in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8]
    StatsLog(tmp_path, keep_until_step=0)  # a restart starts a new log
    assert (tmp_path / "stats.jsonl").read_text() == ""


def _app(exc: BaseException) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root(debug: bool = typer.Option(False, "--debug")) -> None:
        pass

    @app.command()
    @handle_errors
    def run() -> None:
        raise exc

    @app.command()
    def other() -> None:
        pass

    return app


@pytest.mark.parametrize("exc,code", [
    (UsageError("--kimg must be > 0"), 2), (DataError("x.lmdb: sample 3: bad"), 1), (FileNotFoundError("f"), 2),
    (TrainingDiverged("training diverged at step 7"), 1), (ValueError("legacy usage"), 2), (KeyError("k"), 2),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 1), (PermissionError(13, "denied", "f"), 1),
    (MemoryError(), 1), (TypeError("a bug"), 1), (KeyboardInterrupt(), 130),
])
def test_one_error_path_maps_exit_codes_and_prints_one_line(exc, code):
    runner = CliRunner()
    res = runner.invoke(_app(exc), ["run"])
    assert res.exit_code == code and "Traceback" not in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    if isinstance(exc, TypeError):
        assert "unexpected TypeError" in res.output and "--debug" in res.output
    debug = runner.invoke(_app(exc), ["--debug", "run"])
    assert debug.exception is exc or isinstance(exc, KeyboardInterrupt)


def test_dataloader_worker_errors_become_their_last_line():
    wrapped = DataError("Caught DatasetFormatError in DataLoader worker process 0.\nOriginal Traceback (most recent "
                        "call last):\n  File \"x.py\", line 3\ngan3dkit.data.format.DatasetFormatError: d.lmdb: sample"
                        " 5, field image: cannot decode image")
    assert one_line(wrapped) == "d.lmdb: sample 5, field image: cannot decode image"
