"""Ko et al.'s pose estimator P and latent encoder E, pre-trained on pseudo pairs rendered by the generator (§A.2)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import Tensor, nn

from ..cameras.camera import Cameras
from ..cameras.rotations import ypr_to_cam2world
from ..generate.views import camera_labels
from ..utils.config import from_dict, to_dict
from .ko_nets import ROT_DIMS, KoLatentEncoder, KoPoseEstimator

KO_FORMAT = "gan3dkit-ko-encoder"
KO_VERSION = 1
ARCHS = ("ko-pose", "ko-latent")


@dataclass
class KoDistillConfig:
    """Pseudo-pair pre-training of P / E (seed 002 §A.2-A.3; Ko et al. `scripts/{gen_pseudo_dataset,
    train_pose_estimator}.py`, methods.md §4.2). Paper weights not given (lambda_adv, lambda_reg) use e4e's."""

    steps: int = 10000
    """Optimiser steps (the code validates every 1k iterations; no step count is published)."""
    batch: int = 32
    """Pseudo pairs per step (the code's batch 32)."""
    lr: float = 1e-4
    """Adam learning rate (the code: 1e-4)."""
    pairs: int = 30000
    """Distinct pseudo pairs (paper: 30,000 human faces, 10,000 cats); pair i is a pure function of (seed, i)."""
    truncation: float = 0.7
    """psi of the pseudo latents (the code: 0.7), mapped with the frontal conditioning camera."""
    max_yaw: float = 0.2
    """yaw = (U - 0.5) * pi * max_yaw (the code's --max_yaw 0.2: +-18 degrees)."""
    max_pitch: float = 0.1
    """pitch = (U - 0.5) * pi * max_pitch (+-9 degrees)."""
    max_roll: float = 0.0
    """roll range likewise (cats: 0.2 with --use_roll; 0 = no roll)."""
    representation: str = "quaternion"
    """P's rotation output: 'euler' (theta, phi as in the paper), 'quaternion' (the code default), '6d' (roll)."""
    lambda_trans: float = 1.0
    """Eq. (6) weight of ||t_ps - t_hat||_2 (the code uses 10 * MSE instead)."""
    lambda_adv: float = 0.1
    """Eq. (5) non-saturating adversarial weight with the checkpoint's D (e4e's w-discriminator lambda 0.1)."""
    lambda_reg: float = 2e-4
    """Eq. (5) ||delta w||^2 weight (e4e's delta_norm_lambda 2e-4)."""
    l2_weight: float = 1.0
    """Pixel MSE beside LPIPS for E (e4e's l2_lambda 1); the only image term when LPIPS is unavailable offline."""
    perceptual: str = "auto"
    """LPIPS for E: auto (e4e's VGG-LPIPS, pretrained: a missing backbone is an error naming `gan3dkit weights add`;
    with `random_init`, a random VGG, noted) or an explicit choice (none, random-vgg-lpips, vgg-lpips, alex-lpips)."""
    resolution: int = 256
    """Input size of P and E (the code: 256; images reach them as [0, 255], area-downsampled)."""
    width: int = 64
    """P: ResNet base width (64 = ResNet34 as released; smaller only for tests)."""
    blocks: tuple[int, int, int, int] = (3, 4, 6, 3)
    """P: residual blocks per stage (ResNet34)."""
    irse_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    """E: IR-SE-50 stage widths (e4e); smaller only for tests."""
    irse_units: tuple[int, int, int, int] = (3, 4, 14, 3)
    """E: IR-SE-50 units per stage."""
    e4e_styles: int = 18
    """E: e4e style blocks (18: the released files were built for a 1024² StyleGAN); Ko et al. use style 0 only."""
    backbone_weights: str | None = None
    """P: torchvision ResNet34 (ImageNet), E: IR-SE-50 (path or URL); None: package, cache (`gan3dkit weights add`)
    or download. Ko et al. start P from ImageNet and E (e4e) from IR-SE-50."""
    random_init: bool = False
    """Start from random weights instead (said in the checkpoint's notes); without it a missing file is an error."""
    cache_pairs: int = 1024
    """Keep rendered pairs in memory when `pairs` is at most this (small pseudo sets render once)."""
    seed: int = 0
    log_every: int = 50


def pseudo_pairs(G: nn.Module, cfg: KoDistillConfig, indices: list[int]) -> dict[str, Tensor]:
    """Pairs {w [B,1,w_dim], camera [B,25], image [B,3,R,R]}; pair i from RandomState((seed, i)) (z, then yaw,
    pitch, roll), the latent mapped with the frontal conditioning camera at `truncation` (Ko et al.'s generator)."""
    device = next(G.parameters()).device
    r = G.config.rendering
    zs, angles = [], []
    for i in indices:
        rs = np.random.RandomState([cfg.seed, i])
        zs.append(rs.randn(G.z_dim))
        angles.append([(rs.rand() - 0.5) * math.pi * m for m in (cfg.max_yaw, cfg.max_pitch, cfg.max_roll)])
    z = torch.from_numpy(np.stack(zs)).float().to(device)
    a = torch.tensor(angles, dtype=torch.float64)
    c2w = ypr_to_cam2world(a[:, 0], a[:, 1], a[:, 2], r.avg_camera_radius, r.avg_camera_pivot).float()
    cams = Cameras.from_matrices(c2w, r.focal).to_label().to(device)
    with torch.no_grad():
        w = G.mapping(z, camera_labels(G, [0.0], 0.0, device).expand(len(indices), -1), truncation_psi=cfg.truncation)
        img = G.synthesis(w, cams, noise_mode="const", deterministic_render=True)["image"].clamp(-1, 1)
    return {"w": w[:, :1], "camera": cams, "image": img}


def pose_losses(rot: Tensor, pos: Tensor, camera: Tensor, lambda_trans: float) -> tuple[Tensor, dict]:
    """Eq. (3)-(4), (6): ||R_ps^-1 R_hat - I||_F + lambda_trans ||t_ps - t_hat||_2, averaged over the batch."""
    gt = Cameras.from_label(camera)
    eye = torch.eye(3, device=rot.device)
    l_rot = (gt.rotations.transpose(1, 2) @ rot - eye).flatten(1).norm(dim=1).mean()
    l_trans = (gt.origins - pos).norm(dim=1).mean()
    return l_rot + lambda_trans * l_trans, {"rot": float(l_rot.detach()), "trans": float(l_trans.detach())}


def distill_ko(arch: str, ckpt: Path, out: Path, cfg: KoDistillConfig,
               on_step: Callable[[int, int, dict], None] | None = None) -> dict:
    """Pre-train Ko et al.'s P ('ko-pose') or E ('ko-latent') on pseudo pairs of the generator in `ckpt`.

    Writes `out/<arch>.safetensors` (weights + JSON header: format, version, arch, config, generator sha256) and
    `out/config.json`, atomically. Returns {checkpoint, steps, first, last, seconds, notes}.
    """
    from ..generate.loading import load_generator
    from ..invert.losses import build_perceptual
    from ..invert.projector import latent_stats
    from ..train.checkpoint import load_tensors, read_header
    from ..utils.files import sha256_file

    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    if cfg.representation not in ROT_DIMS:
        raise ValueError(f"representation must be one of {', '.join(ROT_DIMS)}")
    if cfg.steps < 1 or cfg.batch < 1 or cfg.pairs < 1:
        raise ValueError("steps, batch and pairs must be >= 1")
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    G, _ = load_generator(ckpt)
    r = G.config.rendering
    notes: list[str] = []
    D, perceptual = None, None
    if arch == "ko-pose":
        net: nn.Module = KoPoseEstimator(cfg, r.avg_camera_radius, r.focal)
    else:
        net = KoLatentEncoder(cfg, G.w_dim)
    if cfg.random_init:
        notes.append("RANDOM INIT (--random-init): no ImageNet / IR-SE-50 backbone")
    else:
        from .pretrained import load_ko_backbone, require_pretrained

        notes.append(require_pretrained(f"{arch} backbone", lambda: load_ko_backbone(net, arch, cfg.backbone_weights)))
    if arch != "ko-pose":
        net.w_avg.copy_(latent_stats(G, min(cfg.pairs, 5000), cfg.truncation, cfg.seed)[0])
        choice = "random-vgg-lpips" if cfg.random_init and cfg.perceptual == "auto" else cfg.perceptual
        perceptual = build_perceptual(choice, "vgg")
        if perceptual.info.note:
            notes.append(f"E loss: {perceptual.info.note}")
        if cfg.lambda_adv > 0:
            if "D" in read_header(ckpt)["modules"]:
                from ..networks import DualDiscriminator
                from ..train.config import TrainConfig

                D = DualDiscriminator(TrainConfig.from_dict(read_header(ckpt)["config"]).discriminator)
                D.load_state_dict(load_tensors(ckpt, "D"))
                D.eval().requires_grad_(False)
            else:
                notes.append("checkpoint holds no D: adversarial term skipped")
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    cache: dict[int, dict[str, Tensor]] = {}
    history: list[dict] = []
    for step in range(cfg.steps):
        idx = [(step * cfg.batch + j) % cfg.pairs for j in range(cfg.batch)]
        if cfg.pairs <= cfg.cache_pairs:
            missing = [i for i in idx if i not in cache]
            if missing:
                fresh = pseudo_pairs(G, cfg, missing)
                for k, i in enumerate(missing):
                    cache[i] = {key: v[k : k + 1] for key, v in fresh.items()}
            batch = {key: torch.cat([cache[i][key] for i in idx]) for key in ("w", "camera", "image")}
        else:
            batch = pseudo_pairs(G, cfg, idx)
        net.train()
        if arch == "ko-pose":
            rot, pos = net(batch["image"])
            loss, rec = pose_losses(rot, pos, batch["camera"], cfg.lambda_trans)
        else:
            dw = net(batch["image"])
            ws = (net.w_avg + dw).expand(-1, G.num_ws, -1)
            o = G.synthesis(ws, batch["camera"], noise_mode="const", deterministic_render=True)
            mse = F.mse_loss(o["image"], batch["image"])
            lp = perceptual.distance(o["image"], batch["image"]).mean() if perceptual.available else mse * 0
            reg = dw.square().sum(-1).mean()
            loss = lp + cfg.l2_weight * mse + cfg.lambda_reg * reg
            rec = {"lpips": float(lp.detach()), "mse": float(mse.detach()), "reg": float(reg.detach())}
            if D is not None:
                adv = F.softplus(-D({"image": o["image"], "image_raw": o["image_raw"]}, batch["camera"])).mean()
                loss = loss + cfg.lambda_adv * adv
                rec["adv"] = float(adv.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        rec.update(step=step, loss=float(loss.detach()))
        history.append(rec)
        if on_step is not None:
            on_step(step + 1, cfg.steps, rec)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    header = {"format": KO_FORMAT, "version": KO_VERSION, "arch": arch, "config": to_dict(cfg),
              "generator": str(Path(ckpt).resolve()), "generator_sha256": sha256_file(ckpt),
              "radius": r.avg_camera_radius, "focal": r.focal, "w_dim": G.w_dim, "notes": notes,
              "steps": cfg.steps, "last": history[-1]}
    path = save_ko_encoder(net, header, out / f"{arch}.safetensors")
    from ..utils.files import atomic_write_json

    atomic_write_json(out / "config.json", {"arch": arch, "config": to_dict(cfg), "notes": notes})
    return {"checkpoint": str(path), "steps": cfg.steps, "first": history[0], "last": history[-1],
            "seconds": time.perf_counter() - t0, "notes": notes}


def save_ko_encoder(net: nn.Module, header: dict, path: Path) -> Path:
    """Weights + the JSON header (format, version, arch, config, radius, focal, w_dim, ...) in one safetensors file,
    written atomically."""
    from ..utils.files import atomic_write_safetensors

    return atomic_write_safetensors(path, {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
                                    {KO_FORMAT: json.dumps(header)})


def load_ko_encoder(path: str | Path, G: nn.Module | None = None, with_w_avg: bool = True) -> nn.Module:
    """P or E from `distill_ko`'s or `convert ko-pose|e4e`'s checkpoint (eval mode); checks format, version and
    w_dim. A converted E carries no w_avg: it is computed from ``G`` as Ko et al.'s projector does (10,000 z of
    RandomState(123), psi 0.7, frontal conditioning); ``with_w_avg=False`` leaves it at zero (tools comparing e4e's
    codes alone)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder checkpoint {path} not found")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    if KO_FORMAT not in meta:
        raise ValueError(f"{path} is not a Ko et al. encoder checkpoint (no {KO_FORMAT} header)")
    header: dict[str, Any] = json.loads(meta[KO_FORMAT])
    if int(header.get("version", -1)) != KO_VERSION:
        raise ValueError(f"{path}: encoder version {header.get('version')} is not supported")
    cfg = from_dict(KoDistillConfig, header["config"])
    if header["arch"] == "ko-pose":
        net: nn.Module = KoPoseEstimator(cfg, header["radius"], header["focal"])
    else:
        if G is not None and G.w_dim != header["w_dim"]:
            raise ValueError(f"{path}: encoder outputs w_dim {header['w_dim']}, the generator uses {G.w_dim}")
        net = KoLatentEncoder(cfg, header["w_dim"])
    from ..train.checkpoint import check_finite

    check_finite(path, tensors, header["arch"])
    net.load_state_dict(tensors)
    if header.get("w_avg") == "generator" and with_w_avg:
        if G is None:
            raise ValueError(f"{path}: this E takes w_avg from the generator; load it with the generator")
        from ..invert.projector import latent_stats

        net.w_avg.copy_(latent_stats(G, 10000, 0.7, 123)[0].to(net.w_avg))
    net.header = header
    return net.eval()
