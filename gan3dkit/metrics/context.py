"""Evaluation options and the shared, lazily computed inputs of one `evaluate` run (fakes, features, probes)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from ..cameras import PosePrior, get_prior
from ..data import DatasetReader
from . import sampling
from .features import VGG16NV, FeatureNet, InceptionV3, extract
from .weights import cache_dir

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator

#: Bumped when a change alters cached real-feature files.
FEATURE_CACHE_VERSION = 1
#: Fakes handed to the extractors at once (generator batches are grouped; rendering stays at `--batch`).
FAKE_CHUNK = 32

#: Per-sample extractors over fake chunks: name -> factory(ctx) -> fn(chunk) -> {key: [B, ...] tensor}. Chunks join
#: `sampling.iter_fakes` batches (start, ws, camera, image, image_raw, image_depth). Metric modules declare them in
#: `EXTRACTORS`; `catalog.extractors()` collects them and the suite hands them to the EvalContext.
Extractor = Callable[[dict[str, Any]], dict[str, Tensor]]
ExtractorFactory = Callable[["EvalContext"], Extractor]


@dataclass(frozen=True)
class ExtractorSpec:
    """A named fake-sample extractor: `factory(ctx)` returns the per-chunk function."""

    name: str
    factory: ExtractorFactory


def extractor(name: str) -> Callable[[ExtractorFactory], ExtractorSpec]:
    """Decorator: a factory `fn(ctx) -> per-chunk function` becomes the ExtractorSpec `name`."""
    return lambda factory: ExtractorSpec(name, factory)


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
    poses: str = "auto"
    """dataset (EG3D: cameras drawn from the dataset labels) | prior (pose-free data: --prior's, else the prior the
    checkpoint was trained with, else the dataset's) | learned (G's own pose mapping) | auto (learned for
    learned-pose checkpoints, prior for the other pose-free ones, else dataset)."""
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
    """Run LPIPS/DISTS with random-init backbones when ImageNet weights are missing (flagged uncalibrated)."""
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
                 progress: Callable[[str, int, int], None] | None = None,
                 extractors: Mapping[str, ExtractorFactory] | None = None) -> None:
        self.opts, self.data, self.ckpt = opts, Path(data), (Path(ckpt) if ckpt else None)
        self.extractors: Mapping[str, ExtractorFactory] = extractors or {}
        """The fake-sample extractors `fake_outputs` can run (the suite passes `catalog.extractors()`)."""
        self.reader = DatasetReader(self.data)
        self.meta = self.reader.meta
        self.lookat = sampling.lookat_of(self.meta)
        self.progress = progress or (lambda stage, done, total: None)
        self.shared_s: dict[str, float] = {}
        self._memo: dict[Any, Any] = {}
        self._fake_out: dict[str, dict[str, Tensor]] = {}
        self._shared_depth = 0
        self.max_fakes = 0
        """Fakes per pass (the suite sets the largest count its metrics need, so one pass serves all)."""
        self.G: TriPlaneGenerator | None = None
        self.nrr: int | None = None
        self.ckpt_prior: dict[str, Any] | None = None
        """The pose prior a pose-free checkpoint was trained with (its header's extra.pose_prior)."""
        learned = False
        if self.ckpt is not None:
            from ..generate.loading import load_generator
            from ..train.checkpoint import read_header

            self.G, self.train_cfg = load_generator(self.ckpt, opts.device)
            header = read_header(self.ckpt)
            trained = header.get("progress", {}).get("nrr") or self.train_cfg.loss.nrr_initial
            self.nrr = int(opts.nrr or trained)
            self.ckpt_prior = (header.get("extra") or {}).get("pose_prior")
            learned = (header.get("extra") or {}).get("pose_source") == "learned"
        if opts.poses not in ("auto", "dataset", "prior", "learned"):
            raise ValueError(f"--poses must be auto, dataset, prior or learned, got {opts.poses!r}")
        auto = "learned" if learned else ("prior" if self.ckpt_prior else "dataset")
        self.poses = opts.poses if opts.poses != "auto" else auto
        """The pose source actually used (auto resolved)."""

    # ------------------------------------------------------------------------------------------ bookkeeping
    @contextlib.contextmanager
    def shared(self, stage: str) -> Iterator[None]:
        """Time work that several metrics share; nested stages count only in the outermost one."""
        if self._shared_depth:
            yield
            return
        self._shared_depth += 1
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._shared_depth -= 1
            self.shared_s[stage] = self.shared_s.get(stage, 0.0) + time.perf_counter() - t0

    def memo(self, key: Any, fn: Callable[[], Any], stage: str | None = None) -> Any:
        if key not in self._memo:
            if stage is None:
                self._memo[key] = fn()
            else:
                with self.shared(stage):
                    self._memo[key] = fn()
        return self._memo[key]

    def require_generator(self, metric: str) -> TriPlaneGenerator:
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
        if self.ckpt_prior:
            return PosePrior.from_dict(self.ckpt_prior)
        if self.meta.get("pose_prior"):
            return PosePrior.from_dict(self.meta["pose_prior"])
        raise ValueError("the dataset meta has no pose_prior; pass --prior NAME")

    def cameras(self, n: int) -> Tensor:  # [n, 25]
        if self.poses == "learned":
            G = self.require_generator("poses 'learned'")
            return self.memo(("cams", n), lambda: sampling.learned_poses(G, n, self.opts.seed))
        prior = self.pose_prior() if self.poses == "prior" else None
        return self.memo(("cams", n), lambda: sampling.draw_poses(self.poses, n, self.opts.seed, self.reader,
                                                                  self.opts.mirror, prior))

    def fake_outputs(self, names: Sequence[str], n: int | None = None) -> None:
        """One streaming pass over the fakes computing every extractor in `names` not yet computed (per-sample rows
        only are kept, so 50k fakes at 512^2 never sit in memory); n defaults to `max_fakes`."""
        todo = [name for name in dict.fromkeys(names) if name not in self._fake_out]
        if not todo:
            return
        G = self.require_generator(f"fake outputs {todo}")
        n = max(n or 0, self.max_fakes)
        cams = self.cameras(n)
        fns = {}
        for name in todo:
            if name not in self.extractors:
                raise ValueError(f"unknown fake-sample extractor {name!r}; known: {sorted(self.extractors)}")
            with self.shared(f"load {name}"):
                fns[name] = self.extractors[name](self)
        parts: dict[str, dict[str, list[Tensor]]] = {name: {} for name in todo}
        batches = sampling.iter_fakes(G, cams, self.opts.seed, self.nrr, self.opts.batch, self.opts.psi)
        pending: list[dict[str, Any]] = []

        def flush() -> None:  # extractors see chunks of >= FAKE_CHUNK samples (Inception is ~3x faster per image)
            if not pending:
                return
            chunk = {k: (torch.cat([b[k] for b in pending]) if k != "start" else pending[0]["start"])
                     for k in pending[0]}
            pending.clear()
            for name, fn in fns.items():
                with self.shared(f"fakes: {name}"):
                    for key, value in fn(chunk).items():
                        parts[name].setdefault(key, []).append(value.cpu())
            self.progress("fakes", min(n, int(chunk["start"]) + len(chunk["image"])), n)

        while True:
            with self.shared("render fakes"):
                batch = next(batches, None)
            if batch is None:
                break
            pending.append(batch)
            if sum(len(b["image"]) for b in pending) >= FAKE_CHUNK:
                flush()
        flush()
        for name in todo:
            self._fake_out[name] = {key: torch.cat(v) for key, v in parts[name].items()}

    def fake_out(self, name: str, n: int) -> dict[str, Tensor]:
        """The first n rows of extractor `name` (runs a pass if the suite did not prepare it)."""
        if name not in self._fake_out or len(next(iter(self._fake_out[name].values()))) < n:
            self._fake_out.pop(name, None)
            self.fake_outputs([name], n)
        return {key: v[:n] for key, v in self._fake_out[name].items()}

    def fakes_protocol(self) -> str:
        where = "dataset labels (with mirrors)" if self.poses == "dataset" and self.opts.mirror else (
            "dataset labels" if self.poses == "dataset" else "G's learned pose mapping" if self.poses == "learned"
            else f"prior {self.pose_prior().name}")
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
        key = json.dumps({"tag": tag, "net": net.description, "mirror": self.opts.mirror,
                          "max_real": self.opts.max_real, "v": FEATURE_CACHE_VERSION}, sort_keys=True)
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
