"""Session fixtures for the bad-input corpus: tiny good/broken datasets, checkpoints and EG3D sources, built once."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import lmdb
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from gan3dkit.cameras import get_prior
from gan3dkit.data import DatasetWriter

RES = 64  # the tiny preset's image size (training cases must reach the trainer's own checks)
TRAIN_SETS = [
    "run.workers=0", "run.cpu_threads=1", "run.tick_kimg=0.004", "run.snapshot_ticks=1", "run.grid_size=4",
    "optim.g_reg_interval=2", "optim.d_reg_interval=3", "generator.rendering.depth_resolution=6",
    "generator.rendering.depth_resolution_importance=6", "loss.density_reg_points=64",
]


def set_args(sets: list[str] = TRAIN_SETS) -> list[str]:
    return [a for s in sets for a in ("--set", s)]


def labels(n: int, seed: int = 0) -> np.ndarray:
    return get_prior("synthetic_heads").sample(n, torch.Generator().manual_seed(seed)).to_label().numpy()


def write_dataset(path: Path, n: int = 8, res: int = RES, allow_empty: bool = False) -> Path:
    rng = np.random.default_rng(0)
    cams = labels(max(n, 1))
    w = DatasetWriter(path, resolution=res, fields=["image", "camera"], source="hardening test",
                      pose_prior=get_prior("synthetic_heads").to_dict())
    for i in range(n):
        w.add(rng.integers(0, 256, (res, res, 3), dtype=np.uint8), cams[i])
    return w.finish(allow_empty=allow_empty)


def poke(path: Path, key: str, value: bytes) -> Path:
    """Overwrite one record of a finished dataset behind the writer's back (what a bad disk or tool might do)."""
    env = lmdb.open(str(path), subdir=True, map_size=1 << 30)
    with env.begin(write=True) as txn:
        txn.put(key.encode(), value)
    env.close()
    return path


def png_bytes(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


@dataclass
class Corpus:
    """Paths of the shared inputs (read-only for tests: copy before changing)."""

    root: Path
    good: Path  # 8 samples at 64
    small: Path  # 4 samples at 16 (resolution mismatch for training)
    nan_camera: Path  # sample 2's camera is NaN
    bad_image: Path  # sample 3's image bytes are junk
    empty: Path  # 0 samples
    truncated: Path  # data.mdb cut to a third
    garbage: Path  # data.mdb of random bytes
    bad_meta: Path  # meta record is not JSON
    future: Path  # meta says format v9
    ckpt: Path  # generator-only checkpoint of the tiny config (untrained)
    nan_ckpt: Path  # the same with one NaN weight
    eg3d: Path  # an EG3D folder: 6 images + dataset.json
    eg3d_zip: Path  # the same as a zip


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Corpus:
    root = tmp_path_factory.mktemp("corpus")
    good = write_dataset(root / "good.lmdb")
    small = write_dataset(root / "small.lmdb", n=4, res=16)
    nan_camera = poke(_copy(good, root / "nan_camera.lmdb"), "00000002/camera",
                      np.full(25, np.nan, np.float32).tobytes())
    bad_image = poke(_copy(good, root / "bad_image.lmdb"), "00000003/image", b"\x89PNG not really")
    empty = write_dataset(root / "empty.lmdb", n=0, allow_empty=True)
    truncated = _copy(good, root / "truncated.lmdb")
    size = (truncated / "data.mdb").stat().st_size
    os.truncate(truncated / "data.mdb", size // 3)
    garbage = _copy(good, root / "garbage.lmdb")
    (garbage / "data.mdb").write_bytes(np.random.default_rng(1).bytes(size))
    bad_meta = poke(_copy(good, root / "bad_meta.lmdb"), "__meta__", b"{not json")
    meta = json.loads(lmdb.open(str(good), readonly=True, lock=False).begin().get(b"__meta__"))
    future = poke(_copy(good, root / "future.lmdb"), "__meta__", json.dumps({**meta, "format_version": "9.0"}).encode())
    ckpt, nan_ckpt = _checkpoints(root)
    eg3d = _eg3d_folder(root / "eg3d")
    eg3d_zip = root / "eg3d.zip"
    with zipfile.ZipFile(eg3d_zip, "w") as zf:
        for p in sorted(eg3d.rglob("*")):
            zf.write(p, p.relative_to(eg3d).as_posix())
    return Corpus(root, good, small, nan_camera, bad_image, empty, truncated, garbage, bad_meta, future, ckpt,
                  nan_ckpt, eg3d, eg3d_zip)


def tiny_config(data: Path | str = "", out: Path | str = ""):
    from gan3dkit.train.config import train_preset
    from gan3dkit.utils.config import apply_overrides

    return apply_overrides(train_preset("tiny"), [f"data={json.dumps(str(data))}", f"out={json.dumps(str(out))}",
                                                  *TRAIN_SETS])


def _checkpoints(root: Path) -> tuple[Path, Path]:
    from gan3dkit.networks import TriPlaneGenerator
    from gan3dkit.train.checkpoint import save_checkpoint

    cfg = tiny_config()
    torch.manual_seed(0)
    G = TriPlaneGenerator(cfg.generator).eval()
    ckpt = save_checkpoint(root / "gen" / "checkpoint.safetensors", {"G_ema": G}, {}, cfg.to_dict(),
                           {"nimg": 0, "step": 0, "tick": 0, "nrr": cfg.loss.nrr_initial})
    tensors = load_file(str(ckpt))
    first = next(k for k in sorted(tensors) if k.startswith("G_ema.") and tensors[k].is_floating_point())
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    from safetensors import safe_open

    with safe_open(str(ckpt), framework="pt") as f:
        metadata = f.metadata()
    nan_ckpt = root / "nan" / "checkpoint.safetensors"
    nan_ckpt.parent.mkdir()
    save_file(tensors, str(nan_ckpt), metadata=metadata)
    return ckpt, nan_ckpt


def _eg3d_folder(path: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(2)
    path.mkdir()
    cams = labels(n, seed=3)
    entries = []
    for i in range(n):
        name = f"img{i:02d}.png"
        (path / name).write_bytes(png_bytes(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)))
        entries.append([name, cams[i].tolist()])
    (path / "dataset.json").write_text(json.dumps({"labels": entries}))
    return path
