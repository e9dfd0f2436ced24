"""Pretrained parts are on by default: a missing file is a one-line error naming `gan3dkit weights add`; random
initialisation happens only with --random-init and is written into the checkpoint."""

from __future__ import annotations

import json
import urllib.error

import pytest
from encoder_helpers import micro_distill
from typer.testing import CliRunner

from gan3dkit.cli.main import app


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty cache and no network: every pretrained file is missing."""
    import gan3dkit.metrics.weights as W

    monkeypatch.setenv("GAN3DKIT_CACHE", str(tmp_path / "cache"))

    def no_net(url, *a, **k):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(W, "download", no_net)


@pytest.mark.parametrize("arch", ["lp3d-lt", "triplanenet-v1"])
def test_missing_backbone_is_an_error_naming_weights_add(micro_gen, tmp_path, offline, arch):
    res = CliRunner().invoke(app, ["distill-encoder", "--arch", arch, "--ckpt", str(micro_gen), "--out",
                                   str(tmp_path / "run"), "--preset", "tiny", "--steps", "1"])  # fmt: skip
    assert res.exit_code != 0
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "gan3dkit weights add" in lines[0] and "--random-init" in lines[0], res.output
    assert "encoder backbone" in lines[0] and "Traceback" not in res.output
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()


def test_random_init_is_explicit_and_recorded(micro_gen, tmp_path, offline):
    from gan3dkit.encoders.distill import distill
    from gan3dkit.train.checkpoint import read_header

    cfg = micro_distill("lp3d-lt", micro_gen, tmp_path / "run", run__steps=1)
    assert cfg.random_init
    summary = distill(cfg, resume=False, device="cpu")
    extra = read_header(tmp_path / "run" / "checkpoint.safetensors")["extra"]
    assert extra["random_init"].startswith("yes") and "RANDOM INIT" in extra["backbone"]
    assert "--random-init" in extra["lpips"] and extra["identity"] == "off (--random-init)"
    assert "RANDOM INIT" in json.dumps(summary)
