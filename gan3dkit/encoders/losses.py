"""Distillation losses: ArcFace identity, TriPlaneNet mirror loss (LPIPS is metrics.perceptual_loss.PerceptualLoss)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class IdentityLoss(nn.Module):
    """1 - cos(ArcFace(x), ArcFace(y)) with pSp's fixed crop (``metrics.identity`` IR-SE-50 and its weight spec).

    Only built when weights are given: no face-recognition weights ship offline (offline-assets §2.4).
    """

    def __init__(self, weights: str | Path | None) -> None:
        super().__init__()
        from ..metrics.identity import ArcFaceEmbedder

        emb = ArcFaceEmbedder(weights)
        self.net = emb.net.requires_grad_(False).eval()
        self.description = emb.description

    def _embed(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)
        return self.net(F.adaptive_avg_pool2d(x[:, :, 35:223, 32:220], (112, 112)))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return (1 - (self._embed(x) * self._embed(y).detach()).sum(1)).mean()


def symmetry_loss(x_mirror: Tensor, y_mirror: Tensor, sigma: Tensor | None, likelihood: bool = False,
                  smooth: bool = False) -> Tensor:
    """TriPlaneNet's confidence-weighted mirror term between the flipped input and the mirror-view rendering.

    ``likelihood=False`` (eq. 5, frozen pretrained sigma): mean(l2 / sigma), l2 = per-pixel squared error summed
    over channels; ``smooth=True`` puts the per-pixel smooth-L1 there instead (the second branch's loss: seed 004
    replaces L2 by smooth L1 "inside L_symm" too). ``likelihood=True`` (eq. 4, sigma trained jointly):
    mean(log(sqrt 2 sigma) + sqrt 2 l1 / sigma). ``sigma=None`` is a uniform confidence of 1. Zero (eq. 5) when the
    rendering equals the flipped input.
    """
    if likelihood:
        if sigma is None:
            raise ValueError("the likelihood form of the mirror loss needs a confidence map")
        l1 = (x_mirror - y_mirror).abs().mean(1, keepdim=True)
        return (torch.log(2**0.5 * sigma) + 2**0.5 * l1 / sigma).mean()
    if smooth:
        d = F.smooth_l1_loss(y_mirror, x_mirror, reduction="none").sum(1, keepdim=True)
    else:
        d = (x_mirror - y_mirror).square().sum(1, keepdim=True)
    return (d if sigma is None else d / sigma).mean()


def generator_adv_loss(logits: Tensor) -> Tensor:
    """Non-saturating G loss softplus(-D(fake)) (EG3D / the unofficial LP3D code)."""
    return F.softplus(-logits).mean()


def discriminator_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """softplus(D(fake)) + softplus(-D(real)); here "real" = frozen-teacher renders, "fake" = encoder renders."""
    return F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()


def r1_penalty(D: nn.Module, real: dict[str, Tensor], c: Tensor) -> Tensor:
    """R1 = mean over the batch of |grad_x D(x)|^2 on both dual inputs (EG3D)."""
    img = real["image"].detach().requires_grad_(True)
    raw = real["image_raw"].detach().requires_grad_(True)
    logits = D({"image": img, "image_raw": raw}, c)
    gi, gr = torch.autograd.grad(logits.sum(), [img, raw], create_graph=True)
    return (gi.square().sum((1, 2, 3)) + gr.square().sum((1, 2, 3))).mean()
