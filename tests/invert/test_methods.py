"""Each method lowers its loss on a micro generator; delta checkpoints reproduce the tuned generator bit for bit."""

from __future__ import annotations

import pytest
import torch

from gan3dkit.invert import InvertItem, invert, load_delta, preset, save_delta
from gan3dkit.invert.losses import build_perceptual, depth_tv, noise_regularizer
from gan3dkit.invert.outputs import to_uint8
from gan3dkit.invert.projector import lr_at
from gan3dkit.invert.tuning import tune_generator
from gan3dkit.train.checkpoint import CheckpointError

from .conftest import render_target


def _small(method: str, algorithm: int = 1, steps: int = 6, tune: int = 3):
    cfg = preset(method, algorithm)
    cfg.perceptual = cfg.tune_perceptual = "none"
    cfg.pose.warp_features = "rgb"  # no ImageNet VGG16 offline: pixels asked for explicitly
    cfg.projector.steps, cfg.projector.w_avg_samples, cfg.tune.steps = steps, 64, tune
    cfg.pose.warmup_steps = min(cfg.pose.warmup_steps, 2)
    return cfg


def test_lr_schedule_is_ptis():
    cfg = preset("w").projector
    assert lr_at(0.0, cfg) == 0.0
    assert lr_at(0.05, cfg) == pytest.approx(0.01)  # end of the ramp-up: the peak 0.01 (not first_inv_lr 5e-3)
    assert lr_at(0.5, cfg) == pytest.approx(0.01)
    assert lr_at(0.875, cfg) == pytest.approx(0.005)  # half-way down the cosine ramp-down


@pytest.mark.parametrize("method,algorithm", [("w", 1), ("wplus", 1), ("pti", 1), ("ko", 1), ("ko", 3)])
def test_method_lowers_its_loss(G, method, algorithm):
    img, _, _, _ = render_target(G, 0.2)
    from gan3dkit.generate.views import view_cameras

    item = InvertItem("t", to_uint8(img), view_cameras(G, [0.1], 0.0, "cpu").to_label()[0].numpy(), "test")
    cfg = _small(method, algorithm)
    inv = invert(G, item, cfg)
    proj = inv.report["projector"]
    assert proj["last"]["mse"] < proj["first"]["mse"]
    assert inv.ws.shape == (1, G.num_ws, G.w_dim)
    if method == "wplus":
        assert not torch.allclose(inv.ws[0, 0], inv.ws[0, -1])  # w+ layers move independently
    else:
        assert torch.equal(inv.ws[0, 0], inv.ws[0, -1])
    if cfg.tunes_generator:
        tune = inv.report["tuning"]
        assert tune["last"]["mse"] < tune["first"]["mse"]
        assert inv.generator is not G
    assert (inv.report["pose_change"]["rotation_deg"] > 0) == cfg.optimizes_pose
    assert inv.report["losses"]["projector"]["calibrated"] is False  # 'none' is never reported as LPIPS


def test_random_backbone_is_labelled_uncalibrated():
    loss = build_perceptual("random-vgg-lpips", "vgg")
    assert loss.available and not loss.info.calibrated and "RANDOM" in loss.info.note
    x = torch.rand(1, 3, 32, 32, requires_grad=True) * 2 - 1
    d = loss.distance(x, torch.zeros(1, 3, 32, 32))
    d.sum().backward()
    assert d.item() > 0


def test_regularisers():
    assert depth_tv(torch.full((1, 1, 8, 8), 2.0)) == 0
    assert depth_tv(torch.arange(64.0).reshape(1, 1, 8, 8)) == pytest.approx(1 + 64)
    smooth = [torch.ones(16, 16)]
    assert noise_regularizer([torch.randn(16, 16, generator=torch.Generator().manual_seed(0))]) < noise_regularizer(
        smooth)


def test_delta_checkpoint_round_trip(micro_ckpt, tmp_path):
    path, G = micro_ckpt
    img, ws, cam, _ = render_target(G, 0.1, seed=3)
    cfg = _small("pti").tune
    tuned, _, _ = tune_generator(G, ws * 0.9, cam, img, cfg, build_perceptual("none", "alex"))
    delta = tmp_path / "delta.safetensors"
    header = save_delta(delta, path, G, tuned)
    assert header["changed"] and len(header["changed"]) < len(G.state_dict())
    G2, _ = load_delta(delta)
    a, b = tuned.state_dict(), G2.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with torch.no_grad():
        o1 = tuned.synthesis(ws, cam, noise_mode="const", deterministic_render=True)["image"]
        o2 = G2.synthesis(ws, cam, noise_mode="const", deterministic_render=True)["image"]
    assert torch.equal(o1, o2)
    other = tmp_path / "other.safetensors"
    other.write_bytes(path.read_bytes() + b" ")  # not the recorded base
    with pytest.raises(CheckpointError, match="not the base"):
        load_delta(delta, other)
