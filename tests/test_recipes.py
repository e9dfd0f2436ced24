"""docs/recipes.md holds: every row's presets carry its value, and the document is what the presets generate."""

from __future__ import annotations

from pathlib import Path

import pytest

from gan3dkit.recipes import ROWS, matches, render, value

DOC = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.seed} {r.quantity} {r.field}" for r in ROWS])
def test_presets_hold_the_recipe(row):
    assert row.kind in ("paper", "code", "choice")
    assert row.kind == "paper" or row.why, "code and choice rows say where from / why"
    for target in row.targets:
        assert matches(value(target, row.field), row.value), (target, value(target, row.field), row.value)


def test_document_is_generated_from_the_presets():
    assert DOC.read_text() == render(), "regenerate: python3 -m gan3dkit.recipes > docs/recipes.md"


def test_every_seed_has_rows():
    seeds = {r.seed[:3] for r in ROWS}
    assert seeds == {"000", "001", "002", "003", "004"}
