"""Registered geometry metrics: depth error, pose error, pose-distribution JS divergence, NFS and Depth-FID."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import frontal_camera
from ..utils.files import sha256_file
from .context import EvalContext, Extractor, ExtractorSpec, extractor
from .features import extract
from .geometry import depth_nmse, depth_si_errors, depth_to_uint8, non_flatness, pose_errors, render_cut_depth
from .probes import Probe
from .registry import MetricResult, MetricSpec, metric
from .sampling import batch_seed, camera_ypr, iter_real, latents
from .stats import fid_from_features, histogram2d, js_divergence


def _estimator_extras(probe: Probe) -> dict:
    """The estimator's own accuracy on held-out truth, reported beside every result that uses it."""
    return {"estimator": probe.description, "estimator_heldout": dict(probe.heldout),
            "estimator_data": probe.data.get("path")}


@extractor("depth_err")
def _depth_err(ctx: EvalContext) -> Extractor:
    probe = ctx.probe("depth")

    def fn(b: dict) -> dict[str, Tensor]:
        est, mask = probe.predict_depth(b["image"])
        g = F.interpolate(b["image_depth"], size=est.shape[-2:], mode="bilinear", align_corners=False)
        l1, rmse = depth_si_errors(g, est, mask)
        return {"nmse": depth_nmse(g, est, mask), "si_l1": l1, "si_rmse": rmse,
                "valid": mask.flatten(1).float().mean(1)}

    return fn


@extractor("pose_est")
def _pose_est(ctx: EvalContext) -> Extractor:
    probe = ctx.probe("pose")
    return lambda b: {"est": probe.predict_pose(b["image"]), "true": camera_ypr(b["camera"], ctx.lookat)[:, :2]}


@extractor("depth_feat")
def _depth_feat(ctx: EvalContext) -> Extractor:
    net = ctx.feature_net("inception")
    return lambda b: {"feat": extract(net, depth_to_uint8(b["image_depth"]))}


@metric("depth", "geometry", 1024, "Depth error of G's depth vs the depth probe on G's image "
                 "(normalised MSE as PoF3D/Carver; scale/shift-invariant L1 and RMSE as LP3D)", needs=("depth_err",))
def depth(ctx: EvalContext) -> list[MetricResult]:
    n = ctx.num_for(1024)
    probe = ctx.probe("depth")
    out = ctx.fake_out("depth_err", n)
    res = probe.config.resolution
    proto = (f"G depth (ray distance, NRR {ctx.nrr}) bilinearly resized to the probe's {res}px output; "
             "reference = depth probe on G's image; valid = probe foreground")
    extras = {**_estimator_extras(probe), "valid_fraction": float(out["valid"].mean()),
              "nan_samples": int(torch.isnan(out["nmse"]).sum())}
    net = probe.description
    return [MetricResult("depth_nmse", float(out["nmse"].nanmean()), n, net, proto + "; each map standardised over "
                         "valid pixels, mean squared difference (Carver depth_eg3d)", extras=dict(extras)),
            MetricResult("depth_si_l1", float(out["si_l1"].nanmean()), n, net, proto + "; least-squares scale+shift "
                         "of G depth onto the reference, mean |error| in world units", extras=dict(extras)),
            MetricResult("depth_si_rmse", float(out["si_rmse"].nanmean()), n, net, proto + "; same alignment, RMSE "
                         "in world units", extras=dict(extras))]


@metric("pose", "geometry", 1024, "Pose error: pose probe on G's image vs the rendering camera",
                 needs=("pose_est",))
def pose(ctx: EvalContext) -> MetricResult:
    n = ctx.num_for(1024)
    probe = ctx.probe("pose")
    out = ctx.fake_out("pose_est", n)
    errs = pose_errors(out["true"], out["est"])
    proto = (f"{ctx.fakes_protocol()}; true (yaw, pitch) of the rendering camera about {ctx.lookat} vs probe "
             "estimate; R = Ry(yaw) Rx(pitch); value = mean over samples of mean((rotvec_true - rotvec_est)^2) "
             "(Carver pose_eg3d form)")
    extras = {**_estimator_extras(probe), **{f"{k.replace('_abs', '_mae')}": float(v.mean()) for k, v in errs.items()
                                             if k != "rotvec_mse"}}
    return MetricResult("pose", float(errs["rotvec_mse"].mean()), n, probe.description, proto, extras=extras)


def _real_yaw_pitch(ctx: EvalContext, use_truth: bool) -> Tensor:  # [N_real, 2]
    def build() -> Tensor:
        fields = ("ypr",) if use_truth else ("image",)
        parts = []
        for batch in iter_real(ctx.reader, fields, ctx.opts.max_real, ctx.opts.mirror):
            parts.append(batch["ypr"][:, :2] if use_truth else ctx.probe("pose").predict_pose(batch["image"]))
        return torch.cat(parts)

    return ctx.memo(("real_yp", use_truth), build, "real poses")


def _use_truth(ctx: EvalContext, field: str) -> bool:
    if ctx.opts.depth_real == "truth" and not ctx.has_fields(field):
        raise ValueError(f"--depth-real truth: {ctx.data} has no {field!r} field")
    return ctx.opts.depth_real == "truth" or (ctx.opts.depth_real == "auto" and ctx.has_fields(field))


@metric("pose_js", "geometry", 1024, "JS divergence of 2-D (yaw, pitch) histograms: probe on fakes vs "
                 "dataset poses", needs=("pose_est",))
def pose_js(ctx: EvalContext) -> MetricResult:
    n = ctx.num_for(1024)
    probe = ctx.probe("pose")
    fake = ctx.fake_out("pose_est", n)["est"]
    truth = _use_truth(ctx, "ypr")
    real = _real_yaw_pitch(ctx, truth)
    bins = ctx.opts.js_bins
    ranges = []
    for k in range(2):
        lo, hi = float(real[:, k].min()), float(real[:, k].max())
        pad = 0.05 * max(hi - lo, 1e-3)
        ranges.append((lo - pad, hi + pad))
    hr = histogram2d(real[:, 0].numpy(), real[:, 1].numpy(), bins, ranges[0], ranges[1])
    hf = histogram2d(fake[:, 0].numpy(), fake[:, 1].numpy(), bins, ranges[0], ranges[1])
    value = js_divergence(hr, hf, base=2)
    side = "dataset truth (ypr field)" if truth else "the pose probe on real images"
    proto = (f"{ctx.fakes_protocol()}; generated (yaw, pitch) = pose probe on fakes; real = {side}, {len(real)} "
             f"samples; {bins}x{bins} bins over the real range +-5% (yaw {ranges[0][0]:.3f}..{ranges[0][1]:.3f}, "
             f"pitch {ranges[1][0]:.3f}..{ranges[1][1]:.3f} rad), outliers clipped to edge bins; JS in bits (log2)")
    return MetricResult("pose_js", value, n, probe.description, proto,
                        extras={**_estimator_extras(probe), "nats": value * math.log(2), "num_real": len(real),
                                "bins": bins, "yaw_range": ranges[0], "pitch_range": ranges[1]})


@metric("nfs", "geometry", 256, "Non-Flatness Score (3DGP nfs256): mean exp(entropy) of 64-bin depth "
                 "histograms at the frontal camera")
def nfs(ctx: EvalContext) -> MetricResult:
    G = ctx.require_generator("nfs")
    n = ctx.num_for(256)
    prior = ctx.pose_prior()
    cam = frontal_camera(prior.radius, prior.focal, prior.lookat).to_label().float()
    lo, hi = G.renderer.config.ray_start, G.renderer.config.ray_end
    device = next(G.parameters()).device
    z = latents(n, G.z_dim, ctx.opts.seed)
    scores = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for s in range(0, n, ctx.opts.batch):
            torch.manual_seed(batch_seed(ctx.opts.seed + 2, s))
            c = cam.expand(len(z[s:s + ctx.opts.batch]), -1).to(device)
            ws = G.mapping(z[s:s + ctx.opts.batch].to(device), c, truncation_psi=ctx.opts.psi)
            depth_map = render_cut_depth(G, ws, c, G.neural_rendering_resolution if ctx.nrr is None else ctx.nrr,
                                         ctx.opts.nfs_cut_quantile).cpu()
            scores.append(non_flatness(depth_map, lo, hi, ctx.opts.nfs_bins))
            ctx.progress("nfs depth", min(n, s + ctx.opts.batch), n)
    per_latent = torch.cat(scores)
    proto = (f"{n} latents (seed {ctx.opts.seed}) at the frontal camera (radius {prior.radius}, focal {prior.focal}, "
             f"look-at {list(prior.lookat)}), conditioning = rendering camera, psi {ctx.opts.psi}, NRR {ctx.nrr}; "
             "depth "
             f"with cut_quantile {ctx.opts.nfs_cut_quantile} over each batch of {ctx.opts.batch} (3DGP), unnormalised "
             f"sum w z, clamped to [{lo}, {hi}]; {ctx.opts.nfs_bins} bins; entropy in nats; NFS = mean exp(entropy)")
    return MetricResult("nfs", float(per_latent.mean()), n, "none (rendered depth)", proto, True,
                        extras={"std": float(per_latent.std()) if n > 1 else 0.0, "ray_range": [lo, hi]})


@metric("depth_fid", "geometry", 50000, "Depth-FID: FID between rendered depth maps and real depth maps "
                 "(truth or probe), both normalised per map to 8-bit", needs=("depth_feat",))
def depth_fid(ctx: EvalContext) -> MetricResult:
    n = ctx.num_for(50000)
    net = ctx.feature_net("inception")
    truth = _use_truth(ctx, "depth")
    probe = None if truth else ctx.probe("depth")

    def real_feats() -> Tensor:
        parts, total = [], ctx.real_count()
        fields = ("depth", "mask") if truth else ("image",)
        for batch in iter_real(ctx.reader, fields, ctx.opts.max_real, ctx.opts.mirror, batch=32):
            if truth:
                d, valid = batch["depth"], (batch["mask"] > 127) & torch.isfinite(batch["depth"])
            else:
                assert probe is not None
                d, valid = probe.predict_depth(batch["image"])
            parts.append(extract(net, depth_to_uint8(d, valid)))
            ctx.progress("real depth features", sum(len(p) for p in parts), total)
        return torch.cat(parts)

    tag = "depth-truth" if probe is None else f"depth-probe-{sha256_file(probe.path)[:12]}"
    real = ctx.memo(("real_depth", truth), lambda: ctx._cached(tag, net, real_feats), "real depth features")
    fake = ctx.fake_out("depth_feat", n)["feat"]
    side = ("dataset truth depth (mask & finite)" if probe is None
            else f"depth probe on real images ({probe.description})")
    proto = (f"{ctx.fakes_protocol()}; fake = G's depth (ray distance); real = {side}, {len(real)} maps; each map -> "
             "(d_max - d) / (d_max - d_min) over its valid pixels (near white, background 0), uint8, 3 channels; "
             "Inception pool3 as FID")
    extras = {"num_real": len(real), **(_estimator_extras(probe) if probe is not None else {})}
    return MetricResult("depth_fid", fid_from_features(real.numpy(), fake.numpy()), n, net.description, proto,
                        extras=extras)


#: This module's metrics and fake-sample extractors, in listing order (collected by `catalog`).
METRICS: tuple[MetricSpec, ...] = (depth, pose, pose_js, nfs, depth_fid)
EXTRACTORS: tuple[ExtractorSpec, ...] = (_depth_err, _pose_est, _depth_feat)
