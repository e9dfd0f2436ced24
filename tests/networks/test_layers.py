"""Equalised-lr layers, the mapping network (w_avg, truncation) and parameter counts against StyleGAN2's figures."""

from __future__ import annotations

import math

import pytest
import torch

from gan3dkit.networks import (
    Conv2dLayer,
    DiscriminatorConfig,
    DualDiscriminator,
    FullyConnectedLayer,
    MappingNetwork,
    MinibatchStdLayer,
    SynthesisLayer,
    ToRGBLayer,
    TriPlaneGenerator,
    get_preset,
)


def _count(module: torch.nn.Module, buffers: bool = False) -> int:
    tensors = module.buffers() if buffers else module.parameters()
    return sum(t.numel() for t in tensors)


def _own_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def test_lr_multiplier_scales_weights_and_gradients():
    torch.manual_seed(0)
    fc = FullyConnectedLayer(512, 256, lr_multiplier=0.01, bias_init=0.5)
    assert fc.weight.std().item() == pytest.approx(100.0, rel=0.02)  # stored N(0, 1/lr^2)
    assert fc.effective_weight.std().item() == pytest.approx(1 / math.sqrt(512), rel=0.02)
    x = torch.randn(8, 512)
    torch.testing.assert_close(fc(x), x @ fc.effective_weight.t() + 0.5, rtol=1e-5, atol=1e-5)  # effective bias 0.5
    eff = fc.effective_weight.detach().requires_grad_(True)
    (x @ eff.t()).square().sum().backward()
    fc(x).sub(0.5).square().sum().backward()
    torch.testing.assert_close(fc.weight.grad, eff.grad * 0.01 / math.sqrt(512), rtol=1e-4, atol=1e-9)


def test_mapping_truncation_and_w_avg_tracking():
    torch.manual_seed(0)
    m = MappingNetwork(z_dim=16, c_dim=25, w_dim=16, num_ws=5, num_layers=2)
    assert all(
        getattr(m, f"fc{i}").weight_gain == pytest.approx(0.01 / math.sqrt(m.fc0.in_features if i == 0 else 16))
        for i in range(2)
    )
    m.w_avg.copy_(torch.randn(16))
    z, c = torch.randn(6, 16), torch.randn(6, 25)
    ws = m(z, c)
    assert ws.shape == (6, 5, 16) and torch.equal(ws[:, 0], ws[:, 4])
    torch.testing.assert_close(m(z, c, truncation_psi=0.0), m.w_avg.expand(6, 5, 16))
    cut = m(z, c, truncation_psi=0.0, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, :2], m.w_avg.expand(6, 2, 16))
    torch.testing.assert_close(cut[:, 2:], ws[:, 2:])
    half = m(z, c, truncation_psi=0.5)
    torch.testing.assert_close(half, 0.5 * (ws + m.w_avg))

    before = m.w_avg.clone()
    m(z, c)  # no update without update_emas
    assert torch.equal(m.w_avg, before)
    m(z, c, update_emas=True)
    expected = ws[:, 0].mean(0) + 0.998 * (before - ws[:, 0].mean(0))
    torch.testing.assert_close(m.w_avg, expected)
    assert (m.w_avg - ws[:, 0].mean(0)).norm() < (before - ws[:, 0].mean(0)).norm()  # moved toward the batch mean


def test_mapping_without_c_and_input_checks():
    m = MappingNetwork(z_dim=0, c_dim=25, w_dim=32, num_ws=None, num_layers=3, w_avg_beta=None)
    assert m(None, torch.randn(4, 25)).shape == (4, 32) and not hasattr(m, "w_avg")
    with pytest.raises(ValueError, match=r"c must be \[N, 25\]"):
        m(None, torch.randn(4, 16))


def test_minibatch_std_layer():
    x = torch.randn(8, 6, 4, 4)
    y = MinibatchStdLayer(group_size=4, num_channels=1)(x)
    assert y.shape == (8, 7, 4, 4)
    # Group of sample i = samples with the same index mod 2 (8 / 4 groups): check group 0 by hand.
    group = x[0::2]
    expected = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(y[0, 6], expected.expand(4, 4))
    torch.testing.assert_close(y[2, 6], expected.expand(4, 4))
    with pytest.raises(ValueError, match="divisible"):
        MinibatchStdLayer(group_size=4)(torch.randn(6, 6, 4, 4))


def test_layer_parameter_counts_match_stylegan2_summaries():
    # Figures from StyleGAN2-ADA's print_module_summary (w_dim 512, 512 channels, resnet D with cbase 32768).
    layer = SynthesisLayer(512, 512, w_dim=512, resolution=4)
    assert _count(layer) == 2622465 and _count(layer, buffers=True) == 32
    assert _count(SynthesisLayer(512, 512, w_dim=512, resolution=8, up=2), buffers=True) == 80
    assert _count(ToRGBLayer(512, 3, w_dim=512)) == 264195
    assert _count(FullyConnectedLayer(512, 512)) == 262656
    assert _count(Conv2dLayer(3, 32, 1)) == 128 and _count(Conv2dLayer(32, 64, 1, bias=False, down=2)) == 2048
    assert _count(Conv2dLayer(32, 32, 3)) == 9248 and _count(Conv2dLayer(32, 64, 3, down=2)) == 18496
    assert _count(Conv2dLayer(512, 512, 3)) == 2359808


def test_ffhq512_parameter_counts():
    torch.manual_seed(0)
    preset = get_preset("ffhq512")
    G = TriPlaneGenerator(preset.generator)
    m = G.backbone.mapping
    assert G.num_ws == 14
    assert (_count(m.embed), _count(m.fc0), _count(m.fc1)) == (13312, 524800, 262656)  # 25->512, 1024->512, 512->512
    syn = G.backbone.synthesis
    assert _count(syn.b4.conv1) == 2622465 and _own_count(syn.b4) == 8192  # 512x4x4 constant
    assert _count(syn.b256.torgb) == 512 * 128 + 128 + 96 * 128 + 96  # 96 = 3 planes x 32 channels
    assert _count(G.decoder) == (32 * 64 + 64) + (64 * 33 + 33)
    D = DualDiscriminator(DiscriminatorConfig(img_resolution=512))
    assert _count(D.b512.fromrgb) == 6 * 64 + 64  # 6 input channels
    assert _count(D.b64.skip) == 262144 and _count(D.b64.conv0) == 2359808  # 512 channels at 64x64
    # Totals of this implementation (EG3D publishes no figure): reported, and pinned against regressions.
    assert _count(G.backbone.mapping) == 800768
    assert D.b512.use_fp16 and D.b64.use_fp16 and not D.b32.use_fp16
