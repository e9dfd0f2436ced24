"""`prepare lsun`: an LSUN lmdb export (key -> JPEG/WebP bytes) -> centre-cropped LMDB with Table C prior cameras."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lmdb

from ..utils.errors import DataError
from .photos import BuildSpec, Item, Outcome, Progress, build_dataset, center_crop_square, check_max_images, resize

#: LSUN categories with a shipped pose prior (seed 000 Table C).
LSUN_PRIORS = {"bedroom": "lsun_bedroom", "church": "lsun_church"}


@dataclass(frozen=True)
class LsunJob:
    path: str
    resolution: int


@dataclass(frozen=True)
class LsunReader:
    """A worker's state: the job and its own read-only handle on the export (opened in the worker, after fork)."""

    job: LsunJob
    env: lmdb.Environment


def open_lsun(job: LsunJob) -> LsunReader:
    """Per process (the `setup` of `build_dataset`); list_lsun has checked the file size (no SIGBUS when truncated)."""
    env = lmdb.open(job.path, readonly=True, lock=False, readahead=False, subdir=True, max_readers=512)
    return LsunReader(job, env)


def guess_prior(path: str | Path) -> str:
    """lsun_bedroom / lsun_church from the export's folder name (e.g. bedroom_train_lmdb); else a clear error."""
    name = Path(path).name.lower()
    for key, prior in LSUN_PRIORS.items():
        if key in name:
            return prior
    raise ValueError(f"cannot tell the LSUN category from {Path(path).name!r}; pass --prior "
                     f"({', '.join(LSUN_PRIORS.values())} or any preset)")


def list_lsun(path: str | Path, max_images: int | None = None) -> list[Item]:
    """Keys of an LSUN export in key order (LMDB's sort), up to `max_images`."""
    path = Path(path)
    if not (path / "data.mdb").exists():
        raise FileNotFoundError(f"{path} is not an LMDB folder (no data.mdb); give the LSUN export, e.g. "
                                "bedroom_train_lmdb")
    from ..data.lmdb_check import check_lmdb_file

    check_lmdb_file(path, "LSUN export")
    env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, subdir=True)
    items = []
    try:
        with env.begin() as txn:
            for key in txn.cursor().iternext(keys=True, values=False):
                items.append(Item(name=key.decode("utf-8", "replace"), source=bytes(key)))
                if max_images is not None and len(items) >= max_images:
                    break
    finally:
        env.close()
    return items


def process_lsun_item(reader: LsunReader, item: Item) -> Outcome:
    """Worker: decode the stored bytes (any format PIL reads: JPEG, WebP, PNG), centre crop, resize."""
    from ..data.images import ImageError, decode_png

    try:
        with reader.env.begin(buffers=False) as txn:
            data = txn.get(item.source)
        if data is None:
            raise ValueError("key vanished from the lmdb")
        image = decode_png(data, channels=3)  # PIL decodes any format despite the name
        image = resize(center_crop_square(image), reader.job.resolution)
    except (ImageError, ValueError) as exc:
        return Outcome(item.name, skip=str(exc))
    except Exception as exc:
        return Outcome(item.name, skip=f"{type(exc).__name__}: {exc}")
    return Outcome(item.name, image=image, camera=None)


def build_lsun(path: str | Path, out: str | Path, *, resolution: int = 256, prior: str | None = None, seed: int = 0,
               mirror: bool = False, max_images: int | None = None, workers: int = 2, resume: bool = True,
               overwrite: bool = False, command: str = "", progress: Progress | None = None) -> tuple[Path, dict]:
    """LSUN lmdb export -> LMDB (image, camera, ypr, name). Cameras are sampled from the category's Table C prior
    (`lsun_bedroom`: yaw N(pi/2, 0.70), pitch N(pi/2, 0.10); `lsun_church`: yaw U(pi/2 +- 5pi/18), pitch pi/2)."""
    from ..cameras.priors import get_prior

    check_max_images(max_images)
    prior = prior or guess_prior(path)
    items = list_lsun(path, max_images)
    if not items:
        raise DataError(f"{path} holds no records: nothing to import")
    spec = BuildSpec(out=Path(out), resolution=resolution, kind="lsun", prior=get_prior(prior), seed=seed,
                     mirror=mirror, workers=workers, resume=resume, overwrite=overwrite, command=command,
                     settings={"resolution": resolution, "prior": prior, "max_images": max_images},
                     list_prior_names=False, source=f"lsun:{Path(path).resolve()}")
    return build_dataset(spec, items, process_lsun_item, LsunJob(str(Path(path).resolve()), resolution), open_lsun,
                         progress)
