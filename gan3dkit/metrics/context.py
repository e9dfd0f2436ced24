"""Evaluation options and the shared, lazily computed inputs of one `evaluate` run (fakes, features, probes)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from ..cameras import PosePrior, get_prior
from ..data import DatasetReader
from . import sampling
from .features import FeatureNet, InceptionV3, VGG16NV, extract
from .weights import cache_dir

#: Bumped when a change alters cached real-feature files.
FEATURE_CACHE_VERSION = 1


@dataclass
class EvalOptions:
    """Everything that changes a number; recorded with every result."""

    num: int | None = None
    """Generated samples per metric; None = each metric's paper default (fid/kid/pr 50000, nfs 256, depth/pose 1024)."""
    seed: int = 0
    batch: int = 4
    """Generator batch (EG3D's metrics use 4)."""
    psi: float = 1.0
    nrr: int | None = None
    """Neural rendering resolution; None = the one the checkpoint reached (header progress.nrr)."""
    poses: str = "dataset"
    """dataset (EG3D: cameras drawn from the dataset labels) | prior (pose-free data: the dataset's or --prior's)."""
    prior: str | None = None
    mirror: bool = True
    """Real set (and the camera pool) includes mirrored copies, as EG3D's mirrored dataset zips do."""
    max_real: int | None = None
    inception: str | None = None
    pr_features: str = "inception"
    vgg16: str | None = None
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_k: int = 3
    lpips_net: str = "alex"
    lpips_backbone: str | None = None
    dists_backbone: str | None = None
    random_backbone: bool = False
    """Run LPIPS/DISTS with random-init backbones when ImageNet weights are unavailable (numbers flagged uncalibrated)."""
    recon_res: int | None = None
    pred: str | None = None
    """Folder of predicted images (<name>.png or <index:06d>.png) compared with the dataset images."""
    id_embedder: str = "dlib"
    arcface: str | None = None
    pose_probe: str | None = None
    depth_probe: str | None = None
    js_bins: int = 16
    nfs_bins: int = 64
    nfs_cut_quantile: float = 0.5
    depth_real: str = "auto"
    """Real side of Depth-FID and pose JS: truth (dataset depth/ypr), probe (estimated on real images), auto."""
    cache: bool = True
    device: str = "cpu"
    allow_download: bool = True


class EvalContext:
    """Loads the checkpoint and dataset once and memoises what several metrics share."""

    def __init__(self, opts: EvalOptions, data: str | Path, ckpt: str | Path | None = None,
                 progress: Callable[[str, int, int], None] | None = None) -> None:
        self.opts, self.data, self.ckpt = opts, Path(data), (Path(ckpt) if ckpt else None)
        self.reader = DatasetReader(self.data)
        self.meta = self.reader.meta
        self.lookat = sampling.lookat_of(self.meta)
        self.progress = progress or (lambda stage, done, total: None)
        self.shared_s: dict[str, float] = {}
        self._memo: dict[Any, Any] = {}
        self.max_fakes = 0
        """Fakes rendered at once (the suite sets the largest count its metrics need, so one render serves all)."""
        self.G: torch.nn.Module | None = None
        self.nrr: int | None = None
        if self.ckpt is not None:
            from ..generate.loading import load_generator
            from ..train.checkpoint import read_header

            self.G, self.train_cfg = load_generator(self.ckpt, opts.device)
            trained = read_header(self.ckpt).get("progress", {}).get("nrr") or self.train_cfg.loss.nrr_initial
            self.nrr = int(opts.nrr or trained)

    # ------------------------------------------------------------------------------------------ bookkeeping
    @contextlib.contextmanager
    def shared(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.shared_s[stage] = self.shared_s.get(stage, 0.0) + time.perf_counter() - t0

    def memo(self, key: Any, fn: Callable[[], Any], stage: str | None = None) -> Any:
        if key not in self._memo:
            if stage is None:
                self._memo[key] = fn()
            else:
                with self.shared(stage):
                    self._memo[key] = fn()
        return self._memo[key]

    def require_generator(self, metric: str) -> torch.nn.Module:
        if self.G is None:
            raise ValueError(f"metric {metric!r} needs a generator: pass --ckpt")
        return self.G

    def has_fields(self, *fields: str) -> bool:
        return all(f in self.meta["fields"] for f in fields)

    def data_hash(self) -> str:
        return self.memo("data_hash", lambda: sampling.dataset_hash(self.data), "hash dataset")

    def num_for(self, default: int) -> int:
        return int(self.opts.num or default)

    # ------------------------------------------------------------------------------------------ fakes
    def pose_prior(self) -> PosePrior:
        if self.opts.prior:
            return get_prior(self.opts.prior)
        if self.meta.get("pose_prior"):
            return PosePrior.from_dict(self.meta["pose_prior"])
        raise ValueError("the dataset meta has no pose_prior; pass --prior NAME")

    def cameras(self, n: int) -> Tensor:  # [n, 25]
        prior = self.pose_prior() if self.opts.poses == "prior" else None
        return self.memo(("cams", n), lambda: sampling.draw_poses(self.opts.poses, n, self.opts.seed, self.reader,
                                                                  self.opts.mirror, prior))

    def fakes(self, n: int) -> dict[str, Tensor]:
        """First n fakes (image uint8, image_raw uint8, image_depth, camera); rendered once at the largest n asked."""
        have = self._memo.get("fakes")
        if have is None or len(have["camera"]) < n:
            G = self.require_generator("fakes")
            cams = self.cameras(max(n, self.max_fakes))
            with self.shared("render fakes"):
                self._memo["fakes"] = sampling.render_fakes(
                    G, cams, self.opts.seed, self.nrr, self.opts.batch, self.opts.psi,
                    keep=("image", "image_raw", "image_depth"), progress=lambda d, t: self.progress("render", d, t))
            have = self._memo["fakes"]
        return {k: v[:n] for k, v in have.items()}

    def fakes_protocol(self) -> str:
        where = "dataset labels (with mirrors)" if self.opts.poses == "dataset" and self.opts.mirror else (
            "dataset labels" if self.opts.poses == "dataset" else f"prior {self.pose_prior().name}")
        return (f"fakes: z ~ N(0, I) (seed {self.opts.seed}), camera drawn from {where} for conditioning and "
                f"rendering, psi {self.opts.psi}, NRR {self.nrr}, generator batch {self.opts.batch}")

    # ------------------------------------------------------------------------------------------ features
    def feature_net(self, kind: str) -> FeatureNet:
        if kind == "inception":
            return self.memo("net:inception", lambda: InceptionV3(self.opts.inception, self.opts.device,
                                                                  self.opts.allow_download), "load inception")
        if kind == "vgg16":
            return self.memo("net:vgg16", lambda: VGG16NV(self.opts.vgg16, self.opts.device, self.opts.allow_download),
                             "load vgg16")
        raise ValueError(f"unknown feature network {kind!r}; choose inception or vgg16")

    def real_count(self) -> int:
        return sampling.real_count(self.reader, self.opts.max_real, self.opts.mirror)

    def _cached(self, tag: str, net: FeatureNet, compute: Callable[[], Tensor]) -> Tensor:
        """Real-set features, cached on disk per dataset content hash, network and protocol."""
        if not self.opts.cache:
            return compute()
        key = json.dumps({"tag": tag, "net": net.description, "mirror": self.opts.mirror, "max_real": self.opts.max_real,
                          "v": FEATURE_CACHE_VERSION}, sort_keys=True)
        digest = hashlib.md5(key.encode()).hexdigest()[:12]
        path = cache_dir() / "stats" / f"{self.data_hash()[:16]}-{net.name}-{tag}-{digest}.npz"
        if path.is_file():
            with np.load(path) as f:
                return torch.from_numpy(f["features"])
        feats = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{time.time_ns()}.tmp.npz")
        np.savez(tmp, features=feats.numpy(), key=np.array(key))
        tmp.replace(path)
        return feats

    def real_features(self, kind: str) -> Tensor:  # [N_real, D]
        net = self.feature_net(kind)

        def compute() -> Tensor:
            total, parts = self.real_count(), []
            for batch in sampling.iter_real(self.reader, ("image",), self.opts.max_real, self.opts.mirror, batch=32):
                parts.append(extract(net, batch["image"]))
                self.progress(f"real features ({kind})", sum(len(p) for p in parts), total)
            return torch.cat(parts)

        return self.memo(("real", kind), lambda: self._cached("image", net, compute), f"real features ({kind})")

    def fake_features(self, kind: str, n: int) -> Tensor:
        net = self.feature_net(kind)
        have = self._memo.get(("fakefeat", kind))
        if have is None or len(have) < n:
            images = self.fakes(n)["image"]
            with self.shared(f"fake features ({kind})"):
                self._memo[("fakefeat", kind)] = extract(net, images)
            have = self._memo[("fakefeat", kind)]
        return have[:n]

    # ------------------------------------------------------------------------------------------ probes
    def probe(self, target: str) -> Any:
        from .probes import load_probe

        path = self.opts.pose_probe if target == "pose" else self.opts.depth_probe
        if not path:
            raise ValueError(f"this metric needs a {target} estimator: pass --{target}-probe PATH (train one with "
                             f"`gan3dkit train-probe --target {target} --data <dataset with true labels>`)")
        return self.memo(("probe", target), lambda: load_probe(path, self.opts.device), f"load {target} probe")

    def options_record(self) -> dict[str, Any]:
        """The options with resolved values (NRR actually used)."""
        return {**asdict(self.opts), "nrr": self.nrr}
