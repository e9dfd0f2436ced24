"""`convert triplanenet`: files in the release's layout (built here from gan3dkit modules) convert to encoder
checkpoints whose outputs equal the network they were written from; wrong files are refused by key name."""

from __future__ import annotations

import json

import pytest
import torch

from gan3dkit.convert.eg3d import ArchitectureMismatch
from gan3dkit.convert.encoders import write_encoder
from gan3dkit.convert.triplanenet import convert_triplanenet, tpn_file_key
from gan3dkit.encoders.models import load_encoder
from gan3dkit.encoders.triplanenet import TriPlaneNetConfig, TriPlaneNetEncoder
from gan3dkit.generate.views import view_cameras
from gan3dkit.networks import TriPlaneGenerator
from gan3dkit.train.config import train_preset

from .encoder_files import fine_tune, randomize

#: Parameters of the public networks (anantarb/triplanenet at 25df29b, counted by tools/parity_triplanenet.py):
#: psp_encoder 209,450,688 + triplanenet_encoder 42,106,496 (v1), 41,368,416 (v2, nearest), 42,191,168 (v2, shuffle).
RELEASED = {(1, "pixelshuffle"): 209_450_688 + 42_106_496, (2, "nearest"): 209_450_688 + 41_368_416,
            (2, "pixelshuffle"): 209_450_688 + 42_191_168}


def _release_file(path, version: int, upsample: str = "pixelshuffle", extra: dict | None = None):
    """A TriPlaneNet checkpoint in the public layout at the tiny preset (IR-SE stages of distinct widths)."""
    torch.manual_seed(version)
    gcfg = train_preset("tiny").generator
    G = TriPlaneGenerator(gcfg).eval()
    G.backbone.mapping.w_avg.normal_()
    dec = (32, 32, 16, 16) if upsample == "pixelshuffle" else (16, 12, 8, 8)
    cfg = TriPlaneNetConfig(version=version, input_resolution=64, triplane_resolution=gcfg.triplane_resolution,
                            triplane_channels=gcfg.triplane_channels, num_ws=G.num_ws, w_dim=G.w_dim,
                            widths=(8, 12, 16, 24), units=(1, 2, 2, 1), offset_widths=(8, 12, 16, 24),
                            offset_units=(2, 1, 2, 2), decoder_widths=dec, head_channels=12, upsample=upsample,
                            pose_head=False)  # fmt: skip
    E = TriPlaneNetEncoder(cfg, G).eval()
    randomize(E)
    sd = {tpn_file_key(k, version): v for k, v in E.state_dict().items() if k != "latent_avg"}
    sd.update({f"decoder.{k}": v for k, v in G.state_dict().items()})
    opts = {"n_styles": G.num_ws, "device": "cuda:0", "checkpoint_path": None,
            "use_pixelshuffle": upsample == "pixelshuffle"}
    torch.save({"state_dict": sd, "opts": opts, "best_val_loss": 0.5, "step": 10,
                "psp_optimizer": torch.optim.Adam(E.psp.parameters()).state_dict(), **(extra or {})}, path)  # fmt: skip
    return E, G


@pytest.mark.parametrize("version,upsample", [(1, "pixelshuffle"), (2, "nearest"), (2, "pixelshuffle")])
def test_converted_encoder_reproduces_the_written_network(tmp_path, version, upsample):
    src = tmp_path / "best_model.pt"
    E, G = _release_file(src, version, upsample)
    out = tmp_path / "tpn.safetensors"
    summary = write_encoder(convert_triplanenet(src, preset="tiny", nrr=32), out, src)
    assert summary["arch"] == f"triplanenet-v{version}" and summary["upsample"] == upsample
    assert any("latent_avg is not in the file" in n for n in summary["notes"])
    st, cfg, header = load_encoder(out)
    assert header["extra"]["converted_from"]["file"] == "best_model.pt"
    assert tuple(cfg.model["offset_units"]) == (2, 1, 2, 2) and tuple(cfg.model["units"]) == (1, 2, 2, 1)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    cams = view_cameras(G, [0.3, -0.2], 0.1, "cpu").to_label()
    G.neural_rendering_resolution = 32
    E.nrr = 32
    with torch.no_grad():
        E.latent_avg.copy_(G.backbone.mapping.w_avg.expand_as(E.latent_avg))
        want, got = E(x, cams), st.encoder(x, cams)
    assert torch.equal(want.ws, got.ws)
    assert (want.planes - got.planes).abs().max() < 1e-6
    assert (want.planes - want.base).abs().max() > 1e-3  # offsets are not zero: the U-Net was compared


def test_wrong_files_are_refused_naming_keys(tmp_path):
    src = tmp_path / "a.pt"
    _release_file(src, 1)
    data = torch.load(src, weights_only=False)
    sd = data["state_dict"]
    sd.pop("triplanenet_encoder.up3.conv.double_conv.1.bias")
    sd["triplanenet_encoder.extra_layer.weight"] = torch.zeros(1)
    torch.save(data, tmp_path / "b.pt")
    with pytest.raises(ArchitectureMismatch) as exc:
        convert_triplanenet(tmp_path / "b.pt", preset="tiny", nrr=32)
    msg = str(exc.value)
    assert "missing from the file: triplanenet_encoder.up3.conv.double_conv.1.bias" in msg
    assert "unexpected: triplanenet_encoder.extra_layer.weight" in msg
    torch.save({"state_dict": {"foo.weight": torch.zeros(2)}}, tmp_path / "c.pt")
    with pytest.raises(ArchitectureMismatch, match="unexpected keys .*foo.weight"):
        convert_triplanenet(tmp_path / "c.pt", preset="tiny")
    with pytest.raises(ArchitectureMismatch, match="decoder"):
        convert_triplanenet(src, preset="ffhq512")  # the decoder is the tiny preset's, not ffhq512's


def test_a_payload_in_the_file_is_refused_and_not_run(tmp_path):
    import os

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"state_dict": {}, "opts": Evil()}, tmp_path / "evil.pt")
    from gan3dkit.convert import RefusedPickle

    with pytest.raises(RefusedPickle):
        convert_triplanenet(tmp_path / "evil.pt", preset="tiny")
    assert not marker.exists()


def test_v2_discriminator_is_converted_when_present(tmp_path):
    from gan3dkit.networks import DualDiscriminator

    D = DualDiscriminator(train_preset("tiny").discriminator)
    src = tmp_path / "v2.pt"
    _release_file(src, 2, "nearest", {"dis_state_dict": D.state_dict()})
    conv = convert_triplanenet(src, preset="tiny", nrr=32)
    assert torch.equal(conv.modules["D"].state_dict()["b32.conv0.weight"], D.state_dict()["b32.conv0.weight"])
    assert conv.config["loss"]["adv_tpn"] > 0


def test_cli_convert_then_encode(tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from gan3dkit.cli.main import app

    runner = CliRunner()
    src = tmp_path / "best_model.pt"
    _release_file(src, 1)
    out = tmp_path / "tpn.safetensors"
    res = runner.invoke(app, ["convert", "triplanenet", str(src), "--preset", "tiny", "--nrr", "32", "--out", str(out),
                              "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout[res.stdout.index("{") :])
    assert summary["parameters"]["E"] > 0 and summary["source"]["sha256"]
    Image.fromarray((torch.rand(64, 64, 3) * 255).byte().numpy()).save(tmp_path / "face.png")
    res = runner.invoke(app, ["encode", str(tmp_path / "face.png"), "--ckpt", str(out), "--out", str(tmp_path / "enc"),
                              "--outputs", "triplane,reconstruction", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["camera"] == "frontal" and report["encoder"] == "triplanenet-v1"
    assert report["items"][0]["triplane"].endswith(".safetensors")
    res = runner.invoke(app, ["convert", "triplanenet", str(tmp_path / "face.png"),
                              "--out", str(tmp_path / "x.safetensors")])
    assert res.exit_code == 1 and "Traceback" not in res.output


def test_parameter_count_matches_the_release():
    G = TriPlaneGenerator(train_preset("ffhq512").generator)
    for (version, up), count in RELEASED.items():
        dec = (512, 384, 256, 96) if up == "pixelshuffle" else (512, 256, 128, 64)
        E = TriPlaneNetEncoder(TriPlaneNetConfig(version=version, upsample=up, decoder_widths=dec, pose_head=False), G)
        assert sum(p.numel() for p in E.parameters()) == count, (version, up)
    assert E.offsets.taps == [2, 6, 20, 21] and E.psp.ends == [2, 6, 20, 23]


def test_distill_encoder_fine_tunes_from_a_converted_file(tmp_path):
    """--init takes the converted architecture and weights (optimisers fresh); the file's G is the teacher."""

    from gan3dkit.train.checkpoint import load_tensors, read_header

    src = tmp_path / "best_model.pt"
    _release_file(src, 1)
    conv = tmp_path / "tpn.safetensors"
    write_encoder(convert_triplanenet(src, preset="tiny", nrr=32), conv, src)
    run = tmp_path / "run"
    res = fine_tune("triplanenet-v1", conv, run)
    assert res.exit_code == 0, res.output
    header = read_header(run / "checkpoint.safetensors")
    assert "weights of tpn.safetensors (E)" in header["extra"]["init"]
    assert tuple(header["config"]["model"]["offset_units"]) == (2, 1, 2, 2)
    before, after = load_tensors(conv, "E"), load_tensors(run / "checkpoint.safetensors", "E")
    # the offset branch trains only from step 20 (tiny schedule): after one step it is still the converted one
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("offsets.") and "running" not in k)
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("psp.styles"))
