"""LPIPS/DISTS: calibrated heads from the installed packages, the real backbone-loading path with a self-made file,
and properties with random-init backbones (offline numbers are NOT the calibrated metrics)."""

from __future__ import annotations

import pytest
import torch

from gan3dkit.metrics import perceptual as P
from gan3dkit.metrics.weights import WeightsUnavailable, fetch, package_file

needs_lpips = pytest.mark.skipif(package_file("lpips", "weights/v0.1/alex.pth") is None,
                                 reason="pip install --no-deps lpips==0.1.4 (ships the LPIPS heads)")
needs_dists = pytest.mark.skipif(package_file("DISTS_pytorch", "weights.pt") is None,
                                 reason="pip install --no-deps DISTS_pytorch==0.1 (ships DISTS alpha/beta)")


def _images(seed=0, n=2, size=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.avg_pool2d(torch.rand(n, 3, size, size, generator=g), 5, 1, 2)
    return x, g


def test_feature_stacks_match_torchvision_layouts():
    alex = P.alexnet_features()
    assert [k for k in alex.state_dict() if k.endswith("weight")] == [f"{i}.weight" for i in (0, 3, 6, 8, 10)]
    vgg = P.vgg16_features()
    assert len(vgg) == 31 and sum(isinstance(m, torch.nn.Conv2d) for m in vgg) == 13
    assert P.alexnet_features()(torch.zeros(1, 3, 64, 64)).shape == (1, 256, 1, 1)


def test_backbone_loads_a_torchvision_style_file(tmp_path):
    sd = {f"features.{k}": v for k, v in P.alexnet_features().state_dict().items()}
    sd["classifier.1.weight"] = torch.zeros(4096, 9216)  # ignored, as in torchvision checkpoints
    path = tmp_path / "alexnet.pth"
    torch.save(sd, path)
    net, desc = P.load_backbone("alex", path)
    assert "ImageNet" in desc and torch.equal(net[0].weight, sd["features.0.weight"])
    del sd["features.3.weight"]
    torch.save(sd, path)
    with pytest.raises(RuntimeError, match="Missing"):
        P.load_backbone("alex", path)


def test_backbone_offline_error_names_the_url(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN3DKIT_CACHE", str(tmp_path))
    with pytest.raises(WeightsUnavailable, match="alexnet-owt-7be5be79"):
        fetch(P.ALEXNET, allow_download=False)


@needs_lpips
@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_heads_and_properties_with_random_backbone(net):
    lp = P.LPIPS(net, random_backbone=True)
    sd = torch.load(fetch(P.LPIPS_HEADS[net]), map_location="cpu", weights_only=True)
    assert torch.equal(lp.heads[0], sd["lin0.model.1.weight"]) and (lp.heads[4] >= 0).all()
    assert not lp.calibrated and "RANDOM" in lp.description
    x, g = _images()
    x = x * 2 - 1
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    assert torch.equal(lp(x, x), torch.zeros(2))
    torch.testing.assert_close(lp(x, y), lp(y, x))
    d = [float(lp(x, (x + s * torch.randn(x.shape, generator=g)).clamp(-1, 1)).mean()) for s in (0.05, 0.2, 0.6)]
    assert 0 < d[0] < d[1] < d[2]


@needs_dists
def test_dists_weights_and_properties_with_random_backbone():
    dists = P.DISTS(random_backbone=True)
    assert dists.alpha.shape == (1, 1475, 1, 1) and not dists.calibrated
    x, g = _images(1)
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert dists(x, x).abs().max() < 1e-5
    torch.testing.assert_close(dists(x, y), dists(y, x))
    d = [float(dists(x, (x + s * torch.randn(x.shape, generator=g)).clamp(0, 1)).mean()) for s in (0.05, 0.2, 0.6)]
    assert 0 < d[0] < d[1] < d[2]


def test_l2pool_uses_dists_hanning_window():
    pool = P.L2Pool(2)
    expected = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16  # hanning(5)[1:-1] outer
    torch.testing.assert_close(pool.filter[1, 0], expected)
    x = torch.full((1, 2, 8, 8), 3.0)
    assert pool(x).shape == (1, 2, 4, 4) and pool(x)[0, 0, 1, 1] == pytest.approx(3.0)  # interior: RMS of a constant
