"""The CLI end to end: help, env, data info/validate/export, prepare eg3d; lazy imports; clean errors."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import lmdb
import pytest
from typer.testing import CliRunner

from gan3dkit.cli.main import app

runner = CliRunner()


def test_help_lists_only_implemented_groups_and_examples():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("prepare", "data", "env", "quickstart", "train", "generate", "evaluate", "train-probe", "invert",
                "edit", "convert", "distill-encoder", "encode"):
        assert f" {cmd} " in res.output
    for sub in (
        ["data", "info"],
        ["data", "validate"],
        ["data", "export"],
        ["prepare", "eg3d"],
        ["env"],
        ["train"],
        ["generate"],
        ["prepare", "synthetic"],
        ["quickstart"],
        ["evaluate"],
        ["train-probe"],
        ["prepare", "ffhq"],
        ["prepare", "single"],
        ["prepare", "cub"],
        ["prepare", "lsun"],
        ["prepare", "folder"],
        ["prepare", "afhq"],
    ):
        assert "Example:" in runner.invoke(app, [*sub, "--help"]).output


def test_cli_import_is_lazy():
    code = "import sys, gan3dkit.cli.main; print(sorted(m for m in ('torch', 'numpy', 'lmdb') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_env_json():
    res = runner.invoke(app, ["env", "--json"])
    assert res.exit_code == 0
    info = json.loads(res.stdout)
    assert info["versions"]["torch"] and info["dataset_format"].startswith("gan3dkit-lmdb v1")
    assert "cuda_available" in info["device"] and isinstance(info["optional"], dict)


def test_info_validate_export_import(dataset_factory, tmp_path):
    path, data = dataset_factory(n=4, fields=("image", "camera", "depth", "mask"))
    res = runner.invoke(app, ["data", "info", str(path), "--json", "--grid", str(tmp_path / "g.png")])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["meta"]["count"] == 4 and (tmp_path / "g.png").stat().st_size > 0
    assert abs(info["stats"]["radius"]["mean"] - 2.7) < 1e-4
    res = runner.invoke(app, ["data", "validate", str(path), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["ok"] is True
    zpath = tmp_path / "e.zip"
    assert runner.invoke(app, ["data", "export", str(path), "--out", str(zpath)]).exit_code == 0
    res = runner.invoke(app, ["prepare", "eg3d", str(zpath), "--out", str(tmp_path / "back.lmdb"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["count"] == 4
    assert runner.invoke(app, ["data", "validate", str(tmp_path / "back.lmdb")]).exit_code == 0


def test_validate_fails_with_exit_1_and_bad_input_gets_clean_errors(dataset_factory, tmp_path):
    path, _ = dataset_factory(n=3)
    env = lmdb.open(str(path), map_size=1 << 30)
    with env.begin(write=True) as txn:
        txn.put(b"00000001/image", b"broken")
    env.close()
    res = runner.invoke(app, ["data", "validate", str(path)])
    assert res.exit_code == 1 and "sample 1" in res.output and "INVALID" in res.output
    res = runner.invoke(app, ["data", "info", str(tmp_path / "missing.lmdb")])
    assert res.exit_code == 2 and "not found" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["prepare", "eg3d", str(tmp_path), "--out", str(tmp_path / "o.lmdb")])
    assert res.exit_code == 1 and "dataset.json" in res.output  # bad data (no labels): exit 1


def test_errors_are_handled_without_click_installed(tmp_path, monkeypatch):
    """typer 0.29 vendors click (typer._click) and no longer installs it: a command's error must still become one
    line and exit 2 when `import click` fails (it raised ModuleNotFoundError in the error handler before)."""
    from gan3dkit.cli.common import _click_errors

    if importlib.util.find_spec("typer._click") is None:
        pytest.skip("this typer uses click itself")
    monkeypatch.setitem(sys.modules, "click", None)  # `import click` now raises ImportError
    from typer._click.exceptions import ClickException

    assert _click_errors() == (ClickException,)
    res = runner.invoke(app, ["data", "info", str(tmp_path / "missing.lmdb")])
    assert res.exit_code == 2 and "not found" in res.output and "click" not in res.output
