"""Static checks in CI: ruff with the project's rule set and mypy on gan3dkit/, both with zero findings."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_rule_set_is_clean():
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (bash tools/install.sh --test installs it)")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "gan3dkit", "tests", "tools"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_mypy_is_clean():
    api = pytest.importorskip("mypy.api", reason="mypy is a test dependency")
    out, err, rc = api.run(["--config-file", str(ROOT / "pyproject.toml"), "--no-incremental",
                            "--python-executable", sys.executable, str(ROOT / "gan3dkit")])
    assert rc == 0, out[-6000:] + err[-2000:]
