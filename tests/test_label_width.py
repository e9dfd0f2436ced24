"""The 25-float camera label's width is defined once, in gan3dkit/cameras: no literal 25 (no `[:, :25]`) elsewhere."""

from __future__ import annotations

import ast
from pathlib import Path

from gan3dkit.cameras import LABEL_DIM, Cameras

PACKAGE = Path(__file__).resolve().parents[1] / "gan3dkit"
#: Integer 25s that are not a camera label's width (file, the line's text).
NOT_A_LABEL = {
    ("encoders/media.py", "fps = float(stream.average_rate or 25)"),
    ("metrics/probes.py", "if progress is not None and (step + 1) % 25 == 0:"),
}


def _literal_25s() -> list[tuple[str, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("cameras/"):
            continue
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and type(node.value) is int and node.value == 25:
                found.append((rel, lines[node.lineno - 1].strip()))
    return found


def test_label_width_is_defined_only_in_cameras():
    assert LABEL_DIM == 25 and Cameras.from_label([0.0] * LABEL_DIM).to_label().shape == (1, LABEL_DIM)
    stray = [hit for hit in _literal_25s() if hit not in NOT_A_LABEL]
    assert not stray, f"use gan3dkit.cameras.LABEL_DIM (or Cameras) instead of a literal 25: {stray}"


def test_the_allow_list_is_still_needed():
    assert set(_literal_25s()) >= NOT_A_LABEL  # a fixed site leaves the list
