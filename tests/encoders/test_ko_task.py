"""Ko et al.'s P / E on the training engine: a NaN keeps the last good checkpoint, a time limit resumes exactly."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import pytest
import torch
from encoder_helpers import ko_micro_ckpt as _micro_ckpt
from encoder_helpers import ko_small as _small

import gan3dkit.encoders.ko_task as ko_task
import gan3dkit.train.engine as engine
from gan3dkit.encoders.e4e_train import E4EConfig
from gan3dkit.encoders.ko_task import distill_ko
from gan3dkit.train.checkpoint import load_tensors, read_header
from gan3dkit.train.task import TrainingDiverged

torch.set_num_threads(1)


def _same_tensors(a, b) -> None:
    ta, tb = load_tensors(a), load_tensors(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k


def test_nan_stops_ko_pose_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    ckpt, _ = _micro_ckpt(tmp_path, False)
    cfg = _small(steps=4, log_every=1, snapshot_every=1)
    calls = itertools.count()
    real = ko_task.pose_losses

    def poisoned(*args):
        loss, rec = real(*args)
        return (loss * float("nan"), rec) if next(calls) == 2 else (loss, rec)

    monkeypatch.setattr(ko_task, "pose_losses", poisoned)
    with pytest.raises(TrainingDiverged, match=r"step 2 .*ko-pose.*last good checkpoint is kept"):
        distill_ko("ko-pose", ckpt, tmp_path / "n", cfg)
    state = tmp_path / "n" / "checkpoint.safetensors"
    assert read_header(state)["progress"]["step"] == 2  # the snapshot after step 1, untouched by the NaN step
    assert all(torch.isfinite(t).all() for t in load_tensors(state).values() if t.is_floating_point())
    assert not (tmp_path / "n" / "ko-pose.safetensors").exists()  # no encoder exported from a diverged run
    assert not [p for p in (tmp_path / "n").rglob("*") if "tmp" in p.name]
    monkeypatch.setattr(ko_task, "pose_losses", real)  # the cause is gone: resume from the kept checkpoint
    resumed = distill_ko("ko-pose", ckpt, tmp_path / "n", cfg)
    straight = distill_ko("ko-pose", ckpt, tmp_path / "s", cfg)
    assert resumed["steps"] == straight["steps"] == 4 and resumed["last"] == straight["last"]
    _same_tensors(tmp_path / "n" / "ko-pose.safetensors", tmp_path / "s" / "ko-pose.safetensors")


def test_time_limit_stops_ko_latent_and_resumes_bit_exactly(tmp_path, monkeypatch):
    ckpt, _ = _micro_ckpt(tmp_path, True)
    e4e = E4EConfig(progressive_start=1, progressive_step_every=1, d_reg_every=2, w_pool_size=3)
    cfg = _small(steps=5, batch=2, e4e=e4e)
    clock = itertools.count()  # every engine reading of the clock is one second later: the limit hits after 2 steps
    with monkeypatch.context() as m:
        m.setattr(engine, "time", SimpleNamespace(time=lambda: float(next(clock))))
        limited = distill_ko("ko-latent", ckpt, tmp_path / "t", _small(steps=5, batch=2, e4e=e4e,
                                                                        max_minutes=2.5 / 60))
    assert limited["stopped"] == "max_minutes" and limited["steps"] == 2
    assert limited["checkpoint"].endswith("checkpoint.safetensors")  # the training state, not an encoder
    assert not (tmp_path / "t" / "ko-latent.safetensors").exists()
    assert read_header(tmp_path / "t" / "checkpoint.safetensors")["progress"]["step"] == 2
    done = distill_ko("ko-latent", ckpt, tmp_path / "t", cfg)  # max_minutes may change on resume
    straight = distill_ko("ko-latent", ckpt, tmp_path / "s", cfg)
    assert done["stopped"] == straight["stopped"] == "steps" and done["steps"] == 5
    assert done["first"] == straight["first"] and done["last"] == straight["last"]
    assert math.isfinite(done["last"]["loss"]) and done["last"]["stage"] == 4
    for name in ("ko-latent.safetensors", "checkpoint.safetensors"):
        _same_tensors(tmp_path / "t" / name, tmp_path / "s" / name)


@pytest.mark.slow
def test_ko_latent_under_torchrun_keeps_replicas_and_latent_d_in_sync(tmp_path):
    import json
    import os
    import subprocess
    import sys

    ckpt, _ = _micro_ckpt(tmp_path, True)
    sets = ["batch=2", "pairs=2", "resolution=32", "irse_widths=[8, 12, 16, 24]", "irse_units=[1, 1, 2, 1]",
            "e4e_styles=6", "e4e.progressive_start=1", "e4e.w_pool_size=3", "e4e.d_reg_every=2", "log_every=1",
            "snapshot_every=1"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "gan3dkit",
           "distill-encoder", "--arch", "ko-latent", "--ckpt", str(ckpt), "--out", str(tmp_path / "o"), "--steps",
           "2", "--random-init", "--device", "cpu", "--json", *(a for s in sets for a in ("--set", s))]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GAN3DKIT_NO_EXTENSION": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["world"] == 2 and summary["steps"] == 2 and summary["last"]["stage"] == 1
    records = [json.loads(line) for line in (tmp_path / "o" / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2] and all(r["replicas_in_sync"] for r in records)  # E and latent D
    state = load_tensors(tmp_path / "o" / "checkpoint.safetensors")
    assert state["e4e.fake_pool"].shape[0] == 3  # both processes' codes went through the one pool (2 x 2 > 3)
    assert (tmp_path / "o" / "ko-latent.safetensors").exists()


def test_cli_passes_minutes_and_prints_ko_config(tmp_path):
    import json

    from typer.testing import CliRunner

    from gan3dkit.cli.main import app

    ckpt, _ = _micro_ckpt(tmp_path, False)
    res = CliRunner().invoke(app, ["distill-encoder", "--arch", "ko-pose", "--ckpt", str(ckpt), "--out",
                                   str(tmp_path / "o"), "--minutes", "2.5", "--steps", "7", "--set", "batch=2",
                                   "--print-config"])
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.output[res.output.index("{"):])
    assert (cfg["max_minutes"], cfg["steps"], cfg["batch"]) == (2.5, 7, 2)
    assert not (tmp_path / "o").exists()  # printing the config trains nothing
