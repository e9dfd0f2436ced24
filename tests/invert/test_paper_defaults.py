"""Ko et al. as seed 002 states it: Alg. 1's pose step on the warp loss, stage-2 LPIPS at full resolution, and
contradictory flag pairs refused in one line."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from gan3dkit.cli.main import app
from gan3dkit.invert import InvertItem, invert, preset
from gan3dkit.invert.outputs import to_uint8

from .conftest import render_target


def test_ko_defaults_follow_the_paper_and_the_code_stays_an_option():
    ko = preset("ko", 1)
    assert ko.tune.lpips_resolution is None  # LPIPS on the full SR image (the 0.06 threshold assumes it)
    assert ko.pose.pose_image_weight == 0.0  # Alg. 1 line 6: the pose step is driven by the warp loss
    assert preset("pti").tune.lpips_resolution == 256


@pytest.mark.parametrize("args,words", [
    (["--pose-opt", "--algorithm", "2"], "--pose-opt contradicts --algorithm 2"),
    (["--method", "ko", "--pose-opt", "--algorithm", "2"], "keeps the given camera fixed"),
    (["--method", "pti", "--algorithm", "3"], "--algorithm 3 is for --method ko"),
    (["--method", "ko", "--set", "pose.warp_weight=0"], "without a loss"),
    (["--method", "pti", "--pose-encoder", "P.safetensors"], "use them with --method ko"),
    (["--method", "ko", "--algorithm", "2", "--pose-encoder", "P.safetensors"], "--pose-encoder contradicts"),
])
def test_contradictory_flags_are_one_line_usage_errors(tmp_path, args, words):
    res = CliRunner().invoke(app, ["invert", str(tmp_path / "x.png"), "--ckpt", str(tmp_path / "G.safetensors"),
                                   "--out", str(tmp_path / "o"), *args])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], res.output
    assert not (tmp_path / "o").exists()


def _small(method, algorithm=1, **pose):
    cfg = preset(method, algorithm)
    cfg.perceptual = cfg.tune_perceptual = "none"
    cfg.pose.warp_features = "rgb"  # no ImageNet VGG16 offline: pixels asked for explicitly
    cfg.projector.steps, cfg.projector.w_avg_samples, cfg.tune.steps = 4, 16, 2
    cfg.pose.warmup_steps = 1
    for k, v in pose.items():
        setattr(cfg.pose, k, v)
    return cfg


def test_tuning_lpips_resolution_is_the_targets_for_ko(G, monkeypatch):
    from gan3dkit.invert import run

    seen = []
    real = run.build_perceptual

    def spy(choice, net, backbone=None, resolution=256):
        seen.append((net, resolution))
        return real(choice, net, backbone, resolution)

    monkeypatch.setattr(run, "build_perceptual", spy)
    img, _, cam, _ = render_target(G, 0.1)
    item = InvertItem("t", to_uint8(img), cam[0].numpy(), "test")
    invert(G, item, _small("ko"))
    assert ("alex", 32) in seen  # the tuning LPIPS sees the 32² target whole
    seen.clear()
    invert(G, item, _small("pti"))
    assert ("alex", 256) in seen


def test_alg1_pose_step_is_driven_by_the_warp_loss(G, monkeypatch):
    """With the warp loss switched to a constant, the default pose step has nothing to follow (the pose stays);
    the code's option (pose_image_weight 1) lets the image loss move it."""
    from gan3dkit.invert import projector

    monkeypatch.setattr(projector, "warp_loss", lambda t, c, depth, cam, canon: (cam.cam2world * 0).sum() + 1.0)
    img, _, _, _ = render_target(G, 0.3)
    from gan3dkit.generate.views import view_cameras

    item = InvertItem("t", to_uint8(img), view_cameras(G, [0.1], 0.0, "cpu").to_label()[0].numpy(), "test")
    paper = invert(G, item, _small("ko", warp_features="rgb"))
    assert paper.report["pose_change"]["rotation_deg"] == pytest.approx(0.0, abs=1e-6)
    code = invert(G, item, _small("ko", warp_features="rgb", pose_image_weight=1.0))
    assert code.report["pose_change"]["rotation_deg"] > 1e-3
    assert torch.isfinite(code.ws).all()
