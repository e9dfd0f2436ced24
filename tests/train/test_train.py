"""Training: exact resume, NaN stop with the last good checkpoint kept, config checks, CLI train -> generate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gan3dkit.cli.main import app
from gan3dkit.train.checkpoint import load_tensors, read_header
from gan3dkit.train.config import TRAIN_PRESETS, train_preset
from gan3dkit.train.loop import TrainingDiverged, train


def read_camera(path, i: int) -> torch.Tensor:
    from gan3dkit.data.reader import LMDBDataset

    return LMDBDataset(path, fields=["camera"])[i]["camera"]


def test_interrupted_then_resumed_equals_uninterrupted(heads_lmdb, tmp_path, make_config, same_training_state):
    straight = train(make_config(heads_lmdb, tmp_path / "a", run__max_steps=5), resume=False)
    assert straight["steps"] == 5
    train(make_config(heads_lmdb, tmp_path / "b", run__max_steps=2), resume=False)
    header = read_header(tmp_path / "b" / "checkpoint.safetensors")
    assert header["progress"]["step"] == 2 and header["progress"]["nimg"] == 8
    resumed = train(make_config(heads_lmdb, tmp_path / "b", run__max_steps=5), resume=True)
    assert resumed["steps"] == 5 and resumed["nimg"] == 20
    same_training_state(tmp_path / "a", tmp_path / "b")
    # fades continue from where they stopped (nimg restored), unlike EG3D's restart at 0
    recs = [json.loads(line) for line in (tmp_path / "b" / "stats.jsonl").read_text().splitlines()]
    assert recs[-1]["kimg"] == pytest.approx(0.020)
    assert recs[-1]["blur_sigma"] < recs[0]["blur_sigma"]


def test_resume_refuses_a_different_model(heads_lmdb, tmp_path, make_config):
    train(make_config(heads_lmdb, tmp_path / "r", run__max_steps=1), resume=False)
    with pytest.raises(ValueError, match="different settings"):
        train(make_config(heads_lmdb, tmp_path / "r", run__max_steps=2, optim__glr=0.01), resume=True)


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(heads_lmdb, tmp_path, monkeypatch, make_config):
    from gan3dkit.methods.eg3d import EG3DLoss

    original = EG3DLoss.accumulate_gradients
    calls = {"n": 0}

    def poisoned(self, phase, *args, **kwargs):
        stats = original(self, phase, *args, **kwargs)
        if phase == "Gmain":
            calls["n"] += 1
            if calls["n"] == 3:  # third step's generator loss
                stats["Loss/G/loss"] = float("nan")
        return stats

    monkeypatch.setattr(EG3DLoss, "accumulate_gradients", poisoned)
    with pytest.raises(TrainingDiverged, match=r"step 2 .*last good checkpoint is kept"):
        train(make_config(heads_lmdb, tmp_path / "n", run__max_steps=10), resume=False)
    ckpt = tmp_path / "n" / "checkpoint.safetensors"
    header = read_header(ckpt)
    assert header["progress"]["step"] == 2  # the snapshot before the NaN
    assert all(torch.isfinite(t).all() for k, t in load_tensors(ckpt, "G").items() if t.is_floating_point())


def test_dataset_resolution_mismatch_is_explained(heads_lmdb, tmp_path, make_config):
    cfg = make_config(heads_lmdb, tmp_path / "m", run__max_steps=1)
    cfg = type(cfg).from_dict({**cfg.to_dict(), "generator": {**cfg.generator.to_dict(), "img_resolution": 128}})
    with pytest.raises(ValueError, match="dataset resolution 64"):
        train(cfg, resume=False)


@pytest.mark.parametrize("name", sorted(TRAIN_PRESETS))
def test_presets_tie_pose_conditioning_like_eg3d(name):
    cfg = train_preset(name)
    cfg.validate()  # EG3D: c_gen_conditioning_zero = not --gen_pose_cond
    assert cfg.generator.c_gen_conditioning_zero is (not cfg.loss.gen_pose_cond)


def test_contradicting_pose_conditioning_is_refused(heads_lmdb, tmp_path, make_config):
    # a generator trained on zero conditioning but sampled with real cameras renders off-distribution images
    cfg = make_config(heads_lmdb, tmp_path / "p", run__max_steps=1, generator__c_gen_conditioning_zero="false")
    with pytest.raises(ValueError, match="c_gen_conditioning_zero=True"):
        train(cfg, resume=False)
    assert not (tmp_path / "p").exists()


def test_samples_ignore_the_camera_when_trained_without_pose_conditioning(heads_lmdb, tmp_path, make_config):
    from gan3dkit.generate import load_generator

    train(make_config(heads_lmdb, tmp_path / "q", run__max_steps=1), resume=False)
    G, _ = load_generator(tmp_path / "q" / "checkpoint.safetensors")
    z = torch.randn(2, G.z_dim)
    cams = torch.stack([read_camera(heads_lmdb, i) for i in (0, 1)])
    assert torch.equal(G.mapping(z, cams), G.mapping(z, torch.zeros_like(cams)))


def test_cli_train_then_generate(heads_lmdb, tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    args = ["train", "--data", str(heads_lmdb), "--out", str(run), "--preset", "tiny", "--max-steps", "2", "--json"]
    for item in [
        "run.workers=0",
        "run.cpu_threads=1",
        "run.grid_size=4",
        "generator.rendering.depth_resolution=6",
        "generator.rendering.depth_resolution_importance=6",
        "loss.density_reg_points=64",
    ]:
        args += ["--set", item]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout[res.stdout.index("{") :])
    assert summary["steps"] == 2
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["generator"]["rendering"]["depth_resolution"] == 6 and cfg["data"] == str(heads_lmdb)
    assert sorted(p.name for p in (run / "samples").iterdir()) == sorted(
        ["reals.png", "fakes000000008.png", "fakes000000008_raw.png", "fakes000000008_depth.png"]
    )
    ckpt = run / "checkpoint.safetensors"

    from gan3dkit.generate import load_generator
    from gan3dkit.generate.mesh import density_grid
    from gan3dkit.generate.views import view_cameras

    G, _ = load_generator(ckpt)
    z = torch.from_numpy(np.random.RandomState(0).randn(1, G.z_dim)).float()
    grid = density_grid(G, G.mapping(z, view_cameras(G, [0.0], 0.0, torch.device("cpu")).to_label()), resolution=24)
    level = float(np.quantile(grid, 0.7))  # an untrained field has no sigma=10 surface; pick one it has
    out = tmp_path / "gen"
    res = runner.invoke(
        app,
        [
            "generate",
            "--ckpt",
            str(ckpt),
            "--out",
            str(out),
            "--seeds",
            "0-1",
            "--video",
            "--frames",
            "4",
            "--mesh",
            "--mesh-res",
            "24",
            "--mesh-level",
            str(level),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    written = json.loads(res.stdout[res.stdout.index("{") :])
    views = Image.open(out / "views.png")
    assert views.size == (6 * 64 + 7 * 2, 2 * 64 + 3 * 2)  # 3 yaws + 3 depths per seed row
    gif = Image.open(out / "seed0000.gif")
    assert gif.n_frames == 4
    ply = (out / "seed0000.ply").read_bytes()
    assert ply.startswith(b"ply\nformat binary_little_endian") and len(written["meshes"]) == 2
    n_vert = int(ply.split(b"element vertex ")[1].split(b"\n")[0])
    assert n_vert > 0 and not math.isnan(n_vert)
    res = runner.invoke(
        app,
        ["generate", "--ckpt", str(ckpt), "--out", str(out / "side"), "--seeds", "0", "--yaws", "1.0,0.5,0,-0.5,-1.0"],
    )
    assert res.exit_code == 0, res.output
    assert Image.open(out / "side" / "views.png").size == (10 * 64 + 11 * 2, 64 + 2 * 2)  # 5 yaws + 5 depths
    res = runner.invoke(app, ["generate", "--ckpt", str(ckpt), "--out", str(out), "--yaws", "left"])
    assert res.exit_code == 2 and "--yaws" in res.output
    res = runner.invoke(app, ["generate", "--ckpt", str(tmp_path / "missing.safetensors"), "--out", str(out)])
    assert res.exit_code == 2 and "not found" in res.output
