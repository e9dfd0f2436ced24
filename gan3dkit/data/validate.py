"""Full dataset validation: every image decodes, every camera is an EG3D camera, optional fields are sane."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cameras.camera import LABEL_DIM, label_problems
from ..utils.errors import DataError
from .format import decode_field
from .reader import DatasetReader, read_meta

#: A camera whose distance from the origin differs from the dataset median by more than this factor is reported.
RADIUS_OUTLIER_FACTOR = 2.0


@dataclass
class ValidationReport:
    """Result of `validate_dataset`; `bad` lists {index, problems} for every failing sample."""

    path: str
    ok: bool
    count: int = 0
    checked: int = 0
    bad: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate_dataset(path: str | Path, progress: Callable[[int, int], None] | None = None) -> ValidationReport:
    """Decode and check every sample of a dataset; never raises for bad data, reports it instead.

    Per sample: each declared field is present and decodes to the declared shape; the camera passes
    `label_problems` (orthonormal rotation, sane intrinsics and radius); ypr/latent finite; mask binary-ish uint8;
    depth positive where mask > 0 and +inf or positive elsewhere. Dataset level: radius outliers against the
    median (factor `RADIUS_OUTLIER_FACTOR`), and stray keys beyond `count` are not allowed.
    """
    path = Path(path)
    try:
        meta = read_meta(path)
    except (DataError, FileNotFoundError) as exc:
        return ValidationReport(str(path), ok=False, errors=[str(exc)])
    reader = DatasetReader(path)
    count = len(reader)
    report = ValidationReport(str(path), ok=True, count=count)
    if count == 0:
        report.errors.append(f"{path} holds 0 samples: nothing to train on; prepare it again with usable inputs")
    radii = np.full(count, np.nan)
    for i in range(count):
        problems: list[str] = []
        decoded: dict[str, Any] = {}
        for name in meta["fields"]:
            try:
                raw = reader.read_raw(i, name)
            except Exception as exc:  # lmdb.Error on a damaged page
                problems.append(f"{name}: cannot read ({exc})")
                continue
            if raw is None:
                problems.append(f"{name}: missing")
                continue
            try:
                value = decode_field(name, raw, meta)
            except Exception as exc:  # decoding failures of any kind are data problems here
                problems.append(f"{name}: {exc}")
                continue
            decoded[name] = value
            problems += [f"{name}: {p}" for p in _field_problems(name, value)]
            if name == "camera" and np.isfinite(value).all():
                radii[i] = float(np.linalg.norm(value[[3, 7, 11]]))
        if "mask" in decoded and "depth" in decoded:
            problems += mask_depth_problems(decoded["mask"], decoded["depth"])
        if problems:
            report.bad.append({"index": i, "problems": problems})
        report.checked += 1
        if progress is not None:
            progress(i + 1, count)
    finite = radii[np.isfinite(radii)]
    if finite.size:
        median = float(np.median(finite))
        report.stats = {"radius_median": median, "radius_min": float(finite.min()), "radius_max": float(finite.max())}
        outliers = np.where((radii > median * RADIUS_OUTLIER_FACTOR) | (radii < median / RADIUS_OUTLIER_FACTOR))[0]
        bad_by_index = {b["index"]: b for b in report.bad}
        for i in outliers.tolist():
            msg = f"camera: radius {radii[i]:.4g} is an outlier (dataset median {median:.4g})"
            bad_by_index.setdefault(i, {"index": i, "problems": []})["problems"].append(msg)
        report.bad = sorted(bad_by_index.values(), key=lambda b: b["index"])
        prior = meta.get("pose_prior") or {}
        if prior.get("radius") and abs(median - prior["radius"]) > 0.05 * prior["radius"]:
            report.warnings.append(f"median camera radius {median:.4g} differs from the pose prior's {prior['radius']}")
    try:
        stray = _stray_keys(reader, count)
    except Exception as exc:  # lmdb.Error on a damaged page
        stray = []
        report.errors.append(f"cannot scan the keys of {path} ({exc}); the store is damaged")
    if stray:
        report.errors.append(f"{len(stray)} records beyond count={count}, e.g. {stray[:3]}")
    reader.close()
    report.ok = not report.bad and not report.errors
    return report


def _field_problems(name: str, value: Any) -> list[str]:
    if name == "camera":
        return label_problems(value)
    if name in ("ypr", "latent"):
        return [] if np.isfinite(value).all() else ["contains NaN or inf"]
    if name == "depth":
        d = value.astype(np.float32)
        out = []
        if np.isnan(d).any():
            out.append("contains NaN")
        if (d <= 0).any():
            out.append("non-positive depth values")
        return out
    return []


def _stray_keys(reader: DatasetReader, count: int) -> list[str]:
    stray = []
    with reader._txn() as txn:
        for key in txn.cursor().iternext(keys=True, values=False):
            text = bytes(key).decode("utf-8", "replace")
            head = text.split("/", 1)[0]
            if head.isdigit() and int(head) >= count:
                stray.append(text)
    return stray


def mask_depth_problems(mask: np.ndarray, depth: np.ndarray) -> list[str]:
    """Consistency of a mask and a depth map: finite depth inside the mask (used when both are present)."""
    inside = mask > 127
    if inside.any() and not np.isfinite(depth[inside].astype(np.float32)).all():
        return ["depth is not finite inside the mask"]
    return []


def camera_label_problems(labels: np.ndarray) -> dict[int, list[str]]:
    """{index: problems} for the rows of a [N, 25] label array that are not valid EG3D cameras (see label_problems).

    A vectorised screen (finite, bottom row, orthonormal rotation, intrinsics layout, focal, principal point, radius,
    with label_problems' default limits) picks the rows worth the detailed per-row check, so 70k labels take ms.
    """
    if len(labels) == 0:
        return {}
    x = np.asarray(labels, dtype=np.float64).reshape(len(labels), -1)
    if x.shape[1] != LABEL_DIM:
        return {i: [f"label has {x.shape[1]} values, expected {LABEL_DIM}"] for i in range(len(x))}
    with np.errstate(all="ignore"):
        finite = np.isfinite(x).all(1)
        m, k = np.nan_to_num(x[:, :16]).reshape(-1, 4, 4), np.nan_to_num(x[:, 16:]).reshape(-1, 3, 3)
        r = m[:, :3, :3]
        ortho = np.abs(np.einsum("nji,njk->nik", r, r) - np.eye(3)).max((1, 2))
        radius = np.linalg.norm(m[:, :3, 3], axis=1)
        ok = (finite & (np.abs(m[:, 3] - [0, 0, 0, 1]).max(1) <= 1e-4) & (ortho <= 1e-3) & (np.linalg.det(r) > 0)
              & (np.abs(k[:, 2] - [0, 0, 1]).max(1) <= 1e-4) & (np.abs(k[:, 1, 0]) <= 1e-4)
              & (k[:, 0, 0] >= 0.05) & (k[:, 0, 0] <= 100) & (k[:, 1, 1] >= 0.05) & (k[:, 1, 1] <= 100)
              & (k[:, 0, 2] >= 0) & (k[:, 0, 2] <= 1) & (k[:, 1, 2] >= 0) & (k[:, 1, 2] <= 1)
              & (radius >= 1e-3) & (radius <= 1e3))
    out = {}
    for i in np.flatnonzero(~ok).tolist():
        problems = label_problems(x[i])
        if problems:
            out[i] = problems
    return out


def check_dataset_cameras(labels: np.ndarray, path: str | Path, show: int = 5) -> None:
    """Raise DataError naming the samples whose camera label is invalid (training would diverge on them)."""
    bad = camera_label_problems(labels)
    if bad:
        listed = "; ".join(f"sample {i}: {p[0]}" for i, p in list(bad.items())[:show])
        more = f" (and {len(bad) - show} more)" if len(bad) > show else ""
        raise DataError(f"{path}: {len(bad)} of {len(labels)} samples have invalid camera labels: {listed}{more}. "
                        f"Run `gan3dkit data validate {path}` and prepare the dataset again")
