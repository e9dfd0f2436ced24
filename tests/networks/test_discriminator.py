"""DualDiscriminator: logits, dual input, camera conditioning, R1 double backward, a full tiny G+D step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gan3dkit.networks import DiscriminatorConfig, DualDiscriminator, TriPlaneGenerator, get_preset


@pytest.fixture(scope="module")
def tiny_d() -> DualDiscriminator:
    torch.manual_seed(0)
    return DualDiscriminator(get_preset("tiny").discriminator)


def _images(batch: int = 4, res: int = 64, raw: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "image": torch.randn(batch, 3, res, res, generator=g),
        "image_raw": torch.randn(batch, 3, raw, raw, generator=g),
    }


def test_logits_shape_and_fp32_on_cpu(tiny_d, labels4):
    out = tiny_d(_images(), labels4)
    assert out.shape == (4, 1) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert tiny_d.b64.use_fp16  # configured for fp16, but CPU always runs fp32
    assert tiny_d.b64.fromrgb.weight.shape[1] == 6  # image + resized raw image


def test_raw_image_and_camera_matter(tiny_d, labels4):
    imgs = _images()
    base = tiny_d(imgs, labels4)
    other_raw = dict(imgs, image_raw=torch.zeros_like(imgs["image_raw"]))
    assert (tiny_d(other_raw, labels4) - base).abs().max() > 1e-4
    assert (tiny_d(imgs, labels4.flip(0)) - base).abs().max() > 1e-4
    with pytest.raises(ValueError, match="image_raw"):
        tiny_d(imgs["image"], labels4)


def test_single_input_discriminator(labels4):
    cfg = get_preset("tiny").discriminator
    cfg.dual = False
    D = DualDiscriminator(cfg)
    imgs = _images()
    assert D.b64.fromrgb.weight.shape[1] == 3
    torch.testing.assert_close(D(imgs, labels4), D(imgs["image"], labels4))


def test_disc_c_noise_only_perturbs_conditioning(labels4):
    torch.manual_seed(0)
    D = DualDiscriminator(
        DiscriminatorConfig(img_resolution=16, channel_base=256, channel_max=32, mapping_layers=2, disc_c_noise=1.0)
    )
    imgs = _images(res=16, raw=8)
    a, b = D(imgs, labels4), D(imgs, labels4)
    assert not torch.allclose(a, b)
    D.config.disc_c_noise = 0.0
    torch.testing.assert_close(D(imgs, labels4), D(imgs, labels4))


def test_r1_double_backward_on_both_images(tiny_d, labels4):
    imgs = _images()
    img = imgs["image"].requires_grad_(True)
    raw = imgs["image_raw"].requires_grad_(True)
    logits = tiny_d({"image": img, "image_raw": raw}, labels4)
    g_img, g_raw = torch.autograd.grad(logits.sum(), [img, raw], create_graph=True)
    assert g_raw.shape == raw.shape and g_raw.abs().sum() > 0 and g_img.abs().sum() > 0
    penalty = g_img.square().sum([1, 2, 3]).mean() + g_raw.square().sum([1, 2, 3]).mean()
    tiny_d.zero_grad()
    penalty.backward()
    grads = {n: p.grad for n, p in tiny_d.named_parameters()}
    # The gradient w.r.t. the inputs does not depend on the last additive bias: no grad there, by construction.
    assert [n for n, g in grads.items() if g is None] == ["b4.out.bias"]
    assert all(torch.isfinite(g).all() for g in grads.values() if g is not None)
    assert grads["b64.conv0.weight"].abs().sum() > 0 and grads["mapping.fc0.weight"].abs().sum() > 0


def test_tiny_generator_discriminator_step(labels4):
    torch.manual_seed(0)
    preset = get_preset("tiny")
    G, D = TriPlaneGenerator(preset.generator), DualDiscriminator(preset.discriminator)
    out = G(torch.randn(4, G.z_dim), labels4, update_emas=True)
    loss = F.softplus(-D(out, labels4)).mean()
    loss.backward()
    assert G.backbone.mapping.fc0.weight.grad.abs().sum() > 0
    assert G.decoder.net[0].weight.grad.abs().sum() > 0 and G.superresolution.block1.conv1.weight.grad.abs().sum() > 0
    assert G.backbone.mapping.w_avg.abs().sum() > 0
