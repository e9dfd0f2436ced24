"""Static checks in CI: mypy on gan3dkit/ with zero findings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_is_clean():
    api = pytest.importorskip("mypy.api", reason="mypy is a test dependency")
    out, err, rc = api.run(["--config-file", str(ROOT / "pyproject.toml"), "--no-incremental",
                            "--python-executable", sys.executable, str(ROOT / "gan3dkit")])
    assert rc == 0, out[-6000:] + err[-2000:]
