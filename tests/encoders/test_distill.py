"""Distillation: a few steps lower the held-out loss, resume is exact, every TriPlaneNet phase runs, torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from encoder_helpers import micro_distill

from gan3dkit.encoders.distill import distill
from gan3dkit.train.checkpoint import load_tensors


def _records(out):
    return [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]


def test_few_steps_lower_the_loss(micro_gen, tmp_path):
    cfg = micro_distill("lp3d-lt", micro_gen, tmp_path / "run", run__steps=8, lp3d__stage1_steps=100,
                        lp3d__stage1_ref_every=1)
    summary = distill(cfg, resume=False, device="cpu")
    recs = _records(tmp_path / "run")
    first, last = recs[0], recs[-1]
    assert summary["steps"] == 8 and last["step"] == 8
    # held-out latents and cameras, never trained on (the per-batch training loss is too noisy at batch 2)
    assert last["val/triplane_l1"] < 0.95 * first["val/triplane_l1"]
    assert last["val/l1_input"] < first["val/l1_input"]
    assert "RANDOM INIT" in summary["backbone"] and "lpips" in summary
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["arch"] == "lp3d-lt" and saved["model"]["lt"] is True and saved["model"]["triplane_channels"] == 8


def _resume_pair(micro_gen, tmp_path, **kw):
    a = micro_distill("lp3d-lt", micro_gen, tmp_path / "a", run__steps=4, **kw)
    distill(a, resume=False, device="cpu")
    b = micro_distill("lp3d-lt", micro_gen, tmp_path / "b", run__steps=2, **kw)
    distill(b, resume=False, device="cpu")
    b.run.steps = 4
    assert distill(b, resume=True, device="cpu")["steps"] == 4
    ta = load_tensors(tmp_path / "a" / "checkpoint.safetensors")
    tb = load_tensors(tmp_path / "b" / "checkpoint.safetensors")
    return ta, tb, _records(tmp_path / "a"), _records(tmp_path / "b")


def test_resume_is_exact(micro_gen, tmp_path):
    """4 steps in one call == 2 + 2 after resume, bit for bit: encoder, renderer, optimiser states and every step's
    loss (the same batches and cameras are drawn; the same train/eval modes are used at every step)."""
    ta, tb, ra, rb = _resume_pair(micro_gen, tmp_path, lp3d__stage1_steps=100)
    assert set(ta) == set(tb)
    for key in ta:
        if key.startswith(("E.", "R.", "opt.")):
            assert torch.equal(ta[key], tb[key]), key
    assert [r["Loss/E"] for r in ra] == [r["Loss/E"] for r in rb]


def test_resume_through_the_adversarial_stage(micro_gen, tmp_path):
    """Across the stage switch with D fine-tuning and R1: 2 + 2 steps == 4, bit for bit (E, R, D, optimisers,
    losses). Before the student was put in train mode at start-up, R's SR ran fused (eval mode) in a resumed run's
    first step and the runs drifted apart through Adam."""
    ta, tb, ra, rb = _resume_pair(micro_gen, tmp_path, lp3d__stage1_steps=2, optim__r1_interval=2)
    assert "Loss/D" in ra[2] and "Loss/D" not in ra[1]
    assert set(ta) == set(tb)
    for key in ta:
        if key.startswith(("E.", "R.", "D.", "opt.")):
            assert torch.equal(ta[key], tb[key]), key
    assert [(r["Loss/E"], r.get("Loss/D")) for r in ra] == [(r["Loss/E"], r.get("Loss/D")) for r in rb]


def test_triplanenet_v2_runs_every_phase(micro_gen, tmp_path):
    cfg = micro_distill("triplanenet-v2", micro_gen, tmp_path / "tpn", run__steps=3, triplanenet__offset_start=1,
                        triplanenet__adv_start=2, optim__optimizer="ranger", optim__r1_interval=2)
    cfg.model = {"input_resolution": 32}
    distill(cfg, resume=False, device="cpu")
    recs = _records(tmp_path / "tpn")
    assert [r["stage"] for r in recs] == ["psp", "psp+offsets", "psp+offsets+adv"]
    assert "Loss/psp_symm" in recs[0] and "Loss/offsets_symm" in recs[1] and "Loss/D" in recs[2]
    t = load_tensors(tmp_path / "tpn" / "checkpoint.safetensors")
    assert t["E.offsets.head.4.weight"].abs().sum() > 0  # the offset branch trained (it starts at zero)
    assert any(k.startswith("opt.psp.") and k.endswith(".slow_buffer") for k in t)  # Ranger's Lookahead weights
    assert any(k.startswith("C.") for k in t)


def test_bad_config_is_refused(micro_gen, tmp_path):
    cfg = micro_distill("lp3d", micro_gen, tmp_path / "x")
    cfg.run.conditioning = "sideways"
    with pytest.raises(ValueError, match="conditioning"):
        distill(cfg, resume=False, device="cpu")


@pytest.mark.slow
def test_torchrun_two_processes_gloo(micro_gen, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "gan3dkit",
           "distill-encoder", "--arch", "lp3d-lt", "--ckpt", str(micro_gen), "--out", str(out), "--preset", "tiny",
           "--steps", "2", "--json", "--random-init", "--set", "model={\"input_resolution\": 32}",
           "--set", "run.tick_steps=1", "--set", "run.val_samples=2", "--set", "run.cpu_threads=1",
           "--set", "lp3d.stage1_steps=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GAN3DKIT_NO_EXTENSION": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["world"] == 2 and summary["steps"] == 2
    assert (out / "checkpoint.safetensors").exists()
