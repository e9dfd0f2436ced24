"""Atomic, resumable LMDB dataset writer: batched transactions into `<out>.partial`, renamed on completion."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lmdb
import numpy as np

from ..cameras.camera import CameraError, label_problems
from ..utils.errors import DataError, UsageError
from .format import (
    META_KEY,
    PROGRESS_KEY,
    DatasetFormatError,
    encode_field,
    field_specs,
    make_meta,
    sample_key,
    validate_meta,
)
from .lmdb_check import check_lmdb_file

DEFAULT_MAP_SIZE = 1 << 40  # address space only; LMDB files grow with their content


def partial_path(path: str | Path) -> Path:
    """Where an unfinished dataset lives while it is written."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


def partial_progress(path: str | Path) -> int | None:
    """Samples already committed in an interrupted `<path>.partial` (None when there is none to resume)."""
    partial = partial_path(path)
    if not (partial / "data.mdb").exists():
        return None
    check_lmdb_file(partial, "interrupted dataset")
    env = lmdb.open(str(partial), readonly=True, lock=False, subdir=True)
    try:
        with env.begin() as txn:
            raw = txn.get(PROGRESS_KEY)
    finally:
        env.close()
    return int(json.loads(raw)["count"]) if raw is not None else None


class DatasetWriter:
    """Write a gan3dkit LMDB dataset so that a killed job never leaves a dataset that looks whole.

    Samples go into `<path>.partial` in transactions of `commit_every` samples; each transaction also records the
    progress (sample count and the writer settings). `finish()` writes the meta record and renames the directory to
    `<path>`. With `resume=True`, an existing `.partial` written with the same settings is continued at `count`
    (the producer skips the first `count` samples); otherwise a stale `.partial` is discarded.

    Producers that skip bad inputs keep their position in `state` (a JSON-able dict committed with every
    transaction and restored on resume) and call `input_done()` once an input is fully handled (its samples added,
    or its skip recorded in `state`, and the position advanced). Such a writer commits only at `input_done()`, and
    `close()` after an error drops what was queued since the last one, so the committed position always matches
    the committed samples: a failing input is retried (and reported) on the rerun, never lost. Producers that write
    one sample per input and keep no state need not call it (`add` then commits every `commit_every` samples).

    Args:
        path: output directory (the LMDB environment), e.g. `heads.lmdb`.
        resolution, channels: image size (square) and channels (3 or 1).
        fields: sample fields present for every sample (image and camera always).
        latent_dim: length of the latent field when present.
        pose_prior: dataset-level prior record (`PosePrior.to_dict()`), or None.
        source, command, extra, provenance_extra: provenance and free-form meta.
        resume: continue a compatible `.partial` instead of starting over.
        overwrite: replace an existing finished dataset at `path` (only at `finish()`, atomically).
        commit_every: samples per LMDB transaction.
        resume_key: extra settings that must match for a resume (e.g. the generating command's arguments).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        resolution: int,
        channels: int = 3,
        fields: Sequence[str] = ("image", "camera"),
        latent_dim: int = 0,
        pose_prior: dict[str, Any] | None = None,
        camera_source: str | None = None,
        source: str = "",
        command: str = "",
        extra: dict[str, Any] | None = None,
        provenance_extra: dict[str, Any] | None = None,
        resume: bool = False,
        overwrite: bool = False,
        commit_every: int = 256,
        resume_key: dict[str, Any] | None = None,
        map_size: int = DEFAULT_MAP_SIZE,
    ) -> None:
        self.path = Path(path)
        self.partial = partial_path(self.path)
        fields = list(dict.fromkeys(["image", "camera", *fields]))
        unknown = set(fields) - set(field_specs())
        if unknown:
            raise DatasetFormatError(f"unknown sample fields {sorted(unknown)}; known: {sorted(field_specs())}")
        if "latent" in fields and latent_dim <= 0:
            raise DatasetFormatError("the latent field needs latent_dim > 0")
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} already exists; choose another --out or pass --overwrite")
        self._meta_args: dict[str, Any] = dict(
            resolution=resolution,
            channels=channels,
            fields=fields,
            latent_dim=latent_dim,
            pose_prior=pose_prior,
            camera_source=camera_source,
            source=source,
            command=command,
            extra=extra,
            provenance_extra=provenance_extra,
        )
        self._settings = {
            "resolution": resolution,
            "channels": channels,
            "fields": fields,
            "latent_dim": latent_dim,
            "resume_key": resume_key or {},
        }
        # Meta used to encode fields (count filled at finish); validates the settings early.
        self._meta = make_meta(count=0, **self._meta_args)
        validate_meta(self._meta, str(self.path))
        self.commit_every = max(1, int(commit_every))
        self._per_input = False  # True once the producer marks inputs (input_done / undo_input)
        self.count = 0
        self.resumed_from = 0
        self.state: dict[str, Any] = {}
        if self.partial.exists():
            if resume:
                self.count = self.resumed_from = self._read_progress()
            else:
                shutil.rmtree(self.partial)
        self.partial.mkdir(parents=True, exist_ok=True)
        self._env = lmdb.open(str(self.partial), map_size=map_size, subdir=True, meminit=False)
        self._pending: list[tuple[bytes, bytes]] = []
        self._pending_samples = 0
        self._mark = (0, 0, self.count)  # (queued records, queued samples, count) at the last input boundary
        self._finished = False

    def _read_progress(self) -> int:
        check_lmdb_file(self.partial, "interrupted dataset")
        env = lmdb.open(str(self.partial), readonly=True, lock=False, subdir=True)
        try:
            with env.begin() as txn:
                raw = txn.get(PROGRESS_KEY)
        finally:
            env.close()
        if raw is None:
            return 0
        progress = json.loads(raw)
        if progress.get("settings") != json.loads(json.dumps(self._settings)):
            raise UsageError(
                f"{self.partial} was started with different settings ({progress.get('settings')}); "
                "rerun with the same arguments, or discard it with --restart"
            )
        self.state = dict(progress.get("state", {}))
        return int(progress["count"])

    @property
    def fields(self) -> list[str]:
        return list(self._meta["fields"])

    def add(self, image: Any, camera: Any, **optional: Any) -> int:
        """Queue one sample; returns its index. `optional` holds the other declared fields (ypr, mask, ...)."""
        if self._finished:
            raise RuntimeError("writer already finished")
        index = self.count
        declared = set(self._meta["fields"]) - {"image", "camera"}
        given = {k for k, v in optional.items() if v is not None}
        if given != declared:
            raise DatasetFormatError(
                f"sample {index}: fields {sorted(given)} given, dataset declares {sorted(declared)}"
            )
        cam = np.asarray(camera, dtype=np.float32).reshape(-1)
        problems = label_problems(cam)
        if problems:
            raise CameraError(f"sample {index}: invalid camera: " + "; ".join(problems))
        records = [
            (sample_key(index, "image"), encode_field("image", image, self._meta)),
            (sample_key(index, "camera"), encode_field("camera", cam, self._meta)),
        ]
        records += [(sample_key(index, k), encode_field(k, optional[k], self._meta)) for k in sorted(declared)]
        self._pending.extend(records)
        self._pending_samples += 1
        self.count += 1
        if not self._per_input and self._pending_samples >= self.commit_every:
            self.flush()
        return index

    def input_done(self) -> None:
        """Mark the end of one input (samples added or skip recorded, `state` advanced); commits when due."""
        self._per_input = True
        if self._pending_samples >= self.commit_every:
            self.flush()
        self._mark = (len(self._pending), self._pending_samples, self.count)

    def undo_input(self) -> None:
        """Drop the samples added since the last `input_done()` (an input that failed half-way, e.g. its mirror)."""
        self._per_input = True
        n_records, n_samples, count = self._mark
        del self._pending[n_records:]
        self._pending_samples, self.count = n_samples, count

    def flush(self) -> None:
        """Commit queued samples, the progress count and `state` in one transaction."""
        progress = json.dumps({"count": self.count, "settings": self._settings, "state": self.state}).encode()
        with self._env.begin(write=True) as txn:
            for key, value in self._pending:
                txn.put(key, value)
            txn.put(PROGRESS_KEY, progress)
        self._pending.clear()
        self._pending_samples = 0
        self._mark = (0, 0, self.count)

    def finish(
        self, extra: dict[str, Any] | None = None, allow_empty: bool = False, camera_source: str | None = None
    ) -> Path:
        """Write the meta record, close, and atomically move `.partial` to the final path. Returns the path.

        `camera_source` (measured | estimated | prior | mixed) replaces the one given at construction, for
        producers that only know at the end where their cameras came from.

        A dataset without samples is refused (DataError, the `.partial` is removed) unless `allow_empty`.
        """
        if camera_source is not None:
            self._meta_args["camera_source"] = camera_source
        if self.count == 0 and not allow_empty:
            self.discard()
            raise DataError(f"no samples to write to {self.path}: every input was skipped or none was given")
        self.flush()
        if extra:
            self._meta_args["extra"] = {**(self._meta_args.get("extra") or {}), **extra}
        meta = make_meta(count=self.count, **self._meta_args)
        validate_meta(meta, str(self.path))
        with self._env.begin(write=True) as txn:
            txn.delete(PROGRESS_KEY)
            txn.put(META_KEY, json.dumps(meta, indent=1).encode())
        self._env.sync(True)
        self._env.close()
        old = None
        if self.path.exists():
            old = self.path.with_name(self.path.name + ".old")
            if old.exists():
                shutil.rmtree(old)
            self.path.rename(old)
        self.partial.rename(self.path)
        if old is not None:
            shutil.rmtree(old)
        self._finished = True
        return self.path

    def close(self) -> None:
        """Commit what is queued and close without finishing (the `.partial` stays for a resume).

        With `input_done()` marks, only what was queued up to the last mark is committed (see the class doc).
        """
        if not self._finished:
            if self._per_input:
                self.undo_input()
            self.flush()
            self._env.close()
            self._finished = True

    def discard(self) -> None:
        """Close and delete the `.partial` (nothing worth resuming)."""
        if not self._finished:
            self._env.close()
            self._finished = True
        shutil.rmtree(self.partial, ignore_errors=True)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and not self._finished:
            self.finish()
        else:
            self.close()
