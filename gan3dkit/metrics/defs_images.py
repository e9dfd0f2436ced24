"""Registered image metrics: FID, KID, precision/recall, pixel and perceptual reconstruction, identity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from . import image as im
from .context import EvalContext, Extractor, ExtractorSpec, extractor
from .features import extract
from .identity import Embedder, embed_all, make_embedder, similarity_from_embeddings
from .registry import MetricResult, MetricSpec, metric
from .sampling import batch_seed, camera_ypr, to_uint8
from .stats import fid_from_features, kid, precision_recall

if TYPE_CHECKING:
    from .perceptual import DISTS, LPIPS

RECON = ("psnr", "ssim", "ms_ssim", "mse", "lpips", "dists")


def _real_protocol(ctx: EvalContext) -> str:
    mirror = " incl. mirrored copies" if ctx.opts.mirror else ""
    return f"reals: {ctx.real_count()} dataset images{mirror} (max_real {ctx.opts.max_real})"


# ---------------------------------------------------------------------------------------------- extractors
@extractor("inception")
def _inception(ctx: EvalContext) -> Extractor:
    net = ctx.feature_net("inception")
    return lambda b: {"feat": extract(net, b["image"])}


@extractor("vgg16")
def _vgg16(ctx: EvalContext) -> Extractor:
    net = ctx.feature_net("vgg16")
    return lambda b: {"feat": extract(net, b["image"])}


def _ckpt_pair(ctx: EvalContext, b: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """Checkpoint-mode reconstruction pair: SR image vs its raw render upsampled, both float [0, 1]."""
    pred = im.to_unit(b["image"])
    target = im.resize(im.to_unit(b["image_raw"]), pred.shape[-1]).clamp(0, 1)
    if ctx.opts.recon_res:
        pred, target = im.resize(pred, ctx.opts.recon_res), im.resize(target, ctx.opts.recon_res)
    return pred, target


def pair_values(ctx: EvalContext, kind: str, pred: Tensor, target: Tensor) -> Tensor:  # float [0, 1] x2 -> [B]
    if kind == "psnr":
        return im.psnr(pred, target, 1.0)
    if kind == "ssim":
        return im.ssim(pred, target, 1.0)
    if kind == "ms_ssim":
        return im.ms_ssim(pred, target, 1.0)
    if kind == "mse":
        return im.mse(pred, target)
    if kind == "lpips":
        return _perceptual(ctx, "lpips")(pred * 2 - 1, target * 2 - 1)
    return _perceptual(ctx, "dists")(pred, target)


def _recon_factory(kind: str) -> Callable[[EvalContext], Extractor]:
    return lambda ctx: (lambda b: {"v": pair_values(ctx, kind, *_ckpt_pair(ctx, b)).float()})


_RECON_EXTRACTORS = tuple(extractor(f"recon:{kind}")(_recon_factory(kind)) for kind in RECON)


@extractor("id")
def _id_views(ctx: EvalContext) -> Extractor:
    """Embeddings of each fake and of the same latent at another sample's camera (EG3D multi-view consistency)."""
    emb = _embedder(ctx)
    cams = ctx.cameras(ctx.max_fakes)
    n = len(cams)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(ctx.opts.seed + 3))
    cams_b = cams[order.roll(1)][order.argsort()] if n > 1 else cams  # a derangement of the drawn cameras
    G = ctx.require_generator("id")

    def fn(b: dict[str, Any]) -> dict[str, Tensor]:
        cb = cams_b[b["start"]:b["start"] + len(b["image"])]
        second = []
        for i in range(0, len(cb), ctx.opts.batch):  # render at the generator batch size
            torch.manual_seed(batch_seed(ctx.opts.seed + 4, b["start"] + i))
            ws, c = b["ws"][i:i + ctx.opts.batch], cb[i:i + ctx.opts.batch].to(b["ws"].device)
            second.append(to_uint8(G.synthesis(ws, c, neural_rendering_resolution=ctx.nrr)["image"]).cpu())
        ea, eb = embed_all(emb, b["image"]), embed_all(emb, torch.cat(second))
        gap = (camera_ypr(b["camera"], ctx.lookat)[:, 0] - camera_ypr(cb, ctx.lookat)[:, 0]).abs()
        return {"a": ea, "b": eb, "yaw_gap": gap}

    return fn


def _embedder(ctx: EvalContext) -> Embedder:
    return ctx.memo("net:id", lambda: make_embedder(ctx.opts.id_embedder, ctx.opts.arcface, ctx.opts.device),
                    "load identity embedder")


def _perceptual(ctx: EvalContext, which: str) -> LPIPS | DISTS:
    from .perceptual import DISTS, LPIPS

    def build():
        if which == "lpips":
            return LPIPS(ctx.opts.lpips_net, ctx.opts.lpips_backbone, random_backbone=ctx.opts.random_backbone)
        return DISTS(ctx.opts.dists_backbone, random_backbone=ctx.opts.random_backbone)

    return ctx.memo(f"net:{which}", build, f"load {which}")


# ---------------------------------------------------------------------------------------------- distribution metrics
@metric("fid", "fid", 50000, "Frechet Inception Distance (StyleGAN3 fid50k_full protocol)",
                 needs=("inception",))
def fid(ctx: EvalContext) -> MetricResult:
    n = ctx.num_for(50000)
    real, fake = ctx.real_features("inception"), ctx.fake_out("inception", n)["feat"]
    net = ctx.feature_net("inception")
    return MetricResult("fid", fid_from_features(real.numpy(), fake.numpy()), n, net.description,
                        f"{ctx.fakes_protocol()}; {_real_protocol(ctx)}; uint8 -> NVIDIA bilinear resize to 299 -> "
                        "(x-128)/128 -> pool3 2048-d; covariance with 1/N", extras={"num_real": len(real)})


@metric("kid", "fid", 50000, "Kernel Inception Distance (StyleGAN3 kid50k_full: 100 subsets of <= 1000)",
                 needs=("inception",))
def kid_metric(ctx: EvalContext) -> MetricResult:
    n = ctx.num_for(50000)
    real, fake = ctx.real_features("inception"), ctx.fake_out("inception", n)["feat"]
    mean, std = kid(real.numpy(), fake.numpy(), ctx.opts.kid_subsets, ctx.opts.kid_subset_size, ctx.opts.seed)
    m = min(len(real), len(fake), ctx.opts.kid_subset_size)
    return MetricResult("kid", mean, n, ctx.feature_net("inception").description,
                        f"{ctx.fakes_protocol()}; {_real_protocol(ctx)}; unbiased MMD^2, cubic polynomial kernel, "
                        f"{ctx.opts.kid_subsets} subsets of {m}; raw value (EG3D's table shows x1000)",
                        extras={"std": std, "x1000": mean * 1000, "num_real": len(real), "subset_size": m})


@metric("pr", "fid", 50000, "Improved precision/recall, k=3 (StyleGAN3 pr50k3_full; feature net selectable)",
                 needs=lambda opts: (opts.pr_features,))
def pr(ctx: EvalContext) -> list[MetricResult]:
    n, kind = ctx.num_for(50000), ctx.opts.pr_features
    real, fake = ctx.real_features(kind), ctx.fake_out(kind, n)["feat"]
    precision, recall = precision_recall(real.numpy(), fake.numpy(), k=ctx.opts.pr_k)
    desc = ctx.feature_net(kind).description
    proto = (f"{ctx.fakes_protocol()}; {_real_protocol(ctx)}; k={ctx.opts.pr_k} nearest-neighbour balls in {kind} "
             f"feature space (StyleGAN uses NVIDIA's VGG16: --pr-features vgg16)")
    extras = {"num_real": len(real), "k": ctx.opts.pr_k}
    return [MetricResult("pr_precision", precision, n, desc, proto, True, extras=dict(extras)),
            MetricResult("pr_recall", recall, n, desc, proto, True, extras=dict(extras))]


# ---------------------------------------------------------------------------------------------- reconstruction
def load_predictions(ctx: EvalContext) -> tuple[Tensor, Tensor, int]:
    """(pred uint8 [N, 3, H, W], target uint8, missing count): files <name>.png or <index:06d>.png per sample."""

    def build() -> tuple[Tensor, Tensor, int]:
        folder = Path(ctx.opts.pred or "")
        if not folder.is_dir():
            raise FileNotFoundError(f"--pred {folder} is not a folder of predicted images")
        has_name = ctx.has_fields("name")
        preds: list[Tensor] = []
        targets: list[Tensor] = []
        missing = 0
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

    return ctx.memo("predictions", build, "load predictions")


def _recon(ctx: EvalContext, kind: str) -> tuple[Tensor, str, dict[str, Any]]:
    """Per-pair values of a reconstruction metric, its pairing protocol and extras."""
    if ctx.opts.pred:
        pred, target, missing = load_predictions(ctx)
        values = []
        for i in range(0, len(pred), 16):
            p, t = im.to_unit(pred[i:i + 16]), im.to_unit(target[i:i + 16])
            if ctx.opts.recon_res:
                p, t = im.resize(p, ctx.opts.recon_res), im.resize(t, ctx.opts.recon_res)
            values.append(pair_values(ctx, kind, p, t).float())
        proto, extras = f"input-view reconstruction: {ctx.opts.pred} vs dataset images", {"missing": missing}
        values_t = torch.cat(values)
    else:
        values_t = ctx.fake_out(f"recon:{kind}", ctx.num_for(1024))["v"]
        proto = ("checkpoint mode: super-resolved image vs its raw neural rendering (bilinear upsampled) -- the "
                 f"SR's departure from the 3D-consistent render; {ctx.fakes_protocol()}")
        extras = {}
    if ctx.opts.recon_res:
        proto += f"; both resized to {ctx.opts.recon_res}"
    return values_t, proto, extras


def _recon_needs(kind: str) -> Callable[[Any], tuple[str, ...]]:
    return lambda opts: () if opts.pred else (f"recon:{kind}",)


def _result(name: str, values: Tensor, proto: str, extras: dict, network: str = "none",
            higher: bool = False) -> MetricResult:
    return MetricResult(name, im.finite_mean(values), len(values), network, proto, higher, extras=dict(extras))


@metric("psnr", "reconstruction", 1024, "PSNR in dB on [0, 1] images (mean of per-image PSNR)",
                 needs=_recon_needs("psnr"))
def psnr(ctx: EvalContext) -> MetricResult:
    v, proto, ex = _recon(ctx, "psnr")
    return _result("psnr", v, f"{proto}; range [0, 1], 10 log10(1/MSE) per image, mean over finite",
                   {**ex, "infinite": int((~torch.isfinite(v)).sum())}, higher=True)


@metric("ssim", "reconstruction", 1024, "SSIM, Gaussian 11x11 sigma 1.5, [0, 1] range",
                 needs=_recon_needs("ssim"))
def ssim(ctx: EvalContext) -> MetricResult:
    v, proto, ex = _recon(ctx, "ssim")
    return _result("ssim", v, f"{proto}; range [0, 1]; Gaussian window 11 sigma 1.5, K=(0.01, 0.03), valid region, "
                   "mean over channels", ex, higher=True)


@metric("ms_ssim", "reconstruction", 1024, "MS-SSIM (pytorch-msssim definition), [0, 1] range",
                 needs=_recon_needs("ms_ssim"))
def ms_ssim(ctx: EvalContext) -> MetricResult:
    v, proto, ex = _recon(ctx, "ms_ssim")
    size = ctx.opts.recon_res or (ctx.G.img_resolution if (ctx.G is not None and not ctx.opts.pred)
                                  else int(ctx.meta["resolution"]))
    levels = im.ms_ssim_levels(size)
    note = "5 scales" if levels == 5 else f"{levels} scales (images <= 160 px; weights renormalised)"
    return _result("ms_ssim", v, f"{proto}; range [0, 1]; {note}", {**ex, "levels": levels}, higher=True)


@metric("mse", "reconstruction", 1024, "MSE on [0, 1] images (x4 for the [-1, 1] range of TriPlaneNet)",
                 needs=_recon_needs("mse"))
def mse(ctx: EvalContext) -> MetricResult:
    v, proto, ex = _recon(ctx, "mse")
    return _result("mse", v, f"{proto}; range [0, 1] (TriPlaneNet's [-1, 1] value = 4x, in extras)",
                   {**ex, "mse_range_pm1": float(v.double().mean() * 4)})


@metric("lpips", "reconstruction", 1024, "LPIPS v0.1 (alex default) with the lpips package's heads",
                 needs=_recon_needs("lpips"))
def lpips(ctx: EvalContext) -> MetricResult:
    return _perceptual_result(ctx, "lpips", "[-1, 1]")


@metric("dists", "reconstruction", 1024, "DISTS (VGG16 + released alpha/beta)", needs=_recon_needs("dists"))
def dists(ctx: EvalContext) -> MetricResult:
    return _perceptual_result(ctx, "dists", "[0, 1]")


def _perceptual_result(ctx: EvalContext, name: str, inputs: str) -> MetricResult:
    """LPIPS/DISTS result; a random (uncalibrated) backbone is said in the protocol and in extras."""
    v, proto, ex = _recon(ctx, name)
    net = _perceptual(ctx, name)
    note = ("" if net.calibrated
            else f" -- RANDOM BACKBONE: not the calibrated {name.upper()}, do not compare with papers")
    return _result(name, v, f"{proto}; inputs {inputs}{note}", {**ex, "calibrated": net.calibrated}, net.description)


# ---------------------------------------------------------------------------------------------- identity
@metric("id", "identity", 1024, "Identity similarity (cosine of face embeddings); failures counted",
                 needs=lambda opts: () if opts.pred else ("id",))
def identity(ctx: EvalContext) -> MetricResult:
    emb = _embedder(ctx)
    if ctx.opts.pred:
        pred, target, missing = load_predictions(ctx)
        with ctx.shared("identity embeddings"):
            ea, eb = embed_all(emb, pred), embed_all(emb, target)
        extras: dict[str, Any] = {"missing": missing}
        proto = f"input-view identity: {ctx.opts.pred} vs dataset images"
    else:
        out = ctx.fake_out("id", ctx.num_for(1024))
        ea, eb = out["a"], out["b"]
        proto = ("multi-view consistency (EG3D): each latent rendered at its own camera and at another sample's "
                 f"camera; {ctx.fakes_protocol()}")
        extras = {"yaw_gap_mean_deg": float(torch.rad2deg(out["yaw_gap"]).mean())}
    res = similarity_from_embeddings(ea, eb)
    return MetricResult("id", res["cosine"], len(ea), emb.description,
                        f"{proto}; mean cosine over pairs with a face found on both sides",
                        True, extras={**extras, **{k: v for k, v in res.items() if k != "cosine"}})


#: This module's metrics and fake-sample extractors, in listing order (collected by `catalog`).
METRICS: tuple[MetricSpec, ...] = (fid, kid_metric, pr, psnr, ssim, ms_ssim, mse, lpips, dists, identity)
EXTRACTORS: tuple[ExtractorSpec, ...] = (_inception, _vgg16, *_RECON_EXTRACTORS, _id_views)
