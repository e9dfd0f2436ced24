#!/usr/bin/env python3
"""Encoders vs encoder + `--refine N` vs PTI at equal budgets on held-out synthetic heads (true pose, depth and
other views known); one JSON object.

Per held-out head (scene seed --seed, never in G's training set; a true yaw/pitch drawn per head), each encoder
encodes the input view pose-free (its pose head gives the camera). Then:
- `enc`: the encoder alone, rendered at its own camera (input view) and at the true other views;
- `enc+refineN`: `gan3dkit.encoders.encode.refine` (what `encode --refine N` runs: Ko et al. Alg. 3, joint w +
  pose, no tuning) from the encoder's camera, rendered as `encode` renders it;
- `pti-N` (once per head, from the first encoder's camera, kept fixed as PTI does): the W projector then
  generator tuning, with as many optimisation steps in total as `enc+refineN` (PTI's own 450 : 350 split) and
  the same w_avg sample count, so both get the same budget; the measured seconds of both are in the JSON.
Metrics: input-view PSNR / SSIM on [0, 1] at the method's own camera, LPIPS only when a calibrated backbone loads
(`gan3dkit.invert.outputs.metric_lpips`; never a random one), PSNR / SSIM at the true views yaw +-0.4, depth L1 at
the method's camera against the true input-view depth inside the true mask, pose error (rotation geodesic to the
true camera), seconds and CPU seconds per image (1 thread).

Encoders distilled with `--data` are named `<arch>+data`; `--refine '' --no-pti` scores the encoders alone.

Example: python tools/bench_encoder_compare.py --gen G.safetensors --encoders E1.safetensors,E2.safetensors \
    --heads 8 --refine 10,30 --out compare.json --figure compare.png
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("GAN3DKIT_NO_EXTENSION", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_invert import held_out_views, write_report  # tools/ is not a package


def mean_of(rows: list[dict], key: str) -> float | None:
    vals = [np.mean(r[key]) for r in rows if r[key] is not None]
    return float(np.mean(vals)) if vals else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoders", required=True, help="comma-separated distill-encoder checkpoints (same teacher)")
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--seed", type=int, default=12345, help="seed of the held-out scene parameters and poses")
    ap.add_argument("--max-yaw", type=float, default=0.35, help="true yaw ~ U(+-max_yaw) (rad)")
    ap.add_argument("--max-pitch", type=float, default=0.15, help="true pitch ~ U(+-max_pitch) (rad)")
    ap.add_argument("--refine", default="10,30", help="refine step counts N (also PTI's step budgets); '' = none")
    ap.add_argument("--no-pti", action="store_true")
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="inversion config override for refine and PTI, e.g. --set perceptual=none --set "
                    "tune_perceptual=none (offline: the pretrained LPIPS is the default and its absence an error)")
    ap.add_argument("--target", default="heads", choices=["heads", "self"], help="as tools/bench_invert.py")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--figure", default=None, help="PNG: input | recon (each encoder, the first + refine, PTI) | "
                    "novel (same) | true")
    ap.add_argument("--figure-heads", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from gan3dkit.encoders.base import EncoderOutput
    from gan3dkit.encoders.encode import encode_one, refine, to_tensor
    from gan3dkit.encoders.models import load_encoder
    from gan3dkit.generate.views import view_cameras
    from gan3dkit.invert import InvertItem, invert, preset
    from gan3dkit.invert.outputs import metric_lpips, render_at
    from gan3dkit.invert.pose import pose_error
    from gan3dkit.metrics.image import psnr, ssim
    from gan3dkit.prepare.synthetic import sample_params
    from gan3dkit.utils.config import apply_overrides
    from gan3dkit.utils.visual import make_grid
    from gan3dkit.utils.visual import to_uint8_hwc as to_u8

    paths = args.encoders.split(",")
    students = [load_encoder(p) for p in paths]
    names = [f"{cfg.arch}" + ("+data" if cfg.data else "") for _, cfg, _ in students]
    if len(set(names)) < len(names):  # same arch twice (e.g. two budgets): the run folders tell them apart
        names = [f"{n} ({Path(p).parent.name})" for n, p in zip(names, paths, strict=True)]
    G = students[0][0].teacher.G  # every encoder checkpoint carries its teacher; all must share it
    nrr = students[0][0].teacher.nrr
    sums = {sum(float(p.double().sum()) for p in st.teacher.G.parameters()) for st, _, _ in students}
    if len(sums) != 1:
        raise SystemExit("error: the encoders were distilled from different generators")
    lp, lp_note = metric_lpips()
    refine_steps = [int(n) for n in args.refine.split(",") if n]
    g = torch.Generator().manual_seed(args.seed + 1)
    true_yaw = ((torch.rand(args.heads, generator=g) * 2 - 1) * args.max_yaw).tolist()
    true_pitch = ((torch.rand(args.heads, generator=g) * 2 - 1) * args.max_pitch).tolist()
    params = sample_params("heads", args.heads, torch.Generator().manual_seed(args.seed))

    def metrics(img, depth, cam, gt_img, gt_depth, gt_mask, novel, true_cam):
        x, y = (img.clamp(-1, 1) + 1) / 2, (gt_img[:1] + 1) / 2
        nx, ny = (novel.clamp(-1, 1) + 1) / 2, (gt_img[1:] + 1) / 2
        m = {"input_psnr": float(psnr(x, y)[0]), "input_ssim": float(ssim(x, y)[0]),
             "input_lpips": float(lp(img.clamp(-1, 1), gt_img[:1])[0]) if lp is not None else None,
             "novel_psnr": [float(v) for v in psnr(nx, ny)], "novel_ssim": [float(v) for v in ssim(nx, ny)],
             "depth_l1_in_mask": float((depth - gt_depth).abs()[gt_mask].mean()) if gt_mask.any() else None,
             "pose_error_deg": pose_error(cam, true_cam)["rotation_deg"]}
        return m

    def render_student(st, out, cam, novel_cams):
        rec = st.render(out, cam, nrr)
        k = len(novel_cams)
        rep = EncoderOutput(out.planes[:1].expand(k, -1, -1, -1, -1),
                            None if out.ws is None else out.ws[:1].expand(k, -1, -1))
        return rec["image"], rec["image_depth"], st.render(rep, novel_cams, nrr)["image"]

    rows, figure, pti_losses = [], [], None
    t_all = time.perf_counter()
    for h in range(args.heads):
        yaws = [true_yaw[h], true_yaw[h] + 0.4, true_yaw[h] - 0.4]
        cams = view_cameras(G, yaws, true_pitch[h], "cpu").to_label()
        gt, gt_img, gt_depth, gt_mask = held_out_views(G, cams, args.target, params[h : h + 1], args.seed + h)
        image = gt["image"][0]
        true = cams[:1]
        fig = {"input": image, "true_novel": gt["image"][1]}
        first_cam = None
        for e, (st, _cfg, _) in enumerate(students):
            x = to_tensor(image, st.encoder.cfg.input_resolution, torch.device("cpu"))
            cpu0 = time.process_time()
            out, cam, secs = encode_one(st, x, None)
            enc_cpu = time.process_time() - cpu0
            with torch.no_grad():
                img, dep, nov = render_student(st, out, cam, cams[1:])
            row = {"head": h, "method": f"{names[e]}", "family": "encoder", "encoder": names[e], "refine": 0,
                   "seconds": secs, "cpu_seconds": enc_cpu, "true_yaw": true_yaw[h], "true_pitch": true_pitch[h],
                   **metrics(img, dep, cam, gt_img, gt_depth, gt_mask, nov, true)}
            rows.append(row)
            tag = "enc" if e == 0 else f"enc{e}"
            fig[tag], fig[f"{tag}_novel"] = to_u8(img)[0], to_u8(nov[:1])[0]
            if e == 0:
                first_cam, enc0_secs = cam, secs
            for n in refine_steps:
                cpu0 = time.process_time()
                out_r, cam_r, rep = refine(st, image, cam, n, f"head{h}", out, tuple(args.sets))
                r_cpu = time.process_time() - cpu0
                with torch.no_grad():
                    img, dep, nov = render_student(st, out_r, cam_r, cams[1:])
                rows.append({"head": h, "method": f"{names[e]}+refine{n}", "family": "encoder+refine",
                             "encoder": names[e], "refine": n, "seconds": secs + rep["seconds"],
                             "cpu_seconds": enc_cpu + r_cpu, "refine_seconds": rep["seconds"],
                             "w_start": rep["w_start"],
                             **metrics(img, dep, cam_r, gt_img, gt_depth, gt_mask, nov, true)})
                if e == 0 and n == refine_steps[-1]:
                    fig["refine"], fig["refine_novel"] = to_u8(img)[0], to_u8(nov[:1])[0]
                print(f"head {h} {rows[-1]['method']}: psnr {rows[-1]['input_psnr']:.2f} novel "
                      f"{np.mean(rows[-1]['novel_psnr']):.2f} pose {rows[-1]['pose_error_deg']:.1f} deg "
                      f"{rows[-1]['seconds']:.1f} s", file=sys.stderr)
        if not args.no_pti:
            for n in refine_steps:
                cfg = preset("pti")
                cfg.projector.steps = max(1, round(n * 450 / 800))
                cfg.tune.steps = n - cfg.projector.steps
                cfg.projector.w_avg_samples = min(preset("ko", 3).projector.w_avg_samples, 256)  # as refine
                cfg = apply_overrides(cfg, list(args.sets))
                item = InvertItem(f"head{h}", image, first_cam.to_label()[0].numpy().astype(np.float32), "encoder pose")
                cpu0 = time.process_time()
                t0 = time.perf_counter()
                inv = invert(G, item, cfg)
                secs, cpu = time.perf_counter() - t0 + enc0_secs, time.process_time() - cpu0
                at = render_at(inv.generator, inv.ws, inv.camera, nrr)
                nov = render_at(inv.generator, inv.ws, cams[1:], nrr)["image"]
                rows.append({"head": h, "method": f"pti-{n}", "family": "pti", "encoder": f"{names[0]} (camera)",
                             "refine": n, "projector_steps": cfg.projector.steps, "tune_steps": cfg.tune.steps,
                             "seconds": secs, "cpu_seconds": cpu,
                             **metrics(at["image"], at["image_depth"], inv.camera, gt_img, gt_depth, gt_mask, nov,
                                       true)})
                pti_losses = inv.report["losses"]
                if n == refine_steps[-1]:
                    fig["pti"], fig["pti_novel"] = to_u8(at["image"])[0], to_u8(nov[:1])[0]
                print(f"head {h} pti-{n}: psnr {rows[-1]['input_psnr']:.2f} novel "
                      f"{np.mean(rows[-1]['novel_psnr']):.2f} {secs:.1f} s", file=sys.stderr)
        if h < args.figure_heads:
            figure.append(fig)
    summary = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        sel = [r for r in rows if r["method"] == method]
        keys = ("input_psnr", "input_ssim", "input_lpips", "novel_psnr", "novel_ssim", "depth_l1_in_mask",
                "pose_error_deg", "seconds", "cpu_seconds")
        summary[method] = {k: mean_of(sel, k) for k in keys}
        summary[method]["heads"] = len(sel)
    doc = {"encoders": {n: {"ckpt": p, "steps": hd["progress"]["step"], "size": c.size, "data": c.data or None,
                            "params_M": sum(q.numel() for q in s.encoder.parameters()) / 1e6,
                            "provenance": {k: v for k, v in s.provenance.items() if isinstance(v, str)}}
                        for n, p, (s, c, hd) in zip(names, paths, students, strict=False)},
           "generator": students[0][1].generator, "lpips": lp.description if lp is not None else None,
           "lpips_note": lp_note, "pti_losses": pti_losses}
    write_report(doc, args, t_all, summary, rows)
    if args.figure and figure:
        from PIL import Image

        more = [f"enc{e}" for e in range(1, len(students))]
        keys = [k for k in ("input", "enc", *more, "refine", "pti", "enc_novel", *(f"{m}_novel" for m in more),
                            "refine_novel", "pti_novel", "true_novel") if k in figure[0]]
        Image.fromarray(make_grid([f[k] for f in figure for k in keys], len(keys))).save(args.figure)


if __name__ == "__main__":
    main()
