"""The import layering declared in pyproject.toml ([tool.importlinter]) holds, and every package is placed in it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
#: Packages that hold data or sources only, never Python code that imports gan3dkit.
NOT_LAYERED = {"data_specs", "csrc"}


def _contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return contract


def test_every_package_has_a_layer():
    placed = {name.strip().split(".", 1)[1] for layer in _contract()["layers"] for name in layer.split("|")}
    packages = {p.name for p in (ROOT / "gan3dkit").iterdir() if p.is_dir() and not p.name.startswith("__")}
    missing = sorted(packages - placed - NOT_LAYERED)
    assert not missing, f"packages without a layer in pyproject.toml [tool.importlinter]: {missing}"
    no_init = sorted(p for p in packages - NOT_LAYERED if not (ROOT / "gan3dkit" / p / "__init__.py").exists())
    assert not no_init, f"packages without __init__.py (left out of a wheel, invisible to the layer check): {no_init}"


def test_import_layers_are_kept(capsys):
    lint = pytest.importorskip("importlinter.cli", reason="import-linter is a test dependency")
    rc = lint.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    out = capsys.readouterr().out
    assert rc == 0, out[-4000:]


def test_layer_check_catches_an_upward_import(tmp_path, monkeypatch, capsys):
    """The contract is live: a lower layer importing a higher one breaks it (run on a copy of the package)."""
    lint = pytest.importorskip("importlinter.cli", reason="import-linter is a test dependency")
    import shutil

    copy = tmp_path / "gan3dkit"
    shutil.copytree(ROOT / "gan3dkit", copy, ignore=shutil.ignore_patterns("__pycache__", "csrc"))
    bad = copy / "cameras" / "_upward.py"
    bad.write_text('"""An upward import for the test."""\nfrom gan3dkit.train import loop  # noqa: F401\n')
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "gan3dkit" or m.startswith("gan3dkit.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.chdir(tmp_path)
    rc = lint.lint_imports(config_filename=str(tmp_path / "pyproject.toml"), no_cache=True)
    out = capsys.readouterr().out
    assert rc != 0
    assert "BROKEN" in out and "gan3dkit.cameras._upward -> gan3dkit.train.loop" in out, out[-4000:]


def _cycles(graph) -> list[set[str]]:
    """The import cycles of `graph` as strongly connected groups of modules (Tarjan), largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    groups: list[set[str]] = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        on.add(m)
        for d in graph.find_modules_directly_imported_by(m):
            if d not in index:
                visit(d)
                low[m] = min(low[m], low[d])
            elif d in on:
                low[m] = min(low[m], index[d])
        if low[m] == index[m]:
            group = set()
            while True:
                x = stack.pop()
                on.discard(x)
                group.add(x)
                if x == m:
                    break
            if len(group) > 1:
                groups.append(group)

    for m in sorted(graph.modules):
        if m not in index:
            visit(m)
    return sorted(groups, key=len, reverse=True)


def test_no_import_cycles_but_the_known_ones():
    """No module imports (directly or through others, at module or function level) a module that imports it back,
    except the cycles listed in KNOWN_CYCLES with their reason."""
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter")
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    found = _cycles(grimp.build_graph("gan3dkit"))
    unknown = [sorted(g) for g in found if not any(g <= known for known in KNOWN_CYCLES.values())]
    assert not unknown, f"import cycles: {unknown}"


#: Cycles left, each with why it is there (function-level imports in both).
KNOWN_CYCLES = {
    "the EG3D pickle reader and the legacy torch.save stream reader call each other":
        {"gan3dkit.convert.torchfile", "gan3dkit.convert.unpickler"},
    "the first-use self-check (ops._backend -> ops.selfcheck) runs the public ops against their references":
        {"gan3dkit.ops", "gan3dkit.ops._backend", "gan3dkit.ops.selfcheck", "gan3dkit.ops.bias_act",
         "gan3dkit.ops.conv2d_resample", "gan3dkit.ops.importance_sampling", "gan3dkit.ops.modulated_conv",
         "gan3dkit.ops.ray_marching", "gan3dkit.ops.triplane", "gan3dkit.ops.upfirdn2d"},
}
