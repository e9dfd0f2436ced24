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
