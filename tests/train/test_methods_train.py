"""Pose-free methods end to end: train through the CLI without labels, resume exactly, generate, evaluate."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from gan3dkit.cli.main import app
from gan3dkit.data.reader import DatasetReader, LMDBDataset
from gan3dkit.train.checkpoint import load_tensors, read_header
from gan3dkit.train.loop import train

POSE_FREE = ["eg3d-posereg", "hyperpose", "pof3d", "hyperpose+pof3d", "eg3d-posereg+pof3d"]
LEARNED = ("pof3d", "hyperpose+pof3d", "eg3d-posereg+pof3d")
#: the combinations' learned-pose-only variant (no pose-aware D), a named option beside PoF3D's full mechanism
LEARNED_ONLY = ["--set", "pof3d.mechanism=learned_only", "--set", "discriminator.c_dim=0"]
CHEAP = [
    "--set", "run.workers=0", "--set", "run.cpu_threads=1", "--set", "run.tick_kimg=0.004",
    "--set", "run.grid_size=4", "--set", "optim.g_reg_interval=2", "--set", "optim.d_reg_interval=3",
    "--set", "generator.rendering.depth_resolution=6", "--set", "generator.rendering.depth_resolution_importance=6",
    "--set", "loss.density_reg_points=64",
]


def test_camera_source_is_recorded(heads_lmdb, prior_heads):
    assert LMDBDataset(heads_lmdb).camera_source == "measured"
    assert LMDBDataset(prior_heads).camera_source == "prior"
    assert DatasetReader(prior_heads).meta["format_version"] == "1.1"


def test_eg3d_refuses_a_dataset_whose_cameras_came_from_a_prior(prior_heads, tmp_path):
    res = CliRunner().invoke(app, ["train", "--data", str(prior_heads), "--out", str(tmp_path / "r"),
                                   "--max-steps", "1", *CHEAP])
    assert res.exit_code != 0
    assert "sampled from a pose prior" in res.output and "hyperpose" in res.output and "eg3d-posereg" in res.output
    assert not (tmp_path / "r" / "checkpoint.safetensors").exists()


def test_train_help_lists_every_method():
    res = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    for name in ("eg3d", "eg3d-posereg", "hyperpose"):
        assert name in res.output


@pytest.mark.parametrize("method", [*POSE_FREE, "hyperpose+pof3d:learned_only", "eg3d-posereg+pof3d:learned_only"])
def test_pose_free_cli_train_resume_generate_evaluate(method, prior_heads, tmp_path):
    run = CliRunner()
    out = tmp_path / "run"
    method, _, variant = method.partition(":")
    cheap = CHEAP + (LEARNED_ONLY if variant else [])
    args = ["train", "--method", method, "--data", str(prior_heads), "--out", str(out), *cheap]
    res = run.invoke(app, [*args, "--max-steps", "2"])
    assert res.exit_code == 0, res.output
    res = run.invoke(app, [*args, "--max-steps", "4"])  # resumes from step 2
    assert res.exit_code == 0, res.output
    straight = tmp_path / "straight"
    res = run.invoke(app, [*args[:-len(cheap) - 2], "--out", str(straight), *cheap, "--max-steps", "4"])
    assert res.exit_code == 0, res.output
    a, b = load_tensors(out / "checkpoint.safetensors"), load_tensors(straight / "checkpoint.safetensors")
    weights = [k for k in a if k.split(".")[0] in ("G", "D", "G_ema") or k.startswith("opt.")]
    assert any(k.startswith("D.pose_head") for k in weights)
    for k in weights:
        assert torch.equal(a[k], b[k]), k
    header = read_header(out / "checkpoint.safetensors")
    cfg = json.loads((out / "config.json").read_text())
    learned = method in LEARNED
    if method != "pof3d" and learned:  # the combinations: the camera branch exists only in the full mechanism
        assert any(k.startswith("D.camera_head") for k in weights) == (method == "hyperpose+pof3d" and not variant)
    assert header["extra"]["method"] == method
    assert header["extra"]["pose_source"] == ("learned" if learned else "prior")
    if not learned:
        assert header["extra"]["pose_prior"]["name"] == "synthetic_heads"
    assert cfg["method"]["name"] == method and "pose" in cfg["method"]  # the method's own sections only
    assert ("pof3d" in cfg["method"]) == learned and "pof3d" not in cfg
    assert cfg["discriminator"]["c_dim"] == (2 if learned and not variant else 0)
    # generate renders the pose-free model (learned-pose models at their own pose, with the pose histogram)
    gen_args = ["generate", "--ckpt", str(out / "checkpoint.safetensors"), "--seeds", "0-1", "--out",
                str(tmp_path / "gen"), "--pose", "learned" if learned else "prior", "--pose-histogram",
                "--data", str(prior_heads)]
    res = run.invoke(app, gen_args)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "gen" / "views.png").exists() and (tmp_path / "gen" / "pose_histogram.png").exists()
    if learned:  # evaluate renders a learned-pose model's fakes where G itself puts them
        from gan3dkit.metrics.context import EvalContext, EvalOptions
        from gan3dkit.metrics.sampling import learned_poses

        ctx = EvalContext(EvalOptions(), prior_heads, out / "checkpoint.safetensors")
        assert ctx.poses == "learned"
        assert torch.equal(ctx.cameras(4), learned_poses(ctx.G, 4, seed=0))
    res = run.invoke(app, ["evaluate", "--ckpt", str(out / "checkpoint.safetensors"), "--data", str(prior_heads),
                           "--metrics", "nfs", "--num", "4", "--no-record", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout[res.stdout.index("{"):])
    assert report["results"][0]["metric"] == "nfs" and report["results"][0]["value"] > 0


def test_pose_free_training_never_reads_camera_labels(heads_lmdb, tmp_path, monkeypatch, make_config):
    original = DatasetReader.read

    def guarded(self, index, fields=None):
        if fields is None or "camera" in fields:
            raise AssertionError("a pose-free method read a camera label")
        return original(self, index, fields)

    monkeypatch.setattr(DatasetReader, "read", guarded)
    summary = train(make_config(heads_lmdb, tmp_path / "h", method="hyperpose", run__max_steps=2), resume=False)
    assert summary["steps"] == 2


def test_pose_free_fake_poses_follow_the_configured_prior(heads_lmdb, tmp_path, make_config):
    from gan3dkit.methods.posefree import pose_angles
    from gan3dkit.train.loop import GanTask
    from gan3dkit.train.task import RunContext

    cfg = make_config(heads_lmdb, tmp_path / "p", method="eg3d-posereg", pose__prior="synthetic_heads_wide",
                      pose__yaw_std=0.1)
    trainer = GanTask(cfg, RunContext.single(cfg.out))
    yaw = pose_angles(trainer.runtime.fake_cameras(4000))[:, 1]
    assert yaw.mean().abs() < 0.01 and yaw.std().item() == pytest.approx(0.1, rel=0.05)
