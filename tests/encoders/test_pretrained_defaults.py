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


def _unsup3d_checkpoint(path):
    """A file in unsup3d's checkpoint layout ({'netC': ConfNet state, other nets...}) with non-default weights."""
    import torch

    from gan3dkit.encoders.triplanenet import ConfidenceNet

    torch.manual_seed(5)
    net = ConfidenceNet()
    sd = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v for k, v in net.state_dict().items()}
    torch.save({"netC": sd, "netD": {"x": torch.zeros(1)}, "epoch": 30}, path)
    return sd


def test_confidence_net_is_unsup3d_pretrained_by_default(micro_gen, tmp_path, offline):
    import torch
    import torch.nn.functional as F

    from gan3dkit.encoders.pretrained import load_confidence, require_pretrained
    from gan3dkit.encoders.triplanenet import ConfidenceNet
    from gan3dkit.metrics.weight_registry import add
    from gan3dkit.metrics.weights import WeightsUnavailable

    with pytest.raises(WeightsUnavailable, match="unsup3d.*gan3dkit weights add"):
        require_pretrained("confidence net", lambda: load_confidence(ConfidenceNet(), None))
    sd = _unsup3d_checkpoint(tmp_path / "checkpoint030.pth")
    assert add(tmp_path / "checkpoint030.pth", "unsup3d-celeba")["name"] == "unsup3d-celeba"
    net = ConfidenceNet()
    assert "26 tensors" in load_confidence(net, None)  # from the cache, strict: every ConfNet tensor
    convs = {f"network.{i}.weight" for i in (0, 3, 6, 9, 11, 13, 15, 18)} | {"out_net1.0.weight", "out_net1.3.weight",
                                                                           "out_net1.6.weight", "out_net2.0.weight"}
    assert {k for k, v in sd.items() if v.ndim == 4} == convs  # unsup3d's module indices (networks.py ConfNet)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in sd.items())
    # TriPlaneNet's conf_map.py: the original image 256 -> 64, flip channel of the L1 sigma, back up, mirrored
    x = torch.rand(2, 3, 48, 48) * 2 - 1
    im = F.interpolate(F.interpolate((x + 1) / 2, size=(256, 256), mode="bilinear"), size=(64, 64), mode="bilinear")
    want = F.interpolate(net.out_net1(net.network(im * 2 - 1))[:, 1:], size=(48, 48), mode="bilinear").flip(-1)
    assert torch.allclose(net(x.flip(-1)), want + 1e-3, atol=1e-6)


def test_triplanenet_v2_freezes_the_pretrained_sigma(micro_gen, tmp_path, offline):
    from gan3dkit.encoders.distill import distill
    from gan3dkit.train.checkpoint import load_tensors, read_header

    sd = _unsup3d_checkpoint(tmp_path / "checkpoint030.pth")
    cfg = micro_distill("triplanenet-v2", micro_gen, tmp_path / "run", run__steps=2)
    cfg.confidence_weights = str(tmp_path / "checkpoint030.pth")  # given explicitly: used even with --random-init
    distill(cfg, resume=False, device="cpu")
    extra = read_header(tmp_path / "run" / "checkpoint.safetensors")["extra"]
    assert extra["confidence"].startswith("pretrained, frozen (eq. 5)")
    saved = load_tensors(tmp_path / "run" / "checkpoint.safetensors", "C")
    assert all(saved[k].equal(v) for k, v in sd.items())  # frozen through training
    cfg = micro_distill("triplanenet-v2", micro_gen, tmp_path / "run2", run__steps=1)
    distill(cfg, resume=False, device="cpu")
    assert "RANDOM INIT" in read_header(tmp_path / "run2" / "checkpoint.safetensors")["extra"]["confidence"]
