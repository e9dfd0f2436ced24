"""`gan3dkit weights list|add|fetch`: one registry, unknown digests said as unknown, files checked before caching."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gan3dkit.cli.main import app
from gan3dkit.metrics.weight_registry import registry

runner = CliRunner()


@pytest.fixture(autouse=True)
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN3DKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "weights"


def _json(res):
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout[res.stdout.index("{") :])


def test_list_covers_the_issue_and_invents_no_digest():
    rows = {r["name"]: r for r in _json(runner.invoke(app, ["weights", "list", "--json"]))["weights"]}
    for name in ("resnet34", "vgg16", "alexnet", "lpips-alex", "lpips-vgg", "ir-se50", "curricularface", "inception",
                 "triplanenet-v1", "triplanenet-v2", "ko-pose-euler", "ko-pose-quat", "ko-pose-afhq", "e4e-ffhq",
                 "e4e-afhq"):  # fmt: skip
        assert name in rows and rows[name]["used_by"] and rows[name]["url"], name
    for name in ("triplanenet-v1", "triplanenet-v2", "ko-pose-quat", "e4e-ffhq", "ir-se50", "curricularface"):
        assert rows[name]["sha256"] == "unknown" and rows[name]["direct_download"] is False
    assert rows["resnet34"]["sha256"] == "b627a593"  # torchvision's own file-name digest prefix
    assert all(not r["cached"] for r in rows.values())
    assert len({e.spec.filename for e in registry().values()}) == len(registry())  # one entry per file


def test_add_records_unknown_digests_and_refuses_mismatches(tmp_path, cache):
    f = tmp_path / "model_ir_se50.pth"
    f.write_bytes(b"not really arcface")
    res = _json(runner.invoke(app, ["weights", "add", str(f), "--json"]))
    assert res["name"] == "ir-se50" and "not verified" in res["verified"]
    assert (cache / "model_ir_se50.pth").read_bytes() == f.read_bytes()
    rows = {r["name"]: r for r in _json(runner.invoke(app, ["weights", "list", "--json"]))["weights"]}
    assert rows["ir-se50"]["cached"] and "recorded" in rows["ir-se50"]["verified"]
    (cache / "model_ir_se50.pth").write_bytes(b"changed")
    rows = {r["name"]: r for r in _json(runner.invoke(app, ["weights", "list", "--json"]))["weights"]}
    assert rows["ir-se50"]["verified"] is False
    bad = tmp_path / "alexnet-owt-7be5be79.pth"
    bad.write_bytes(b"not alexnet")
    res = runner.invoke(app, ["weights", "add", str(bad)])
    assert res.exit_code != 0 and "7be5be79" in res.output and not (cache / bad.name).exists()
    other = tmp_path / "mystery.bin"
    other.write_bytes(b"?")
    res = runner.invoke(app, ["weights", "add", str(other)])
    assert res.exit_code != 0 and "--name" in res.output
    res = _json(runner.invoke(app, ["weights", "add", str(other), "--name", "e4e-ffhq", "--json"]))
    assert (cache / "e4e_ffhq.pt").exists() and res["name"] == "e4e-ffhq"


def test_fetch_without_direct_url_says_where(cache):
    res = runner.invoke(app, ["weights", "fetch", "triplanenet-v2"])
    assert res.exit_code != 0 and "drive.google.com" in res.output and "gan3dkit weights add" in res.output
    res = runner.invoke(app, ["weights", "fetch", "nope"])
    assert res.exit_code != 0 and "weights list" in res.output


def test_fetch_uses_a_cached_file(tmp_path, cache):
    cache.mkdir(parents=True)
    (cache / "e4e_afhq.pt").write_bytes(b"x")
    res = _json(runner.invoke(app, ["weights", "fetch", "e4e-afhq", "--json"]))
    assert res["path"].endswith("e4e_afhq.pt") and res["cached"]
