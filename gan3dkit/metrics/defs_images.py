"""Registered image metrics: FID, KID, precision/recall, pixel and perceptual reconstruction, identity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from . import image as im
from .context import EvalContext
from .identity import identity_similarity, make_embedder
from .registry import MetricResult, register_metric
from .sampling import camera_ypr, render_fakes
from .stats import fid_from_features, kid, precision_recall


def _real_protocol(ctx: EvalContext) -> str:
    mirror = " incl. mirrored copies" if ctx.opts.mirror else ""
    return f"reals: {ctx.real_count()} dataset images{mirror} (max_real {ctx.opts.max_real})"


@register_metric("fid", "fid", 50000, "Frechet Inception Distance (StyleGAN3 fid50k_full protocol)")
def fid(ctx: EvalContext) -> MetricResult:
    n = ctx.num_for(50000)
    real, fake = ctx.real_features("inception"), ctx.fake_features("inception", n)
    net = ctx.feature_net("inception")
    return MetricResult("fid", fid_from_features(real.numpy(), fake.numpy()), n, net.description,
                        f"{ctx.fakes_protocol()}; {_real_protocol(ctx)}; uint8 -> NVIDIA bilinear resize to 299 -> "
                        "(x-128)/128 -> pool3 2048-d; covariance with 1/N", extras={"num_real": len(real)})


@register_metric("kid", "fid", 50000, "Kernel Inception Distance (StyleGAN3 kid50k_full: 100 subsets of <= 1000)")
def kid_metric(ctx: EvalContext) -> MetricResult:
    n = ctx.num_for(50000)
    real, fake = ctx.real_features("inception"), ctx.fake_features("inception", n)
    mean, std = kid(real.numpy(), fake.numpy(), ctx.opts.kid_subsets, ctx.opts.kid_subset_size, ctx.opts.seed)
    m = min(len(real), len(fake), ctx.opts.kid_subset_size)
    return MetricResult("kid", mean, n, ctx.feature_net("inception").description,
                        f"{ctx.fakes_protocol()}; {_real_protocol(ctx)}; unbiased MMD^2, cubic polynomial kernel, "
                        f"{ctx.opts.kid_subsets} subsets of {m}; raw value (EG3D's table shows x1000)",
                        extras={"std": std, "x1000": mean * 1000, "num_real": len(real), "subset_size": m})


@register_metric("pr", "fid", 50000, "Improved precision/recall, k=3 (StyleGAN3 pr50k3_full; feature net selectable)")
def pr(ctx: EvalContext) -> list[MetricResult]:
    n, kind = ctx.num_for(50000), ctx.opts.pr_features
    real, fake = ctx.real_features(kind), ctx.fake_features(kind, n)
    precision, recall = precision_recall(real.numpy(), fake.numpy(), k=ctx.opts.pr_k)
    desc = ctx.feature_net(kind).description
    proto = (f"{ctx.fakes_protocol()}; {_real_protocol(ctx)}; k={ctx.opts.pr_k} nearest-neighbour balls in {kind} "
             f"feature space (StyleGAN uses NVIDIA's VGG16: --pr-features vgg16)")
    extras = {"num_real": len(real), "k": ctx.opts.pr_k}
    return [MetricResult("pr_precision", precision, n, desc, proto, True, extras=dict(extras)),
            MetricResult("pr_recall", recall, n, desc, proto, True, extras=dict(extras))]


# ---------------------------------------------------------------------------------------------- reconstruction
def _load_predictions(ctx: EvalContext) -> tuple[Tensor, Tensor, int]:
    """(pred uint8 [N, 3, H, W], target uint8, missing count): files <name>.png or <index:06d>.png per sample."""
    folder = Path(ctx.opts.pred or "")
    if not folder.is_dir():
        raise FileNotFoundError(f"--pred {folder} is not a folder of predicted images")
    has_name = ctx.has_fields("name")
    preds, targets, missing = [], [], 0
    limit = ctx.opts.num or len(ctx.reader)
    for i in range(len(ctx.reader)):
        if len(preds) >= limit:
            break
        sample = ctx.reader.read(i, ["image", "name"] if has_name else ["image"])
        cands = ([folder / f"{sample['name']}.png"] if has_name else []) + [folder / f"{i:06d}.png"]
        path = next((c for c in cands if c.is_file()), None)
        if path is None:
            missing += 1
            continue
        pred = np.asarray(Image.open(path).convert("RGB"))
        if pred.shape != sample["image"].shape:
            raise ValueError(f"{path}: shape {pred.shape} differs from the dataset image {sample['image'].shape}")
        preds.append(torch.from_numpy(pred.transpose(2, 0, 1).copy()))
        targets.append(torch.from_numpy(np.ascontiguousarray(sample["image"].transpose(2, 0, 1))))
    if not preds:
        raise FileNotFoundError(f"no predictions found in {folder} (expected <name>.png or <index:06d>.png)")
    return torch.stack(preds), torch.stack(targets), missing


def recon_pairs(ctx: EvalContext) -> tuple[Tensor, Tensor, str, dict[str, int]]:
    """(pred, target) float [N, 3, R, R] in [0, 1], the pairing protocol, extras."""

    def build() -> tuple[Tensor, Tensor, str, dict[str, int]]:
        if ctx.opts.pred:
            pred, target, missing = _load_predictions(ctx)
            proto, extras = f"input-view reconstruction: {ctx.opts.pred} vs dataset images", {"missing": missing}
            pred, target = im.to_unit(pred), im.to_unit(target)
        else:
            ctx.require_generator("reconstruction")
            f = ctx.fakes(ctx.num_for(1024))
            pred = im.to_unit(f["image"])
            target = im.resize(im.to_unit(f["image_raw"]), pred.shape[-1]).clamp(0, 1)
            proto = ("checkpoint mode: super-resolved image vs its raw neural rendering (bilinear upsampled) -- the "
                     f"SR's departure from the 3D-consistent render; {ctx.fakes_protocol()}")
            extras = {}
        if ctx.opts.recon_res:
            pred, target = im.resize(pred, ctx.opts.recon_res), im.resize(target, ctx.opts.recon_res)
            proto += f"; both resized to {ctx.opts.recon_res}"
        return pred, target, proto, extras

    return ctx.memo("recon_pairs", build, "reconstruction pairs")


def _recon_result(name: str, values: Tensor, proto: str, extras: dict, network: str = "none",
                  higher: bool = False) -> MetricResult:
    return MetricResult(name, im.finite_mean(values), len(values), network, proto, higher, extras=dict(extras))


@register_metric("psnr", "reconstruction", 1024, "PSNR in dB on [0, 1] images (mean of per-image PSNR)")
def psnr(ctx: EvalContext) -> MetricResult:
    p, t, proto, ex = recon_pairs(ctx)
    v = im.psnr(p, t, 1.0)
    return _recon_result("psnr", v, f"{proto}; range [0, 1], 10 log10(1/MSE) per image, mean over finite",
                         {**ex, "infinite": int((~torch.isfinite(v)).sum())}, higher=True)


@register_metric("ssim", "reconstruction", 1024, "SSIM, Gaussian 11x11 sigma 1.5, [0, 1] range")
def ssim(ctx: EvalContext) -> MetricResult:
    p, t, proto, ex = recon_pairs(ctx)
    return _recon_result("ssim", im.ssim(p, t, 1.0), f"{proto}; range [0, 1]; Gaussian window 11 sigma 1.5, "
                         "K=(0.01, 0.03), valid region, mean over channels", ex, higher=True)


@register_metric("ms_ssim", "reconstruction", 1024, "MS-SSIM (pytorch-msssim definition), [0, 1] range")
def ms_ssim(ctx: EvalContext) -> MetricResult:
    p, t, proto, ex = recon_pairs(ctx)
    levels = im.ms_ssim_levels(min(p.shape[-2:]))
    note = "5 scales" if levels == 5 else f"{levels} scales (images <= 160 px; weights renormalised)"
    return _recon_result("ms_ssim", im.ms_ssim(p, t, 1.0), f"{proto}; range [0, 1]; {note}",
                         {**ex, "levels": levels}, higher=True)


@register_metric("mse", "reconstruction", 1024, "MSE on [0, 1] images (x4 for the [-1, 1] range of TriPlaneNet)")
def mse(ctx: EvalContext) -> MetricResult:
    p, t, proto, ex = recon_pairs(ctx)
    v = im.mse(p, t)
    return _recon_result("mse", v, f"{proto}; range [0, 1] (TriPlaneNet's [-1, 1] value = 4x, in extras)",
                         {**ex, "mse_range_pm1": float(v.mean() * 4)})


def _perceptual(ctx: EvalContext, which: str):  # noqa: ANN202
    from .perceptual import DISTS, LPIPS

    def build():  # noqa: ANN202
        if which == "lpips":
            return LPIPS(ctx.opts.lpips_net, ctx.opts.lpips_backbone, random_backbone=ctx.opts.random_backbone)
        return DISTS(ctx.opts.dists_backbone, random_backbone=ctx.opts.random_backbone)

    return ctx.memo(f"net:{which}", build, f"load {which}")


def _batched(fn, x: Tensor, y: Tensor, batch: int = 32) -> Tensor:  # noqa: ANN001
    return torch.cat([fn(x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)])


@register_metric("lpips", "reconstruction", 1024, "LPIPS v0.1 (alex default) with the lpips package's heads")
def lpips(ctx: EvalContext) -> MetricResult:
    p, t, proto, ex = recon_pairs(ctx)
    net = _perceptual(ctx, "lpips")
    v = _batched(net, p * 2 - 1, t * 2 - 1)
    note = "" if net.calibrated else " -- RANDOM BACKBONE: not the calibrated LPIPS, do not compare with papers"
    return _recon_result("lpips", v, f"{proto}; inputs [-1, 1]{note}", {**ex, "calibrated": net.calibrated},
                         net.description)


@register_metric("dists", "reconstruction", 1024, "DISTS (VGG16 + released alpha/beta)")
def dists(ctx: EvalContext) -> MetricResult:
    p, t, proto, ex = recon_pairs(ctx)
    net = _perceptual(ctx, "dists")
    v = _batched(net, p, t)
    note = "" if net.calibrated else " -- RANDOM BACKBONE: not the calibrated DISTS, do not compare with papers"
    return _recon_result("dists", v, f"{proto}; inputs [0, 1]{note}", {**ex, "calibrated": net.calibrated},
                         net.description)


# ---------------------------------------------------------------------------------------------- identity
@register_metric("id", "identity", 1024, "Identity similarity (cosine of face embeddings); failures counted")
def identity(ctx: EvalContext) -> MetricResult:
    emb = ctx.memo("net:id", lambda: make_embedder(ctx.opts.id_embedder, ctx.opts.arcface, ctx.opts.device),
                   "load identity embedder")
    if ctx.opts.pred:
        a, b, missing = ctx.memo("id_pred", lambda: _load_predictions(ctx), "reconstruction pairs")
        proto, extras = f"input-view identity: {ctx.opts.pred} vs dataset images", {"missing": missing}
    else:
        G = ctx.require_generator("id")
        n = ctx.num_for(1024)
        f = ctx.fakes(n)
        a, cams_a = f["image"], f["camera"]
        order = torch.randperm(n, generator=torch.Generator().manual_seed(ctx.opts.seed + 3))
        cams_b = cams_a[order.roll(1)][order.argsort()]  # a derangement of the same cameras (n > 1)
        with ctx.shared("render second views"):
            b = render_fakes(G, cams_b, ctx.opts.seed, ctx.nrr, ctx.opts.batch, ctx.opts.psi, keep=("image",))["image"]
        proto = ("multi-view consistency (EG3D): each latent rendered at its dataset pose and at another sample's "
                 f"pose; {ctx.fakes_protocol()}")
        gap = (camera_ypr(cams_a, ctx.lookat)[:, 0] - camera_ypr(cams_b, ctx.lookat)[:, 0]).abs()
        extras = {"yaw_gap_mean_deg": float(torch.rad2deg(gap).mean())}
    res = identity_similarity(emb, a, b)
    return MetricResult("id", res["cosine"], len(a), emb.description,
                        f"{proto}; mean cosine over pairs with a face found on both sides",
                        True, extras={**extras, **{k: v for k, v in res.items() if k != "cosine"}})

