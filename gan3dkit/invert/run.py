"""Invert one item end to end (init, projection with or without pose, tuning, outputs) and whole folders / datasets."""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..cameras.camera import Cameras, as_cameras
from ..generate.views import view_cameras
from ..utils.errors import UsageError
from ..utils.files import atomic_save_png, atomic_write_json, remove_stale_temps_in
from ..utils.items import Item, run_items
from .config import InvertConfig
from .delta import save_delta
from .inputs import InvertItem, list_inputs, lmdb_items, load_item, load_lmdb_item
from .losses import build_perceptual
from .outputs import (
    metric_lpips,
    reconstruction_metrics,
    render_at,
    save_npy,
    to_uint8,
    write_depth,
    write_mesh,
    write_orbit,
    write_views,
)
from .pose import EncoderCamera, LearnableCamera, pose_error, pose_summary
from .projector import project
from .tuning import tune_generator
from .warp import WarpFeatures

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator

Stage = Callable[[str, int, int], None]


@dataclass
class Inversion:
    """In-memory result: pivot ws [1, num_ws, w_dim], the final camera, the generator to render with."""

    ws: torch.Tensor
    camera: Cameras
    generator: TriPlaneGenerator
    projected: TriPlaneGenerator
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class Extras:
    """Optional helpers: Ko et al.'s pretrained encoders and user-supplied backbone weight files."""

    pose_encoder: Any = None
    latent_encoder: Any = None
    vgg_weights: str | None = None
    outputs: tuple[str, ...] = ("views", "video", "mesh")
    mesh_resolution: int = 64
    video_frames: int = 24


def _target(image: np.ndarray, device: torch.device) -> torch.Tensor:  # [H, W, 3] uint8 -> [1, 3, H, W] [-1, 1]
    return torch.from_numpy(np.array(image)).to(device).permute(2, 0, 1)[None].float() / 127.5 - 1


def invert(G: TriPlaneGenerator, item: InvertItem, cfg: InvertConfig, extras: Extras | None = None,
           on_stage: Stage | None = None) -> Inversion:
    """Run the configured method on one item (no files written); the report lists what ran and how long."""
    cfg.validate()
    extras = extras or Extras()
    G = copy.deepcopy(G)  # the projector optimises the noise buffers in place; the caller's G stays the base
    device = next(G.parameters()).device
    target = _target(item.image, device)
    notes: list[str] = list(item.notes)
    if item.camera is not None:
        cam0 = torch.from_numpy(np.array(item.camera)).to(device)[None]
    else:
        cam0 = view_cameras(G, [0.0], 0.0, device).to_label()
    if item.camera is None:
        notes.append("no camera given: started from the generator's frontal camera")
    timing: dict[str, float] = {}
    w_init = None
    if cfg.method == "ko":
        t = time.perf_counter()
        if extras.pose_encoder is not None and cfg.optimizes_pose:
            cam0 = extras.pose_encoder.predict_label(target, cam0).detach()
            notes.append("camera initialised by the pose encoder P")
        elif cfg.optimizes_pose:
            notes.append("no --pose-encoder: pose initialised from the given/estimated camera")
        if extras.latent_encoder is not None:
            w_init = extras.latent_encoder.predict_w(target).detach()
            notes.append("w initialised by the latent encoder E (w_avg + delta w)")
        else:
            notes.append("no --latent-encoder: w initialised at w_avg")
        timing["encoders_s"] = time.perf_counter() - t
    start = as_cameras(cam0)  # the input label becomes Cameras once; the pose path and the renderer keep them
    perceptual = build_perceptual(cfg.perceptual, "vgg", extras.vgg_weights, cfg.projector.perceptual_resolution)
    if perceptual.info.note:
        notes.append(f"projector loss: {perceptual.info.note}")
    cam_module: EncoderCamera | LearnableCamera | None = None
    groups: list[dict[str, Any]] | None = None
    warp_feats: WarpFeatures | None = None
    pose_mode = cfg.pose_mode
    if pose_mode != "fixed":
        if extras.pose_encoder is not None and cfg.method == "ko" and cfg.pose.encoder_mode == "finetune":
            P = copy.deepcopy(extras.pose_encoder).requires_grad_(True)
            cam_module = EncoderCamera(P, target, start, cfg.pose.translation).to(device)
            groups = [{"params": list(P.parameters()), "lr": cfg.pose.encoder_lr}]
            notes.append("pose variables: the weights of P, fine-tuned on this image (Ko et al.'s code)")
        else:
            cam_module = LearnableCamera(start, cfg.pose.representation, cfg.pose.translation).to(device)
            groups = [{"params": [cam_module.params], "lr": cfg.pose.lr}]
            dropped = pose_error(start, cam_module())["rotation_deg"]
            if dropped > 0.05:
                notes.append(f"pose representation {cfg.pose.representation!r} cannot hold the given camera's roll: "
                             f"the start differs by {dropped:.2f} deg")
        if cfg.pose.translation:
            groups.append({"params": [cam_module.translation], "lr": cfg.pose.translation_lr})
        if pose_mode == "alternating" and cfg.pose.warp_weight > 0:
            warp_feats = WarpFeatures(cfg.pose.warp_features, extras.vgg_weights).to(device)
            if warp_feats.note and warp_feats.kind == "rgb":
                notes.append(warp_feats.note)
    nrr = None

    def step_cb(name: str):
        return (lambda d, n, rec: on_stage(name, d, n)) if on_stage else None

    proj = project(G, target, start, cfg.projector, perceptual, w_plus=cfg.method == "wplus", pose_mode=pose_mode,
                   camera_module=cam_module, pose_cfg=cfg.pose, pose_params=groups, warp_features=warp_feats,
                   w_init=w_init, deterministic=cfg.deterministic_render, nrr=nrr, on_step=step_cb("projector"))
    timing["projector_s"] = proj.seconds
    G_final = G
    tune_hist: list[dict] = []
    tune_info = None
    if cfg.tunes_generator:
        tp = build_perceptual(cfg.tune_perceptual, "alex", None, cfg.tune.lpips_resolution or target.shape[-1])
        tune_info = tp.info.to_dict()
        if tp.info.note:
            notes.append(f"tuning loss: {tp.info.note}")
        G_final, tune_hist, secs = tune_generator(G, proj.ws, proj.camera, target, cfg.tune, tp,
                                                  deterministic=cfg.deterministic_render, seed=cfg.projector.seed,
                                                  on_step=step_cb("tuning"))
        timing["tuning_s"] = secs
    report = {
        "name": item.name, "method": cfg.method, "algorithm": cfg.algorithm if cfg.method == "ko" else None,
        "pose_mode": pose_mode, "camera_source": item.camera_source, "input": item.info,
        "losses": {"projector": perceptual.info.to_dict(), "tuning": tune_info,
                   "warp_features": None if warp_feats is None else {"kind": warp_feats.kind, "note": warp_feats.note}},
        "pose_before": pose_summary(start), "pose_after": pose_summary(proj.camera),
        "pose_change": pose_error(start, proj.camera),
        "projector": {"steps": len(proj.history), "first": proj.history[0], "last": proj.history[-1]},
        "tuning": {"steps": len(tune_hist), "first": tune_hist[0], "last": tune_hist[-1]} if tune_hist else None,
        "time": timing, "notes": notes,
    }
    return Inversion(ws=proj.ws, camera=proj.camera, generator=G_final, projected=G, report=report)


def write_outputs(G: nn.Module, inv: Inversion, item: InvertItem, out: Path, cfg: InvertConfig, base_ckpt: Path | None,
                  extras: Extras | None = None) -> dict[str, Any]:
    """Everything into `out/`; metrics.json is written last (its presence marks the item done)."""
    extras = extras or Extras()
    t = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    target = _target(item.image, inv.ws.device)
    files: dict[str, Any] = {}
    save_npy(out / "w.npy", inv.ws[0, 0].cpu().numpy())
    files["w"] = str(out / "w.npy")
    if cfg.method == "wplus":
        save_npy(out / "wplus.npy", inv.ws[0].cpu().numpy())
        files["wplus"] = str(out / "wplus.npy")
    cam_doc = {"before": inv.report["pose_before"], "after": inv.report["pose_after"],
               "camera": inv.report["pose_after"]["label"], "layout": "EG3D 25 floats: cam2world 4x4 + intrinsics 3x3"}
    atomic_write_json(out / "camera.json", cam_doc)
    files["camera"] = str(out / "camera.json")
    lp, lp_note = metric_lpips()
    recon = {}
    row = [item.image]
    proj_img = render_at(inv.projected, inv.ws, inv.camera)
    recon["projected"] = reconstruction_metrics(proj_img["image"], target, lp)
    row.append(to_uint8(proj_img["image"]))
    final = proj_img
    if inv.generator is not inv.projected:
        final = render_at(inv.generator, inv.ws, inv.camera)
        recon["tuned"] = reconstruction_metrics(final["image"], target, lp)
        row.append(to_uint8(final["image"]))
    if base_ckpt is not None:  # tuned weights, or (w / w+) just the optimised noise buffers
        hdr = save_delta(out / "generator_delta.safetensors", base_ckpt, G, inv.generator,
                         extra={"name": item.name, "method": cfg.method})
        files["generator_delta"] = str(out / "generator_delta.safetensors")
        files["delta_tensors"] = len(hdr["changed"])
    atomic_save_png(out / "reconstruction.png", np.concatenate(row, axis=1))
    files["reconstruction"] = str(out / "reconstruction.png") + " (input | projected" + (
        " | tuned)" if len(row) > 2 else ")")
    write_depth(final["image_depth"], out / "depth.png", out / "depth.npy")
    files["depth"] = str(out / "depth.npy")
    Gf = inv.generator
    if "views" in extras.outputs:
        files["views"] = str(write_views(Gf, inv.ws, out / "views.png"))
    if "video" in extras.outputs:
        files["video"] = str(write_orbit(Gf, inv.ws, out / "orbit.gif", frames=extras.video_frames))
    if "mesh" in extras.outputs:
        files["mesh"] = write_mesh(Gf, inv.ws, out / "mesh.ply", extras.mesh_resolution)
    report = dict(inv.report)
    report["reconstruction"] = recon
    if lp_note:
        report["notes"] = report["notes"] + [lp_note]
    report["time"] = {**report["time"], "outputs_s": time.perf_counter() - t}
    report["time"]["total_s"] = sum(v for k, v in report["time"].items() if k != "total_s")
    report["files"] = files
    report["device"] = str(inv.ws.device)
    atomic_write_json(out / "config.json", cfg.to_dict())
    atomic_write_json(out / "metrics.json", report)
    return report


def _inverted_name(metrics: Path) -> str:
    try:
        return str(json.loads(metrics.read_text()).get("name"))
    except (OSError, ValueError, AttributeError):
        return "?"


def shard() -> tuple[int, int]:
    """(rank, world size) under torchrun (RANK / WORLD_SIZE), else (0, 1): items are split round robin."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def invert_source(G: TriPlaneGenerator, base_ckpt: Path | None, source: Path, out: Path, cfg: InvertConfig, *,
                  camera: str | None = None, align: str = "auto", backend: str = "auto", resume: bool = True,
                  extras: Extras | None = None, on_item: Callable[[int, int, dict], None] | None = None,
                  on_stage: Stage | None = None) -> dict[str, Any]:
    """Invert a file, a folder (every image) or an LMDB dataset into `out/<name>/`; resumable (done items, those
    with metrics.json, are skipped unless resume=False). Returns {items: [...], failed: [...], skipped: [...]}.

    A single file writes straight into `out/`. Nothing is written for an input that fails to load.
    """
    cfg.validate()
    res = G.img_resolution
    listing = list_inputs(source, out)
    single = isinstance(listing, list) and len(listing) == 1 and not source.is_dir()
    reader = None
    if listing == "lmdb":
        from ..data.reader import DatasetReader

        reader = DatasetReader(source)
        listing = lmdb_items(reader)
    assert not isinstance(listing, str)  # list_inputs' only string is "lmdb", replaced above
    rank, world = shard()
    mine = listing[rank::world]
    remove_stale_temps_in(out, recursive=True)  # outputs and deltas of a killed run

    def dest(it: Item) -> Path:
        return out if single else out / it.key

    def load(it: Item) -> InvertItem:
        if reader is not None:
            return load_lmdb_item(reader, it, res)
        assert it.path is not None  # list_inputs' items are files
        return load_item(it.path, res, camera, backend, align, name=it.key)

    def process(it: Item, item: InvertItem) -> dict[str, Any]:
        inv = invert(G, item, cfg, extras, on_stage)
        rep = write_outputs(G, inv, item, dest(it), cfg, base_ckpt, extras)
        return {"name": it.key, "out": str(dest(it)), "pose_after": rep["pose_after"],
                "reconstruction": rep["reconstruction"], "time": rep["time"], "notes": list(item.notes)}

    def done(it: Item) -> str | None:
        metrics = dest(it) / "metrics.json"
        if not metrics.is_file():
            return None
        if single:  # `out` holds one inversion: never take another input's result for this one, nor replace it
            held = _inverted_name(metrics)
            if held not in (it.key, Path(it.key).stem):  # (the stem: results written before names were full)
                raise UsageError(f"--out {out} holds the inversion of {held!r} ({metrics.name}); give another --out")
        return "done (metrics.json exists)" if resume else None

    report: dict[str, Any] = {"source": str(source), "out": str(out), "shard": [rank, world]}
    report.update(run_items(mine, load, process, done=done, catch=not single, on_item=on_item))
    if not single and (report["items"] or report["skipped"]):  # nothing done: nothing written, the CLI reports
        suffix = "" if world == 1 else f".rank{rank}"
        atomic_write_json(out / f"report{suffix}.json", report)
    return report
