"""PoF3D snapshots: identical renders at the learned poses, the release's key names, refusals naming the keys, CLI."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from typer.testing import CliRunner

from gan3dkit.cli.main import app
from gan3dkit.convert import ArchitectureMismatch, RefusedPickle, write_converted
from gan3dkit.convert.eg3d import build_modules
from gan3dkit.convert.pof3d import D_RENAMES, G_RENAMES, convert_pof3d_pickle
from gan3dkit.convert.torchfile import module_state
from gan3dkit.convert.unpickler import read_pickle
from gan3dkit.generate import load_generator
from gan3dkit.networks import TriPlaneGenerator
from gan3dkit.networks.pose_heads import PoseHeadConfig, PoseHeadDiscriminator
from gan3dkit.train.checkpoint import load_checkpoint, read_header
from gan3dkit.train.config import TrainConfig, train_preset
from gan3dkit.train.engine import check_resume
from gan3dkit.train.loop import RESUMABLE_CHANGES

from .encoder_files import convert_cli
from .pof3d_format import pof3d_snapshot_bytes


@pytest.fixture(scope="module")
def pof3d_nets():
    torch.manual_seed(0)
    cfg = train_preset("tiny", "pof3d")
    cfg.generator.superres.antialias = False  # what PoF3D's SR does whatever sr_antialias says
    cfg.discriminator.raw_resize_mode = "none"  # PoF3D's filtered_resizing: plain bilinear
    G = TriPlaneGenerator(cfg.generator).eval()
    D = PoseHeadDiscriminator(cfg.discriminator, PoseHeadConfig(out_dim=2)).eval()
    with torch.no_grad():  # non-zero w_avg and pose biases so a swapped tensor would show
        G.backbone.mapping.w_avg.normal_()
        G.pose_mapping.fc1.bias.normal_(0, 10)
    return G, D


@pytest.fixture(scope="module")
def pof3d_pkl(pof3d_nets, tmp_path_factory):
    path = tmp_path_factory.mktemp("pof3d") / "network-snapshot-000000.pkl"
    path.write_bytes(pof3d_snapshot_bytes(*pof3d_nets))
    return path


def _render_learned(G, z):
    with torch.no_grad():
        pose = G.pose_mapping(G.mapping(z, torch.zeros(len(z), 25))[:, 0])
        cam = G.pose_mapping.cameras(pose)
        out = G(z, cam, noise_mode="const", deterministic_render=True)
    return pose, out


def test_release_key_names_are_pinned(pof3d_pkl):
    """The names PoF3D's code gives the pose mapping and D's camera head (training/networks_stylegan2.py)."""
    data = read_pickle(pof3d_pkl)
    g_keys, d_keys = set(module_state(data["G_ema"]).tensors), set(module_state(data["D"]).tensors)
    assert {"backbone.mapping.affine_layer1.weight", "backbone.mapping.affine_layer1.bias",
            "backbone.mapping.affine_layer2.weight", "backbone.mapping.affine_layer2.bias",
            "backbone.mapping.fc0.weight", "backbone.mapping.w_avg", "decoder.net.0.weight"} <= g_keys
    assert not any(k.startswith("pose_mapping") or "embed" in k for k in g_keys)
    assert {"b4.cam_out1.weight", "b4.cam_out1.bias", "b4.cam_out2.weight", "b4.cam_out2.bias",
            "mapping.embed.weight", "b4.fc.weight"} <= d_keys  # fmt: skip
    assert G_RENAMES["pose_mapping.fc0."] == "backbone.mapping.affine_layer1."
    assert D_RENAMES == {"pose_head.fc0.": "b4.cam_out1.", "pose_head.fc1.": "b4.cam_out2."}


def test_round_trip_renders_identically(pof3d_nets, pof3d_pkl, tmp_path):
    G, D = pof3d_nets
    conv = convert_pof3d_pickle(pof3d_pkl)
    cfg = conv.config
    assert cfg.method_name == "pof3d" and cfg.generator == G.config and cfg.discriminator == D.config
    assert cfg.generator.mapping.c_dim == 0 and not cfg.loss.gen_pose_cond and cfg.discriminator.c_dim == 2
    pof = cfg.method.pof3d
    assert (pof.dis_cam_weight, pof.pose_gd_weight, pof.flip_type) == (2.0, 1.0, "flip_both")
    summary = write_converted(conv, tmp_path / "p.safetensors", pof3d_pkl)
    assert summary["resumable"] and summary["source"]["kind"] == "pof3d-pkl"
    G2, _ = load_generator(tmp_path / "p.safetensors")
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1))
    (pa, a), (pb, b) = _render_learned(G, z), _render_learned(G2, z)
    assert torch.equal(pa, pb) and (pa[:, 0] - math.pi / 2).abs().max() > 0.1  # the learned pose is read
    for key in ("image", "image_raw", "image_depth"):
        assert torch.equal(a[key], b[key]), key
    D2 = build_modules(conv)["D"]
    for k, v in D.state_dict().items():
        assert torch.equal(D2.state_dict()[k], v), k
    # train --resume accepts it: same config check, strict load of G/D/G_ema
    header = read_header(tmp_path / "p.safetensors")
    cfg2 = TrainConfig.from_dict(json.loads((tmp_path / "p.config.json").read_text()))
    cfg2.validate()
    check_resume(cfg2.to_dict(), header, tmp_path / "p.safetensors", RESUMABLE_CHANGES)
    Gr = TriPlaneGenerator(cfg2.generator)
    Dr = PoseHeadDiscriminator(cfg2.discriminator, PoseHeadConfig(out_dim=2, hidden_dim=cfg2.method.pof3d.head_hidden))
    load_checkpoint(tmp_path / "p.safetensors", {"G": Gr, "D": Dr, "G_ema": copy.deepcopy(Gr)}, {})


def test_other_kinds_refused_naming_the_keys(pof3d_nets, snapshot_pkl, tmp_path):
    G, D = pof3d_nets
    with pytest.raises(ArchitectureMismatch, match=r"G is a 'TriPlaneGenerator'.*eg3d-pkl"):
        convert_pof3d_pickle(snapshot_pkl)  # an EG3D snapshot
    odd = tmp_path / "odd.pkl"  # the second pose layer under another name
    odd.write_bytes(pof3d_snapshot_bytes(G, D, pose_names={"fc0": "affine_layer1", "fc1": "affine_layer3"}))
    with pytest.raises(ArchitectureMismatch) as err:
        convert_pof3d_pickle(odd)
    msg = str(err.value)
    assert "missing from the file: backbone.mapping.affine_layer2.bias, backbone.mapping.affine_layer2.weight" in msg
    assert "unexpected: backbone.mapping.affine_layer3.bias, backbone.mapping.affine_layer3.weight" in msg
    bg = tmp_path / "bg.pkl"
    bg.write_bytes(pof3d_snapshot_bytes(G, D, g_over={"bg_kwargs": {"num_bg_pts": 4}, "wrong": False}))
    with pytest.raises(ArchitectureMismatch, match=r"bg_kwargs .*wrong=False"):
        convert_pof3d_pickle(bg)


def test_cli_convert_and_generate_learned(pof3d_nets, pof3d_pkl, tmp_path):
    runner = CliRunner()
    out = tmp_path / "p.safetensors"
    summary = convert_cli("pof3d", pof3d_pkl, "--out", out)
    assert summary["networks"] == ["D", "G", "G_ema"] and summary["resumable"]
    res = runner.invoke(app, ["generate", "--ckpt", str(out), "--seeds", "0", "--pose", "learned",
                              "--out", str(tmp_path / "gen")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (tmp_path / "gen" / "views.png").exists()
    no_d = tmp_path / "noD.pkl"
    no_d.write_bytes(pof3d_snapshot_bytes(pof3d_nets[0], None))
    res = runner.invoke(app, ["convert", "pof3d", str(no_d), "--out", str(tmp_path / "g.safetensors")])
    assert res.exit_code == 0 and "train --resume is not possible" in res.output
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"\x80\x04cposix\nsystem\n\x8c\x04true\x85R.")
    res = runner.invoke(app, ["convert", "pof3d", str(evil), "--out", str(tmp_path / "e.safetensors")])
    assert res.exit_code == 1 and "posix.system" in res.output and not (tmp_path / "e.safetensors").exists()
    with pytest.raises(RefusedPickle, match="posix.system"):
        convert_pof3d_pickle(evil)
