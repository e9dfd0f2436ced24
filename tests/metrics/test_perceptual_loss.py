"""The one differentiable LPIPS loss (inversion and encoders) equals the LPIPS metric and has gradients."""

from __future__ import annotations

import torch

from gan3dkit.metrics.perceptual import LPIPS
from gan3dkit.metrics.perceptual_loss import PerceptualInfo, PerceptualLoss


def test_loss_is_the_metric_with_gradients():
    torch.manual_seed(0)
    metric = LPIPS("alex", random_backbone=True)
    loss = PerceptualLoss.load("alex", random_backbone=True)
    assert not loss.calibrated and loss.description == metric.description and "RANDOM" in loss.info.note
    x = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    y = torch.rand(2, 3, 64, 64) * 2 - 1
    d = loss.distance(x, y)
    assert torch.allclose(d.detach(), metric(x.detach(), y), atol=1e-6, rtol=1e-5)
    assert torch.equal(d, loss.distance(x, loss.features(y)))  # cached target features give the same distance
    loss(x, y).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_resizing_rules_and_the_pixel_only_fallback():
    lp = LPIPS("vgg", random_backbone=True)
    down = PerceptualLoss(lp, PerceptualInfo("t", False), resolution=32)
    assert down.prepare(torch.zeros(1, 3, 64, 64)).shape[-1] == 32  # PTI: area-downsampled to the resolution
    up = PerceptualLoss(lp, PerceptualInfo("t", False), small=32)
    assert up.prepare(torch.zeros(1, 3, 16, 16)).shape[-1] == 64  # AlexNet needs about 32 px
    assert up.prepare(torch.zeros(1, 3, 40, 40)).shape[-1] == 40
    none = PerceptualLoss(None, PerceptualInfo("none", False))
    assert not none.available and torch.equal(none.distance(torch.ones(3, 3, 8, 8), torch.zeros(3, 3, 8, 8)),
                                              torch.zeros(3))
