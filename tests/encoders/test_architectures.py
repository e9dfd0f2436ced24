"""Encoder architectures: output shapes at two resolutions, BN-free backbone, coordinate channels, BN folding."""

from __future__ import annotations

import pytest
import torch

from gan3dkit.encoders.blocks import pixel_coordinates
from gan3dkit.encoders.registry import ARCHS, arch_config, build_encoder
from gan3dkit.networks import TriPlaneGenerator
from gan3dkit.train.config import train_preset
from gan3dkit.utils.config import apply_overrides


def _generator(img: int, tri: int, ch: int) -> TriPlaneGenerator:
    cfg = apply_overrides(train_preset("tiny"), [f"generator.img_resolution={img}",
                                                 f"generator.neural_rendering_resolution={img // 2}",
                                                 f"generator.triplane_resolution={tri}",
                                                 f"generator.triplane_channels={ch}",
                                                 "generator.rendering.depth_resolution=4",
                                                 "generator.rendering.depth_resolution_importance=4",
                                                 "generator.superres.channels=[8, 8]"])
    torch.manual_seed(0)
    return TriPlaneGenerator(cfg.generator).eval().requires_grad_(False)


@pytest.mark.parametrize("img,tri,ch", [(32, 16, 4), (64, 32, 8)])
def test_output_shapes_each_arch(img, tri, ch):
    G = _generator(img, tri, ch)
    x = torch.rand(2, 3, img, img) * 2 - 1
    from gan3dkit.generate.views import view_cameras

    cams = view_cameras(G, [0.2, -0.1], 0.0, "cpu").to_label()
    for name in ARCHS:
        size = 2 * tri if "release" in name else max(32, img // 2) if "lp3d" in name else 32  # release: planes = in / 2
        cfg = arch_config(name, G, "tiny", {"input_resolution": size})
        E = build_encoder(name, cfg, G)
        with torch.no_grad():
            out = E(x, cams if "triplanenet" in name else None)
        assert out.planes.shape == (2, 3, ch, tri, tri), name
        assert out.pose is None if "lp3d" in name else out.pose.shape == (2, 3)  # LP3D: no pose head (seed 003)
        if "triplanenet" in name:
            assert out.ws.shape == (2, G.num_ws, G.w_dim)
            # offsets start at zero: the first-branch planes come out unchanged
            assert torch.allclose(out.planes, out.base)
        assert torch.isfinite(out.planes).all()


def test_lp3d_has_no_batch_norm_and_five_input_channels():
    G = _generator(32, 16, 4)
    E = build_encoder("lp3d", arch_config("lp3d", G, "tiny"), G)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in E.modules())
    assert E.backbone.conv1.in_channels == 5 and E.backbone.conv1.bias is not None
    lt = build_encoder("lp3d-lt", arch_config("lp3d-lt", G, "tiny"), G)
    assert lt.high[0].in_channels == lt.cfg.resnet_widths[0]  # LT: E_high reads backbone features


def test_pixel_coordinates_range():
    c = pixel_coordinates(torch.zeros(1, 3, 4, 8))
    u, v = c[0, 3], c[0, 4]
    assert c.shape == (1, 5, 4, 8)
    assert u.min() == pytest.approx(-1 + 1 / 8) and u.max() == pytest.approx(1 - 1 / 8)
    assert v[0, 0] == pytest.approx(-1 + 1 / 4) and torch.all(v[:, 0] == v[:, -1])


def test_unknown_arch_and_mismatched_triplane():
    G = _generator(32, 16, 4)
    with pytest.raises(ValueError, match="unknown encoder arch"):
        arch_config("lp4d", G)
    with pytest.raises(ValueError, match="does not match the generator"):
        arch_config("lp3d", G, "tiny", {"triplane_channels": 5})


def test_bn_folding_preserves_the_function():
    from gan3dkit.encoders.pretrained import _fold_bn

    torch.manual_seed(0)
    conv, bn = torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.BatchNorm2d(4)
    bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2), bn.weight.data.normal_(), bn.bias.data.normal_()
    bn.eval()
    sd = {"c.weight": conv.weight, **{f"b.{k}": v for k, v in bn.state_dict().items()}}
    w, b = _fold_bn(sd, "c", "b")
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(bn(conv(x)), torch.nn.functional.conv2d(x, w, b), atol=1e-5)
