"""EG3D's reduced-precision paths of G (backbone), SR and D, run on the CPU and compared with fp32.

On CUDA the blocks at the ``num_fp16_res`` highest resolutions cast their activations to fp16 and clamp conv outputs
at ``conv_clamp`` = 256 (EG3D). That code never runs on a CPU (``layers.use_fp16`` is CUDA-only), so here the
blocks' choice is widened to the CPU (explicit casts: the same fp16 code path, only the device differs) and, for
bf16, the fp32 networks run under CPU autocast. Same weights, same inputs; the stated tolerance is the relative L2
error against fp32 in ``TOL`` per output (measured values in docs/ops.md, "Reduced precision on the CPU"), and
every value must be finite. Each component gets its own fp32 input, so its error is its own; the full image adds
the renderer, whose importance sampling amplifies small density changes.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from gan3dkit.networks import DualDiscriminator, TriPlaneGenerator, discriminator, get_preset, stylegan2
from gan3dkit.utils.config import apply_overrides

from ._helpers import camera_labels

#: Relative L2 error allowed against fp32: (fp16 blocks, bf16 autocast). fp16 rounds at ~5e-4, bf16 at ~4e-3.
TOL = {
    "planes": (5e-3, 4e-2),
    "sr_image": (5e-3, 4e-2),
    "image": (6e-2, 6e-2),
    "logits": (2e-2, 1.5e-1),
    "r1_grad": (6e-2, 1.5e-1),
    "r1_param_grad": (5e-2, 1.2e-1),
}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().float(), b.detach().float()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


@contextlib.contextmanager
def _fp16_blocks(enabled: bool):
    """The blocks' fp16 decision with its 'and on CUDA' condition replaced (True: EG3D's fp16 path runs here)."""
    with pytest.MonkeyPatch.context() as mp:
        for module in (stylegan2, discriminator):
            mp.setattr(module, "use_fp16", lambda wanted, reference: wanted and enabled)
        yield


def _models():
    torch.manual_seed(0)
    # EG3D's fp16 layout: backbone blocks at the 2 top resolutions, every SR block, D's top 4; conv_clamp 256.
    preset = apply_overrides(
        get_preset("tiny"),
        ["generator.num_fp16_res=2", "generator.synthesis.conv_clamp=256", "generator.superres.num_fp16_res=4",
         "generator.superres.conv_clamp=256", "discriminator.num_fp16_res=4", "discriminator.conv_clamp=256"],
    )
    return TriPlaneGenerator(preset.generator).eval(), DualDiscriminator(preset.discriminator).eval()


def measure(mode: str) -> dict[str, float]:
    """Relative errors of every component in ``mode`` ("fp16" blocks or "bf16" autocast) against fp32."""
    G, D = _models()
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1))
    c = camera_labels([-0.2, 0.3], pitch=-0.1)
    with torch.no_grad(), _fp16_blocks(False):
        ws = G.mapping(z, c)
        full = G(z, c, noise_mode="const")
        rgb, feat = full["image_raw"], full["feature_image"]

    def run(reduced: bool) -> dict[str, torch.Tensor]:
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=reduced and mode == "bf16")
        with _fp16_blocks(reduced and mode == "fp16"), autocast:
            with torch.no_grad():
                out = {
                    "planes": G.synthesize_planes(ws, noise_mode="const"),
                    "sr_image": G.superresolution(rgb, feat, ws),
                    "image": G(z, c, noise_mode="const")["image"],
                }
            img = {"image": full["image"].clone().requires_grad_(), "image_raw": full["image_raw"].clone()}
            logits = D(img, c)
            (r1,) = torch.autograd.grad(logits.sum(), [img["image"]], create_graph=True)
            params = list(D.parameters())
            grads = torch.autograd.grad(r1.square().sum(), params, allow_unused=True)
        out["logits"], out["r1_grad"] = logits, r1
        out["r1_param_grad"] = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                                          for g, p in zip(grads, params, strict=False)])
        for name, value in out.items():
            assert torch.isfinite(value).all(), f"{mode} {name} is not finite"
        return out

    want, got = run(False), run(True)
    return {k: _rel(got[k], want[k]) for k in want}


def test_fp16_blocks_of_g_sr_and_d_match_fp32():
    _, D = _models()
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad(), _fp16_blocks(True):
        x, _ = D.b64(None, D.prepare_input({"image": img, "image_raw": img[:, :, ::2, ::2]}))
    assert x.dtype == torch.float16  # the fp16 path really runs on the CPU here
    errs = measure("fp16")
    assert all(errs[k] < TOL[k][0] for k in TOL), errs


def test_bf16_autocast_of_g_sr_and_d_matches_fp32():
    errs = measure("bf16")
    assert all(errs[k] < TOL[k][1] for k in TOL), errs


def test_conv_clamp_keeps_fp16_activations_finite():
    """Huge inputs: with conv_clamp 256 the fp16 block stays finite and bounded; without it fp16 overflows."""
    _, D = _models()
    img = {"image": torch.full((2, 3, 64, 64), 3e4), "image_raw": torch.full((2, 3, 32, 32), -3e4)}
    with torch.no_grad(), _fp16_blocks(True):
        x, _ = D.b64(None, D.prepare_input(img))
        assert x.dtype == torch.float16 and torch.isfinite(x).all() and float(x.abs().max()) < 1e3
        for module in D.b64.modules():
            if hasattr(module, "conv_clamp"):
                module.conv_clamp = None
        x, _ = D.b64(None, D.prepare_input(img))
    assert not torch.isfinite(x).all()
