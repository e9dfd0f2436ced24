"""Inputs of the metrics: fakes rendered at dataset or prior poses (EG3D protocol), real images, dataset hashes."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from ..cameras import LABEL_DIM, Cameras, PosePrior
from ..cameras.rotations import cam2world_to_ypr
from ..data import DatasetReader, flip_sample
from ..methods.registry import learned_pose_methods
from ..utils.files import atomic_write_json
from ..utils.visual import to_uint8
from .weights import cache_dir

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator

Progress = Callable[[int, int], None]


def dataset_hash(path: str | Path) -> str:
    """sha256 of the dataset's content: count, resolution and every sample's stored image bytes, in index order.

    Independent of the LMDB page layout; cached under `<cache>/datasets/` keyed by path, size and mtime of data.mdb.
    """
    path = Path(path).resolve()
    stat = (path / "data.mdb").stat()
    key = hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:24]
    memo = cache_dir() / "datasets" / f"{key}.json"
    if memo.is_file():
        return json.loads(memo.read_text())["sha256"]
    reader = DatasetReader(path)
    h = hashlib.sha256(f"gan3dkit-dataset|{len(reader)}|{reader.meta['resolution']}".encode())
    for i in range(len(reader)):
        h.update(reader.read_raw(i, "image") or b"")
    reader.close()
    digest = h.hexdigest()
    atomic_write_json(memo, {"path": str(path), "sha256": digest})
    return digest


def lookat_of(meta: dict[str, Any]) -> tuple[float, float, float]:
    """The orbit centre used for yaw/pitch: the dataset prior's look-at point (0, 0, 0 when unknown)."""
    prior = meta.get("pose_prior") or {}
    return tuple(float(v) for v in prior.get("lookat", (0.0, 0.0, 0.0)))  # type: ignore[return-value]


def camera_ypr(labels: Tensor, lookat: tuple[float, float, float]) -> Tensor:  # [N, 25] -> [N, 3] radians
    return cam2world_to_ypr(Cameras.from_label(labels.float()).cam2world, lookat).float()


def pose_pool(reader: DatasetReader, mirror: bool) -> Tensor:  # -> [M, 25] (x2 with mirrored cameras)
    """All dataset cameras, plus their mirrors when the real set is mirrored (EG3D's dataset holds the mirrors)."""
    labels = torch.from_numpy(np.stack([reader.read(i, ["camera"])["camera"] for i in range(len(reader))])).float()
    if not mirror:
        return labels
    cams = Cameras.from_label(labels)
    return Cameras.cat([cams, cams.mirror()]).to_label()  # the pool holds the fakes' conditioning labels


def draw_poses(source: str, n: int, seed: int, reader: DatasetReader | None = None, mirror: bool = True,
               prior: PosePrior | None = None) -> Tensor:  # -> [n, 25]
    """Rendering (and conditioning) cameras for n fakes: uniform draws with replacement from the dataset's labels
    (EG3D: `c = dataset.get_label(randint(len(dataset)))`), or samples of a pose prior (pose-free data)."""
    gen = torch.Generator().manual_seed(int(seed) + 7919)
    if source == "dataset":
        if reader is None:
            raise ValueError("poses from the dataset need a dataset")
        pool = pose_pool(reader, mirror)
        return pool[torch.randint(len(pool), (n,), generator=gen)]
    if source == "prior":
        if prior is None:
            raise ValueError("poses from a prior need one (the dataset meta has no pose_prior; pass --prior NAME)")
        return prior.sample(n, gen).to_label().float()
    raise ValueError(f"poses must be 'dataset' or 'prior', got {source!r}")


def learned_poses(G: TriPlaneGenerator, n: int, seed: int, batch: int = 64) -> Tensor:  # -> [n, 25]
    """Cameras a learned-pose generator picks for `latents(n, ..., seed)`: its pose mapping of the
    untruncated w, so fake i is rendered where G itself would put it."""
    if getattr(G, "pose_mapping", None) is None:
        raise ValueError("poses 'learned' need a generator with a pose mapping (a checkpoint of "
                         f"{' or '.join(learned_pose_methods())})")
    device = next(G.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, n, batch):
            z = latents(min(batch, n - start), G.z_dim, seed, start).to(device)
            ws = G.mapping(z, torch.zeros(len(z), G.c_dim, device=device))  # the pose is w's, not a label's
            out.append(G.pose_mapping.cameras(G.pose_mapping(ws[:, 0])).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, LABEL_DIM)


def latents(n: int, z_dim: int, seed: int, start: int = 0) -> Tensor:  # -> [n, z_dim]
    """z_i ~ N(0, I) from its own generator seeded by SeedSequence([seed, i]): any subset is reproducible."""
    rows = []
    for i in range(start, start + n):
        s = int(np.random.SeedSequence([int(seed), i]).generate_state(1, dtype=np.uint64)[0]) & (2**63 - 1)
        rows.append(torch.randn(z_dim, generator=torch.Generator().manual_seed(s)))
    return torch.stack(rows) if rows else torch.zeros(0, z_dim)


def batch_seed(seed: int, start: int) -> int:
    return int(np.random.SeedSequence([int(seed), 1, int(start)]).generate_state(1, dtype=np.uint64)[0]) & (2**63 - 1)


def iter_fakes(G: TriPlaneGenerator, cams: Tensor, seed: int, nrr: int | None = None, batch: int = 4,
               psi: float = 1.0) -> Iterator[dict[str, Any]]:
    """Render len(cams) fakes batch by batch (nothing accumulates): sample i uses `latents(...)[i]` and camera i for
    both conditioning and rendering; rendering noise is reseeded per batch from (seed, start), so the fakes do not
    depend on what a consumer does between batches.

    Yields `start`, `ws` (on G's device), `camera` [B, 25], `image` uint8 [B, 3, R, R], `image_raw` uint8
    [B, 3, r, r] and `image_depth` float [B, 1, r, r] (ray distance), all but `ws` on the CPU.
    """
    device = next(G.parameters()).device
    n = len(cams)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for start in range(0, n, batch):
            torch.manual_seed(batch_seed(seed, start))
            cb = cams[start:start + batch].to(device)
            ws = G.mapping(latents(len(cb), G.z_dim, seed, start).to(device), cb, truncation_psi=psi)
            res = G.synthesis(ws, Cameras.from_label(cb.float()), neural_rendering_resolution=nrr)
            yield {"start": start, "ws": ws, "camera": cams[start:start + batch].cpu(),
                   "image": to_uint8(res["image"]).cpu(), "image_raw": to_uint8(res["image_raw"]).cpu(),
                   "image_depth": res["image_depth"].float().cpu()}


def render_fakes(G: TriPlaneGenerator, cams: Tensor, seed: int, nrr: int | None = None, batch: int = 4,
                 psi: float = 1.0, keep: tuple[str, ...] = ("image", "image_depth"),
                 progress: Progress | None = None) -> dict[str, Tensor]:
    """All of `iter_fakes` in memory (`keep` of image, image_raw, image_depth, plus camera): for small sets only."""
    out: dict[str, list[Tensor]] = {k: [] for k in (*keep, "camera")}
    for b in iter_fakes(G, cams, seed, nrr, batch, psi):
        for k, parts in out.items():
            parts.append(b[k])
        if progress is not None:
            progress(min(len(cams), b["start"] + batch), len(cams))
    return {k: torch.cat(v) for k, v in out.items()}


def iter_real(reader: DatasetReader, fields: tuple[str, ...] = ("image",), max_items: int | None = None,
              mirror: bool = False, batch: int = 64) -> Iterator[dict[str, Tensor]]:
    """Batches of real samples (image uint8 [B, 3, H, W], depth [B, 1, H, W], ypr [B, 3], camera [B, 25], mask).

    Order: samples 0..N-1, then (with `mirror`) their mirrored copies; `max_items` truncates that sequence.
    """
    n = len(reader)
    total = min(n * (2 if mirror else 1), max_items or math.inf)
    for start in range(0, int(total), batch):
        items = []
        for idx in range(start, min(int(total), start + batch)):
            raw = reader.read(idx % n, list(fields))
            item: dict[str, Any] = {}
            for name, value in raw.items():
                if name == "image":
                    arr = value if value.ndim == 3 else value[:, :, None]
                    item[name] = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
                elif name in ("depth", "mask"):
                    item[name] = torch.from_numpy(np.array(value))[None]
                else:
                    item[name] = torch.from_numpy(np.array(value, dtype=np.float32))
            items.append(flip_sample(item) if idx >= n else item)
        yield {k: torch.stack([it[k] for it in items]) for k in fields}


def real_count(reader: DatasetReader, max_items: int | None, mirror: bool) -> int:
    return int(min(len(reader) * (2 if mirror else 1), max_items or math.inf))
