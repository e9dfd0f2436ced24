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


# --- encode / invert / distill-encoder / edit / convert ---------------------------------------------------------------
MICRO_G = ["generator.img_resolution=32", "generator.neural_rendering_resolution=16", "loss.nrr_initial=16",
           "generator.triplane_resolution=32", "generator.triplane_channels=8",
           "generator.rendering.depth_resolution=6", "generator.rendering.depth_resolution_importance=6",
           "generator.superres.channels=[16, 8]", "discriminator.img_resolution=32", "discriminator.channel_base=256",
           "discriminator.channel_max=32"]


def micro_distill(arch: str, gen: Path, out: Path, steps: int = 1):
    """The tiny distillation preset made smaller still: 32² input, batch 2, a snapshot every step."""
    from gan3dkit.encoders.config import tiny_distill

    cfg = tiny_distill(arch)
    cfg.generator, cfg.out, cfg.model = str(gen), str(out), {"input_resolution": 32}
    cfg.optim.batch, cfg.run.steps = 2, steps
    cfg.random_init = True  # no pretrained files here: said in the checkpoint, as the CLI's --random-init
    cfg.run.tick_steps, cfg.run.snapshot_ticks, cfg.run.val_samples, cfg.run.cpu_threads = 1, 1, 2, 1
    return cfg


def with_nan(src: Path, dst: Path, prefix: str, key: str | None = None) -> Path:
    """A copy of a safetensors file with the first float tensor under `prefix` (or `key`'s header) set to NaN."""
    from safetensors import safe_open

    tensors = load_file(str(src))
    first = next(k for k in sorted(tensors) if k.startswith(prefix) and tensors[k].is_floating_point())
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    with safe_open(str(src), framework="pt") as f:
        metadata = f.metadata()
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(dst), metadata=metadata)
    return dst


@dataclass
class Models:
    """Micro models (32² images) for the newer commands; read-only for tests."""

    root: Path
    gen: Path  # generator checkpoint (with D)
    nan_gen: Path  # the same, one NaN G_ema tensor
    enc: Path  # lp3d-lt encoder checkpoint (1 distillation step), inside the run folder enc/
    nan_enc: Path  # the same, one NaN encoder tensor
    ko_pose: Path  # Ko et al. pose estimator (1 step)
    nan_ko: Path  # the same, one NaN tensor
    state_dict: Path  # torch.save({"G_ema", "D"}) of the tiny preset
    dataset: Path  # 2 samples at 32 with names and cameras


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> Models:
    import os

    from gan3dkit.encoders.distill import distill
    from gan3dkit.encoders.ko import KoDistillConfig
    from gan3dkit.encoders.ko_task import distill_ko
    from gan3dkit.networks import DualDiscriminator, TriPlaneGenerator, get_preset
    from gan3dkit.train.checkpoint import save_checkpoint
    from gan3dkit.train.config import train_preset
    from gan3dkit.utils.config import apply_overrides

    old = os.environ.get("GAN3DKIT_NO_EXTENSION")
    os.environ["GAN3DKIT_NO_EXTENSION"] = "1"
    root = tmp_path_factory.mktemp("models")
    cfg = apply_overrides(train_preset("tiny"), MICRO_G)
    torch.manual_seed(0)
    mods = {"G_ema": TriPlaneGenerator(cfg.generator).eval(), "D": DualDiscriminator(cfg.discriminator)}
    gen = save_checkpoint(root / "gen" / "checkpoint.safetensors", mods, {}, cfg.to_dict(), {"nrr": 16},
                          include_rng=False)
    nan_gen = with_nan(gen, root / "nan_gen" / "g.safetensors", "G_ema.")
    distill(micro_distill("lp3d-lt", gen, root / "enc"), resume=False, device="cpu")
    enc = root / "enc" / "checkpoint.safetensors"
    nan_enc = with_nan(enc, root / "nan_enc" / "e.safetensors", "E.")
    ko = KoDistillConfig(batch=2, pairs=2, resolution=32, width=8, blocks=(1, 1, 1, 1), steps=1,
                         random_init=True)
    ko_pose = Path(distill_ko("ko-pose", gen, root / "ko", ko)["checkpoint"])
    nan_ko = with_nan(ko_pose, root / "nan_ko" / "p.safetensors", "")
    torch.manual_seed(0)
    tiny = get_preset("tiny")
    state_dict = root / "sd" / "g.pt"
    state_dict.parent.mkdir()
    torch.save({"G_ema": TriPlaneGenerator(tiny.generator).state_dict(),
                "D": DualDiscriminator(tiny.discriminator).state_dict()}, state_dict)
    dataset = root / "d.lmdb"
    w = DatasetWriter(dataset, resolution=32, fields=["image", "camera", "name"], source="hardening test",
                      pose_prior=get_prior("synthetic_heads").to_dict())
    rng = np.random.default_rng(0)
    for i, cam in enumerate(labels(2)):
        w.add(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), cam, name=f"img{i}")
    w.finish()
    if old is None:
        os.environ.pop("GAN3DKIT_NO_EXTENSION")
    else:
        os.environ["GAN3DKIT_NO_EXTENSION"] = old
    return Models(root, gen, nan_gen, enc, nan_enc, ko_pose, nan_ko, state_dict, dataset)


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A PNG whose header claims side x side pixels (a decompression bomb for PIL); its data is cut short."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
                     + chunk(b"IEND", b""))
    return path


def apng(path: Path, frames: int = 3, side: int = 32) -> Path:
    """An animated PNG of `frames` distinct random frames."""
    rng = np.random.default_rng(7)
    imgs = [Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(frames)]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=100, loop=0)
    return path
