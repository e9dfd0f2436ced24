"""Loads the machine-readable specs in `data_specs/` (the single source of truth for the LMDB format)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

FORMAT_NAME = "gan3dkit-lmdb"
SUPPORTED_MAJOR = 1


@cache
def load_spec(major: int = SUPPORTED_MAJOR) -> dict[str, Any]:
    """Return the parsed `data_specs/lmdb_v{major}.json` (cached; treat as read-only)."""
    text = resources.files("gan3dkit.data_specs").joinpath(f"lmdb_v{major}.json").read_text(encoding="utf-8")
    spec = json.loads(text)
    if spec.get("format") != FORMAT_NAME:
        raise RuntimeError(f"data_specs/lmdb_v{major}.json is not a {FORMAT_NAME} spec")
    return spec


def spec_version() -> str:
    """The 'MAJOR.MINOR' format version this gan3dkit writes."""
    return str(load_spec()["version"])
