"""TriPlaneNet's training data (seed 004 A): real photos with their cameras mixed with generator samples at psi = 1
rendered at the photos' poses, both mirrored (image and camera together)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras.camera import Cameras
from ..data.reader import LMDBDataset
from .models import Teacher

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator


class RealMix:
    """Batches of {'ref': {'image', 'image_raw'}, 'c_ref', 'pose', 'real'} for TriPlaneNet with `--data`.

    Of each batch, round(real_fraction * B) items are dataset photos and the rest EG3D samples (z ~ N(0, I), no
    truncation: the run's `truncation_psi`, 1 by default as the paper) rendered at cameras drawn from the dataset's
    labels. Each item, real or synthetic, is mirrored with probability `mirror_prob`, its camera mirrored with it
    ("we also augment the training dataset by mirroring it"; "camera poses from FFHQ and their flipped versions").
    All draws use the global torch RNG, so a resumed run continues exactly.
    """

    def __init__(self, path: str | Path, teacher: Teacher, real_fraction: float, mirror_prob: float,
                 device: torch.device) -> None:
        self.data = LMDBDataset(path, fields=["image", "camera"])
        res = teacher.G.img_resolution
        if self.data.resolution != res:
            raise ValueError(f"--data {path}: images are {self.data.resolution}², the generator renders {res}²; "
                             "prepare the dataset at the generator's resolution")
        if self.data.camera_source == "prior":
            raise ValueError(f"--data {path}: its cameras were sampled from a prior, not measured; TriPlaneNet needs "
                             "each photo's own camera")
        if not 0.0 <= real_fraction <= 1.0 or not 0.0 <= mirror_prob <= 1.0:
            raise ValueError("triplanenet.real_fraction and triplanenet.mirror_prob must lie in [0, 1]")
        self.cams = Cameras.from_label(self.data.cameras().float())  # the records, decoded once
        self.t, self.real_fraction, self.mirror_prob, self.dev = teacher, real_fraction, mirror_prob, device

    def sample(self, bg: int, run, deterministic: bool) -> dict[str, Any]:
        t, n_real = self.t, round(self.real_fraction * bg)
        G = cast("TriPlaneGenerator", t.G)
        idx = torch.randint(len(self.data), (n_real,))
        rows = [self.data[int(i)] for i in idx]  # each sampled item read and decoded once
        real = (torch.stack([r["image"] for r in rows]).float() / 127.5 - 1).to(self.dev) if n_real else None
        c_real = Cameras.from_label(torch.stack([r["camera"] for r in rows]).to(self.dev)) if n_real else None
        n_fake = bg - n_real
        parts: list[Tensor] = []
        cams: list[Cameras] = []
        if real is not None and c_real is not None:
            parts.append(real)
            cams.append(c_real)
        if n_fake:
            z = torch.randn(n_fake, G.z_dim).to(self.dev)
            c_fake = self.cams[torch.randint(len(self.cams), (n_fake,))].to(self.dev)
            flip_pose = torch.rand(n_fake, device=self.dev) < 0.5  # "poses from FFHQ and their flipped versions"
            c_fake = c_fake.mirror().where(flip_pose, c_fake)
            with torch.no_grad():
                ws = t.mapping(z, c_fake, run)
                parts.append(G.render_planes(G.synthesize_planes(ws), c_fake, ws, neural_rendering_resolution=t.nrr,
                                                deterministic_render=deterministic)["image"])
            cams.append(c_fake)
        x, c = torch.cat(parts), Cameras.cat(cams)
        flip = torch.rand(bg, device=self.dev) < self.mirror_prob
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        c = c.mirror().where(flip, c)
        raw = F.interpolate(x, size=(t.nrr, t.nrr), mode="area")
        is_real = torch.arange(bg, device=self.dev) < n_real
        return {"ref": {"image": x, "image_raw": raw}, "c_ref": c, "pose": t.cam.pose(c), "real": is_real}
