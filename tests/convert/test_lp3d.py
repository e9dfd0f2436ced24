"""`convert lp3d`: the release's key names and sizes pinned, files in its layout (built here) reproduce the network
they were written from, wrong files are refused by key name, convert -> encode through the CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import torch

from gan3dkit.convert.eg3d import ArchitectureMismatch
from gan3dkit.convert.encoders import write_encoder
from gan3dkit.convert.lp3d import convert_lp3d, release_key
from gan3dkit.encoders.lp3d_release import LP3DReleaseConfig, LP3DReleaseEncoder, lt_defaults
from gan3dkit.encoders.models import load_encoder
from gan3dkit.encoders.render import PlaneRenderer
from gan3dkit.generate import load_generator
from gan3dkit.generate.views import view_cameras

from .encoder_files import convert_cli, fine_tune, randomize

#: The public EG3DInvEncoder (Live3DPortrait with smp 0.3.3, counted by tools/parity_lp3d.py): all parameters of
#: encoder_state_dict, and without smp's never-run layer3/layer4 (19,929,856).
RELEASED = {"Normal": (100_102_592, 80_172_736), "LT": (81_384_128, 61_454_272)}
#: sha256 of "key (shape)" lines, sorted, of the public encoder_state_dict less layer3/layer4 (170 / 130 tensors).
KEY_DIGESTS = {"Normal": "8f60ad35f0493b8a55b8ec5203397a1836ad38a4e2d2e1a2dd755e3b2cda3679",
               "LT": "659b56e93bcd29a828dae667b66d072068d75897e076312db9537edd15f5c177"}  # fmt: skip


@pytest.mark.parametrize("mode", ["Normal", "LT"])
def test_release_key_names_and_parameter_count_are_pinned(mode):
    E = LP3DReleaseEncoder(lt_defaults() if mode == "LT" else LP3DReleaseConfig())
    assert sum(p.numel() for p in E.parameters()) == RELEASED[mode][1]
    lines = "\n".join(f"{release_key(k)} {tuple(v.shape)}" for k, v in sorted(E.state_dict().items(),
                                                                              key=lambda kv: release_key(kv[0])))
    assert hashlib.sha256(lines.encode()).hexdigest() == KEY_DIGESTS[mode]
    assert release_key("deeplab.pool.weight") == "decoder.0.convs.4.1.weight"
    assert release_key("f_blocks.0.mlp.dwconv.bias") == "F_encoder.blocks.0.mlp.dwconv.dwconv.bias"
    assert release_key("backbone.layer2.0.downsample.weight") == "encoder.layer2.0.downsample.0.weight"
    assert release_key("final_embed.proj.weight") == "Final_encoder.pathembed.proj.weight"


def _tiny(G, lt: bool) -> LP3DReleaseConfig:
    base = lt_defaults() if lt else LP3DReleaseConfig()
    r = G.config.triplane_resolution
    return dataclasses.replace(base, input_resolution=2 * r, triplane_resolution=r,
                               triplane_channels=G.config.triplane_channels, resnet_widths=(8, 16),
                               resnet_blocks=(2, 1), deeplab_channels=16, vit_dim=32, f_blocks=1 if lt else 2,
                               f_channels=12, high_channels=8 if lt else 12, fuse_channels=(16, 8))  # fmt: skip


def _release_file(path, gen_ckpt, lt: bool, extra: dict | None = None):
    """A Live3DPortrait checkpoint in the coach's layout at tiny sizes (with the never-run layer3/layer4)."""
    G, _ = load_generator(gen_ckpt)
    torch.manual_seed(3)
    E = LP3DReleaseEncoder(_tiny(G, lt)).eval()
    R = PlaneRenderer(G, "learned").eval()
    randomize(E)
    with torch.no_grad():
        for p in list(E.parameters()) + list(R.parameters()):
            p.add_(torch.randn_like(p) * 0.01)
    sd = {release_key(k): v for k, v in E.state_dict().items()}
    sd["encoder.layer3.0.conv1.weight"] = torch.randn(32, 16, 3, 3)
    sd["encoder.layer4.0.conv1.bias"] = torch.randn(64)
    rsd = {("const" if k == "const_w" else k): v for k, v in R.state_dict().items()}
    torch.save({"encoder_state_dict": sd, "renderer_state_dict": rsd, "discriminator_state": {},
                "opts": {"mode": "LT" if lt else "Normal"}, "best_val_loss": 0.1, "step": 7, **(extra or {})}, path)
    return E, R, G


@pytest.fixture(scope="module")
def gen_ckpt(tmp_path_factory):
    """A tiny-preset generator checkpoint (what `--generator` names: the EG3D the encoder was trained on)."""
    from gan3dkit.networks import TriPlaneGenerator
    from gan3dkit.train.checkpoint import save_checkpoint
    from gan3dkit.train.config import train_preset

    cfg = train_preset("tiny")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("g") / "g.safetensors"
    save_checkpoint(path, {"G_ema": TriPlaneGenerator(cfg.generator).eval()}, {}, cfg.to_dict(),
                    {"nrr": cfg.generator.neural_rendering_resolution}, include_rng=False)
    return path


@pytest.mark.parametrize("lt", [False, True])
def test_converted_encoder_reproduces_the_written_network(tmp_path, gen_ckpt, lt):
    src = tmp_path / "encoder_render.pt"
    E, R, G = _release_file(src, gen_ckpt, lt)
    out = tmp_path / "lp3d.safetensors"
    summary = write_encoder(convert_lp3d(src, gen_ckpt), out, src)
    assert summary["arch"] == ("lp3d-lt-release" if lt else "lp3d-release")
    assert any("layer3/layer4 (2 tensors" in n for n in summary["notes"])
    st, cfg, header = load_encoder(out)
    assert cfg.lp3d.sr_latent == "learned" and header["extra"]["converted_from"]["file"] == "encoder_render.pt"
    x = torch.rand(2, 3, G.img_resolution, G.img_resolution, generator=torch.Generator().manual_seed(0)) * 2 - 1
    cams = view_cameras(G, [0.3], 0.1, torch.device("cpu")).to_label().expand(2, -1).contiguous()
    with torch.no_grad():
        want, got = E(x).planes, st.encoder(x).planes
        assert torch.equal(want, got)
        a, b = R(want, cams, 16), st.renderer(got, cams, 16)
    for key in ("image", "image_raw", "image_depth"):
        assert torch.equal(a[key], b[key]), key
    assert torch.equal(st.renderer.const_w, R.const_w)


def test_wrong_files_are_refused_naming_the_keys(tmp_path, gen_ckpt):
    src = tmp_path / "encoder_render.pt"
    E, _, _ = _release_file(src, gen_ckpt, False)
    data = torch.load(src, weights_only=True)
    data["encoder_state_dict"]["Final_encoder.block.attn.qq.weight"] = data["encoder_state_dict"].pop(
        "Final_encoder.block.attn.q.weight")
    bad = tmp_path / "renamed.pt"
    torch.save(data, bad)
    with pytest.raises(ArchitectureMismatch) as err:
        convert_lp3d(bad, gen_ckpt)
    assert "missing from the file: Final_encoder.block.attn.q.weight" in str(err.value)
    assert "unexpected: Final_encoder.block.attn.qq.weight" in str(err.value)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"psp_encoder.x": torch.zeros(1)}}, other)
    with pytest.raises(ArchitectureMismatch, match="not a Live3DPortrait checkpoint"):
        convert_lp3d(other, gen_ckpt)


def test_cli_convert_then_encode(tmp_path, gen_ckpt):
    from PIL import Image
    from typer.testing import CliRunner

    from gan3dkit.cli.main import app

    src = tmp_path / "encoder_render.pt"
    _release_file(src, gen_ckpt, True)
    out = tmp_path / "lp3d.safetensors"
    runner = CliRunner()
    summary = convert_cli("lp3d", src, "--generator", gen_ckpt, "--out", out)
    assert summary["arch"] == "lp3d-lt-release" and set(summary["parameters"]) == {"E", "G", "R"}
    Image.fromarray((torch.rand(32, 32, 3) * 255).byte().numpy()).save(tmp_path / "face.png")
    res = runner.invoke(app, ["encode", str(tmp_path / "face.png"), "--ckpt", str(out), "--out", str(tmp_path / "e"),
                              "--outputs", "triplane,reconstruction", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["encoder"] == "lp3d-lt-release"


def test_distill_encoder_fine_tunes_from_a_converted_file(tmp_path, gen_ckpt):
    """--init takes the release layout and its E/R/D weights (optimisers fresh); the file's G is the teacher."""
    from gan3dkit.train.checkpoint import load_tensors, read_header

    src = tmp_path / "encoder_render.pt"
    _release_file(src, gen_ckpt, True)
    conv = tmp_path / "lp3d.safetensors"
    write_encoder(convert_lp3d(src, gen_ckpt), conv, src)
    run = tmp_path / "run"
    res = fine_tune("lp3d-lt-release", conv, run)
    assert res.exit_code == 0, res.output
    header = read_header(run / "checkpoint.safetensors")
    assert header["config"]["arch"] == "lp3d-lt-release" and header["config"]["model"]["vit_dim"] == 32
    assert header["config"]["lp3d"]["sr_latent"] == "learned"
    before, after = load_tensors(conv, "E"), load_tensors(run / "checkpoint.safetensors", "E")
    assert before.keys() == after.keys() and not all(torch.equal(before[k], after[k]) for k in before)
