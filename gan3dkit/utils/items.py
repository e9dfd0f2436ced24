"""One loop over the items of a folder, a video or a dataset: do the good ones, report the bad ones, keep going.

Items are keyed by their full input name (the path relative to the source folder, e.g. `x.png` and `x.jpg` are two
items; `sub/x.png` a third), so outputs named by the key never collide and a rerun never mistakes one for another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Gan3dkitError, UsageError

#: What a bad item raises (unreadable, no face, bad camera, a failed write); anything else is a bug and propagates.
ITEM_ERRORS: tuple[type[BaseException], ...] = (Gan3dkitError, ValueError, OSError)


@dataclass
class Item:
    """One input: `key` names its outputs and its line in the report; `path` (a file) or `index` (a frame, a
    sample) says where it comes from."""

    key: str
    path: Path | None = None
    index: int | None = None
    notes: list[str] = field(default_factory=list)


def check_out_folder(out: Path, source: Path | None = None) -> None:
    """UsageError when --out is an existing file, or the source folder itself (outputs would become inputs)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is an existing file; give a folder (new or existing)")
    if source is not None and source.is_dir() and out.resolve() == source.resolve():
        raise UsageError(f"--out {out} is the input folder itself; give another folder (e.g. {out}/out is fine)")


def folder_items(source: Path, suffixes: Sequence[str], exclude: Path | None = None) -> list[Item]:
    """Files under `source` with one of `suffixes` (sorted, recursive), keyed by their path relative to `source`;
    nothing under `exclude` (the output folder: a rerun must not read its own outputs). UsageError when none."""
    skip = exclude.resolve() if exclude is not None else None
    found = []
    for p in sorted(source.rglob("*")):
        if p.suffix.lower() not in suffixes or not p.is_file():
            continue
        if skip is not None and (p.resolve() == skip or skip in p.resolve().parents):
            continue
        found.append(Item(p.relative_to(source).as_posix(), p))
    if not found:
        raise UsageError(f"{source} holds no images ({', '.join(suffixes)})"
                         + (f" outside the output folder {exclude}" if skip is not None else ""))
    return found


def run_items(items: Sequence[Item], load: Callable[[Item], Any], process: Callable[[Item, Any], dict[str, Any]], *,
              done: Callable[[Item], str | None] | None = None, catch: bool = True,
              on_item: Callable[[int, int, dict[str, Any]], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Run `process(item, load(item))` for every item; returns {items: [entries], failed: [{name, error}], skipped:
    [{name, reason}]}. `done(item)` gives a reason to skip it (already done); an item raising one of ITEM_ERRORS
    is reported and the loop goes on (`catch=False`: it propagates, for a single input)."""
    report: dict[str, Any] = {"items": [], "failed": [], "skipped": []}
    for i, item in enumerate(items):
        try:
            reason = done(item) if done is not None else None
            if reason:
                report["skipped"].append({"name": item.key, "reason": reason})
            else:
                entry = process(item, load(item))
                if item.notes:
                    entry.setdefault("notes", []).extend(n for n in item.notes if n not in entry.get("notes", []))
                report["items"].append(entry)
        except ITEM_ERRORS as exc:
            if not catch:
                raise
            text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
            report["failed"].append({"name": item.key, "error": text})
        if on_item is not None:
            on_item(i + 1, len(items), report)
    return report


def exit_code(report: dict[str, Any]) -> int:
    """1 when items failed and none was done or skipped as done (nothing usable came out), else 0."""
    return 1 if report["failed"] and not report["items"] and not report["skipped"] else 0
