"""Shared driver for photo datasets: input listing, labels, ordered parallel processing, resumable writing, reports."""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import multiprocessing
import os
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.eg3d_zip import IMAGE_EXTS, _safe_name
from ..utils.errors import DataError, UsageError
from ..utils.files import atomic_write_json

Progress = Callable[[int, int], None]
MAX_REPORT_IN_META = 100  # skipped/notes entries copied into the dataset's meta (all of them go to the report file)
#: Image types found in photo folders that gan3dkit does not read: listed as skipped (convert them to PNG/JPEG).
UNSUPPORTED_IMAGE_EXTS = {".gif", ".heic", ".heif", ".avif", ".svg", ".jxl", ".ico", ".psd", ".exr", ".hdr", ".jp2",
                          ".raw", ".cr2", ".nef", ".dng", ".arw"}


@dataclass(slots=True)
class Item:
    """One input: a display `name` (unique), what the worker reads (`source`: a path or a key), and its label."""

    name: str
    source: Any
    label: list[float] | None = None
    skip: str | None = None  # known bad when listed (unsupported type, broken link): reported, never read
    note: str | None = None  # e.g. a file name that is not valid UTF-8


@dataclass
class Outcome:
    """A worker's answer for one item: a sample (image, camera or None = take it from the prior) or a skip reason."""

    name: str
    image: np.ndarray | None = None  # [R, R, 3] uint8
    camera: np.ndarray | Sequence[float] | None = None  # [25]
    mask: np.ndarray | None = None  # [R, R] uint8
    skip: str | None = None
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def _listing_problem(p: Path) -> str | None:
    """Why a folder entry is listed as skipped (None: an image to read, or a file that is not an image)."""
    if p.is_symlink() and not p.exists():
        return "broken symbolic link or a symlink loop"
    if p.is_symlink() and p.is_dir():
        return "symbolic link to a folder, not followed (give the folder as its own source)"
    if p.is_file() and p.suffix.lower() in UNSUPPORTED_IMAGE_EXTS:
        return f"unsupported image type {p.suffix.lower()} (convert it to PNG or JPEG)"
    return None


def _folder_entries(path: Path) -> list[tuple[str, Path, str | None]]:
    out = []
    for p in sorted(path.rglob("*")):
        problem = _listing_problem(p)
        if problem is not None or (p.is_file() and p.suffix.lower() in IMAGE_EXTS):
            out.append((p.relative_to(path).as_posix(), p, problem))
    return out


def list_images(sources: Sequence[str | Path]) -> list[Item]:
    """Expand files, folders (recursively) and glob patterns into image items, sorted within each source.

    Names: the path relative to the folder for folder sources, the file name otherwise; a name seen twice gets its
    full path; a name that is not valid UTF-8 is stored with \\xNN escapes (and a note). The same file given twice
    is listed once. Unsupported image types (.gif, .heic, ...), broken or looping symlinks and symlinked folders
    are listed as skipped items, so the report names them. Raises FileNotFoundError for a source matching nothing.
    """
    items: list[Item] = []
    seen_paths: set[Path] = set()
    names: set[str] = set()
    for src in sources:
        src_s = str(src)
        path = Path(src_s).expanduser()
        if path.is_dir():
            found = _folder_entries(path)
        elif path.is_file() or path.is_symlink():
            found = [(path.name, path, _listing_problem(path))]
        elif glob.has_magic(src_s):
            found = []
            for p in map(Path, sorted(glob.glob(os.path.expanduser(src_s), recursive=True))):
                problem = _listing_problem(p)
                if problem is not None or (p.is_file() and p.suffix.lower() in IMAGE_EXTS):
                    found.append((p.name, p, problem))
        else:
            raise FileNotFoundError(f"input {src_s} not found")
        if not found:
            raise FileNotFoundError(f"no image files ({', '.join(sorted(IMAGE_EXTS))}) in {src_s}")
        for name, p, problem in found:
            try:
                real = p.resolve()
            except (OSError, RuntimeError):  # symlink loop
                real = p.absolute()
            if real in seen_paths:
                continue
            seen_paths.add(real)
            if name in names:
                name = real.as_posix()
            safe = _safe_name(name)
            note = None if safe == name else f"file name is not valid UTF-8; stored as {safe!r}"
            names.add(name)
            items.append(Item(name=safe, source=str(p), skip=problem, note=note))
    return items


def check_max_images(max_images: int | None) -> None:
    """--max-images must be a positive count when given (0 would silently mean 'all' or 'nothing')."""
    if max_images is not None and max_images < 1:
        raise UsageError(f"--max-images must be >= 1, got {max_images} (leave it out to use every input)")


def upscale_note(side: int, resolution: int) -> list[str]:
    """A note when an input is enlarged more than 2x to reach the output size (it will look blurry)."""
    if side * 2 < resolution:
        return [f"upscaled {resolution / side:.3g}x (from {side}x{side} to {resolution}x{resolution}); it will look "
                "blurry"]
    return []


def load_labels(path: str | Path) -> dict[str, list[float]]:
    """EG3D `dataset.json` ({"labels": [[name, [25 floats]], ...]}) -> {name: label}; names use '/' separators."""
    try:
        data = json.loads(Path(path).read_bytes())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); fix or "
                        "re-create it") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    labels = data.get("labels") if isinstance(data, dict) else None
    if not labels or not isinstance(labels, list):
        raise DataError(f"{path} has no 'labels' list (EG3D dataset.json format)")
    if not all(isinstance(e, (list, tuple)) and len(e) == 2 for e in labels):
        bad = next(i for i, e in enumerate(labels) if not (isinstance(e, (list, tuple)) and len(e) == 2))
        raise DataError(f"{path}: labels entry {bad} is not a [file name, [25 floats]] pair")
    return {str(name).replace("\\", "/"): value for name, value in labels if value is not None}


def attach_labels(items: list[Item], labels: dict[str, list[float]]) -> None:
    """Give each item the label filed under its name, or else under its file name (when that is unambiguous)."""
    by_base: dict[str, list[float] | None] = {}
    for name, value in labels.items():
        base = name.rsplit("/", 1)[-1]
        by_base[base] = None if base in by_base else value  # None marks an ambiguous base name
    for item in items:
        label = labels.get(item.name)
        if label is None:
            label = by_base.get(item.name.rsplit("/", 1)[-1])
        item.label = label


def center_crop_square(image: np.ndarray) -> np.ndarray:
    """Largest centred square of an [H, W, ...] image."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


def pad_square(image: np.ndarray, fill: int = 0) -> np.ndarray:
    """Pad an [H, W, ...] image to a centred square with `fill`."""
    h, w = image.shape[:2]
    side = max(h, w)
    out = np.full((side, side) + image.shape[2:], fill, dtype=image.dtype)
    top, left = (side - h) // 2, (side - w) // 2
    out[top:top + h, left:left + w] = image
    return out


def crop_square(image: np.ndarray, x0: int, y0: int, side: int, fill: int = 0) -> np.ndarray:
    """The `side` x `side` window at (x0, y0) of an [H, W, ...] image; parts outside the image are `fill`."""
    h, w = image.shape[:2]
    out = np.full((side, side) + image.shape[2:], fill, dtype=image.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def resize(image: np.ndarray, size: int, resample: int = Image.Resampling.LANCZOS) -> np.ndarray:
    """Resize a square uint8 image to size x size (no-op when already that size)."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), resample=resample))


def fingerprint(names: Iterable[str]) -> str:
    """Short hash of the ordered input names (part of the resume key: a changed input list cannot resume)."""
    h = hashlib.sha1()
    for name in names:
        h.update(name.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()[:16]


#: A pool worker's state (its job settings, a loaded backend, an open file), built once per worker process by
#: `ordered_map` and handed to every call explicitly. The prepare pipeline's only module-level state: a per-process
#: cache that a process pool's initializer has no other place to put.
_WORKER_STATE: dict[str, Any] = {}


def _keep(job: Any) -> Any:
    return job


def _init_worker_state(setup: Callable[[Any], Any], job: Any) -> None:
    _WORKER_STATE["state"] = setup(job)


def _call_with_state(fn: Callable[[Any, Item], Outcome], item: Item) -> Outcome:
    return fn(_WORKER_STATE["state"], item)


def ordered_map(fn: Callable[[Any, Item], Outcome], items: Sequence[Item], workers: int, job: Any = None,
                setup: Callable[[Any], Any] = _keep, window: int | None = None) -> Iterator[Outcome]:
    """Yield `fn(state, item)` for every item IN INPUT ORDER, using `workers` processes (<= 1: in this process).

    `state = setup(job)` is built once per process (in each pool worker, or here), e.g. to load a model once; the
    default passes `job` itself. At most `window` items are in flight, so memory stays bounded for any number of
    inputs. `fn` must catch its own per-input errors and return them as `Outcome.skip`; an exception escaping `fn`
    aborts the run.
    """
    if workers <= 1:
        state = setup(job)
        for item in items:
            yield fn(state, item)
        return
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    window = window or workers * 8
    call = functools.partial(_call_with_state, fn)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker_state,
                             initargs=(setup, job)) as pool:
        pending: deque[Future] = deque()
        it = iter(items)
        for item in it:
            pending.append(pool.submit(call, item))
            if len(pending) >= window:
                break
        while pending:
            try:
                result = pending.popleft().result()
            except BrokenProcessPool as exc:
                raise RuntimeError("a worker process died (crashed or was killed, e.g. out of memory); rerun the "
                                   "same command to resume, with --workers 0 to see which input causes it") from exc
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(call, nxt))
            yield result


def report_path(out: str | Path) -> Path:
    """Where a run's JSON report goes: beside the output, `<out>.report.json`."""
    out = Path(out)
    return out.with_name(out.name + ".report.json")


def publish(path: Path) -> Path:
    """Give an atomically written file (created 0600 by mkstemp) the usual permissions for new files (umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)
    return path


def write_report(out: str | Path, report: dict[str, Any]) -> Path:
    return publish(atomic_write_json(report_path(out), report))


def meta_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The report, with long lists cut to MAX_REPORT_IN_META entries, for the dataset's meta record."""
    out = dict(report)
    for key in ("skipped", "notes", "pose_from_prior"):
        if isinstance(out.get(key), list) and len(out[key]) > MAX_REPORT_IN_META:
            out[key] = out[key][:MAX_REPORT_IN_META] + [f"... {len(out[key]) - MAX_REPORT_IN_META} more in the report"]
    return out


@dataclass
class BuildSpec:
    """What a dataset build writes and how it runs (shared by every `prepare` photo command)."""

    out: Path
    resolution: int
    kind: str  # ffhq | afhq | cub | lsun | folder (recorded in the report)
    fields: tuple[str, ...] = ("image", "camera", "ypr", "name")
    prior: Any = None  # PosePrior for cameras the inputs lack (None: such inputs are skipped)
    seed: int = 0
    mirror: bool = False
    workers: int = 2
    resume: bool = True
    overwrite: bool = False
    source: str = ""
    command: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # part of the resume key and the report
    label_source: str = "measured"  # where cameras not taken from the prior come from: measured | estimated
    list_prior_names: bool = True  # list the inputs whose camera came from the prior (off when all do, e.g. LSUN)
    flush_every: int = 64


def build_dataset(spec: BuildSpec, items: list[Item], fn: Callable[[Any, Item], Outcome], job: Any = None,
                  setup: Callable[[Any], Any] = _keep,
                  progress: Progress | None = None) -> tuple[Path, dict[str, Any]]:
    """Run `fn(state, item)` over `items` (in parallel, consumed in order; `state = setup(job)` once per process, see
    `ordered_map`) and write the dataset, the mirrors and the report.

    Resumable: the input cursor, skips and notes live in the writer's `state`, committed only between inputs (a
    sample and its mirror are never split by a commit). Cameras an input lacks come from `spec.prior`, sampled with
    a generator seeded by (seed, input index), so a resumed run draws the same cameras. Returns (path, report).
    """
    import torch

    from ..cameras.camera import Cameras, label_problems
    from ..cameras.rotations import cam2world_to_ypr
    from ..data.writer import DatasetWriter

    if not items:
        raise ValueError("no inputs to process")
    prior_dict = spec.prior.to_dict() if spec.prior is not None else None
    resume_key = {"kind": spec.kind, "inputs": len(items), "fingerprint": fingerprint(i.name for i in items),
                  "mirror": spec.mirror, "seed": spec.seed, **spec.settings}
    writer = DatasetWriter(spec.out, resolution=spec.resolution, fields=list(spec.fields), pose_prior=prior_dict,
                           source=spec.source, command=spec.command, resume=spec.resume, overwrite=spec.overwrite,
                           commit_every=spec.flush_every, resume_key=json.loads(json.dumps(resume_key, default=str)))
    state = writer.state
    for key, empty in (("cursor", 0), ("skipped", []), ("notes", []), ("pose_from_prior", []), ("prior_count", 0),
                       ("inputs_ok", 0)):
        state.setdefault(key, empty)
    start = state["cursor"]

    def add(name: str, image: np.ndarray, camera: np.ndarray | Sequence[float], mask: np.ndarray | None) -> None:
        cam = Cameras.from_label(torch.as_tensor(np.asarray(camera, dtype=np.float32)))
        variants = [(name, image, cam, mask)]
        if spec.mirror:
            flip = None if mask is None else np.ascontiguousarray(mask[:, ::-1])
            variants.append((f"{name}_mirror", np.ascontiguousarray(image[:, ::-1]), cam.mirror(), flip))
        for vname, vimage, vcam, vmask in variants:
            ypr = cam2world_to_ypr(vcam.cam2world)[0].float().numpy()
            extra = {"ypr": ypr, "name": vname}
            if "mask" in spec.fields:
                extra["mask"] = vmask
            writer.add(vimage, vcam.to_label()[0].numpy(), **{k: v for k, v in extra.items() if k in spec.fields})

    try:
        run = functools.partial(run_item, fn)
        for index, outcome in enumerate(ordered_map(run, items[start:], spec.workers, job, setup), start):
            notes = [n for n in (items[index].note, *outcome.notes) if n]
            camera = outcome.camera
            if outcome.skip is None and camera is None:
                if spec.prior is None:
                    outcome.skip = "no camera label (give labels, or a --prior to sample one)"
                else:
                    gen = torch.Generator().manual_seed(spec.seed * 1_000_003 + index)
                    camera = spec.prior.sample(1, generator=gen).to_label()[0].numpy()
            if outcome.skip is None:
                problems = label_problems(np.asarray(camera, dtype=np.float64))
                if problems:
                    outcome.skip = "invalid camera label: " + "; ".join(problems)
            if outcome.skip is None:
                assert outcome.image is not None and camera is not None
                try:
                    add(outcome.name, outcome.image, camera, outcome.mask)
                except Exception as exc:  # this input's problem (e.g. a name or array the format refuses)
                    writer.undo_input()  # its first variant may be queued already
                    outcome.skip = f"cannot be written: {exc}"
            if outcome.skip is not None:
                state["skipped"].append({"name": outcome.name, "reason": outcome.skip})
            else:
                state["inputs_ok"] += 1
                if outcome.camera is None:
                    state["prior_count"] += 1
                    if spec.list_prior_names:
                        state["pose_from_prior"].append(outcome.name)
            state["notes"].extend({"name": outcome.name, "note": n} for n in notes)
            state["cursor"] = index + 1  # only now: the input is written or recorded as skipped
            writer.input_done()  # commits every `flush_every` samples, never between a sample and its mirror
            if progress is not None:
                progress(index + 1, len(items))
        report = make_report(spec, items, state, writer.count)
        if writer.count == 0:
            writer.discard()
            first = "; ".join(f"{s['name']}: {s['reason']}" for s in state["skipped"][:3])
            raise DataError(f"none of the {len(items)} inputs could be used, so no dataset was written to "
                            f"{spec.out} (e.g. {first})")
        path = writer.finish(extra={"prepare_report": meta_summary(report)}, camera_source=camera_source(spec, state))
    except BaseException:
        writer.close()
        if state["cursor"] == 0 and writer.count == 0:  # nothing to resume: leave no empty .partial behind
            shutil.rmtree(writer.partial, ignore_errors=True)
        raise
    report["out"] = str(path)
    write_report(path, report)
    return path, report


def run_item(fn: Callable[[Any, Item], Outcome], state: Any, item: Item) -> Outcome:
    """`fn(state, item)`, or the skip known from the listing; an error escaping `fn` becomes this item's skip."""
    if item.skip is not None:
        return Outcome(item.name, skip=item.skip)
    try:
        return fn(state, item)
    except Exception as exc:
        return Outcome(item.name, skip=f"{type(exc).__name__}: {exc}")


def camera_source(spec: BuildSpec, state: dict[str, Any]) -> str:
    """The dataset's `camera_source`: prior when every used input's camera was sampled, mixed when some were."""
    if state["prior_count"] == 0:
        return spec.label_source
    return "prior" if state["prior_count"] >= state["inputs_ok"] else "mixed"


def make_report(spec: BuildSpec, items: Sequence[Item], state: dict[str, Any], written: int) -> dict[str, Any]:
    """The JSON report of a run: counts, every skipped input with its reason, notes, cameras taken from the prior."""
    return {
        "kind": spec.kind,
        "source": spec.source,
        "command": spec.command,
        "settings": spec.settings,
        "counts": {"inputs": len(items), "used": state["inputs_ok"], "skipped": len(state["skipped"]),
                   "samples_written": written, "mirrored": spec.mirror,
                   "pose_from_prior": state["prior_count"]},
        "prior": spec.prior.name if spec.prior is not None else None,
        "skipped": state["skipped"],
        "notes": state["notes"],
        "pose_from_prior": state["pose_from_prior"] if spec.list_prior_names else "all used inputs",
    }
