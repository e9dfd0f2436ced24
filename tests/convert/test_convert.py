"""EG3D pickle / state-dict conversion: identical renders, refusals without side effects, mismatch reports, CLI."""

from __future__ import annotations

import builtins
import copy
import json
import os
import pickle

import pytest
import torch
from typer.testing import CliRunner

from gan3dkit.cli.main import app
from gan3dkit.convert import (
    ArchitectureMismatch,
    CorruptPickle,
    RefusedPickle,
    convert_eg3d_pickle,
    convert_state_dict,
    read_pickle,
    write_converted,
)
from gan3dkit.generate import load_generator
from gan3dkit.generate.views import view_cameras
from gan3dkit.networks import DualDiscriminator, TriPlaneGenerator
from gan3dkit.train.checkpoint import load_checkpoint, read_header
from gan3dkit.train.config import TrainConfig, train_preset
from gan3dkit.train.engine import check_resume
from gan3dkit.train.loop import RESUMABLE_CHANGES, _make_phases

from .eg3d_format import Record, fake_modules, snapshot_bytes
from .encoder_files import convert_cli


def _render(G, z):
    cams = view_cameras(G, [0.3, -0.2], 0.1, torch.device("cpu")).to_label()
    with torch.no_grad():
        return G(z, cams, noise_mode="const", deterministic_render=True)


def _same_images(G_ref, G_new):
    z = torch.randn(2, G_ref.z_dim, generator=torch.Generator().manual_seed(1))
    a, b = _render(G_ref, z), _render(G_new, z)
    for key in ("image", "image_raw", "image_depth"):
        assert torch.equal(a[key], b[key]), key


def test_pickle_converts_and_renders_identically(tiny_nets, snapshot_pkl, tmp_path):
    G, D = tiny_nets
    conv = convert_eg3d_pickle(snapshot_pkl)
    assert conv.config.generator == G.config  # kwargs + shapes give back the same architecture
    assert conv.config.discriminator == D.config
    assert conv.config.generator.rendering.plane_axes == "eg3d"
    summary = write_converted(conv, tmp_path / "m.safetensors", snapshot_pkl)
    assert summary["resumable"] and summary["networks"] == ["D", "G", "G_ema"]
    header = read_header(tmp_path / "m.safetensors")
    assert header["extra"]["converted_from"]["kind"] == "eg3d-pkl" and header["progress"]["nrr"] == 32
    assert json.loads((tmp_path / "m.config.json").read_text())["generator"] == G.config.to_dict()
    G2, _ = load_generator(tmp_path / "m.safetensors")
    _same_images(G, G2)
    assert torch.equal(G2.backbone.mapping.w_avg, G.backbone.mapping.w_avg)


def _marker_payloads(marker):
    class OsSystem:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    class Eval:
        def __reduce__(self):
            return (builtins.eval, (f"open({str(marker)!r}, 'w')",))

    return {"os.system": OsSystem(), "builtins.eval": Eval()}


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval"])
def test_malicious_globals_refused_without_side_effect(tiny_nets, tmp_path, kind):
    G, D = tiny_nets
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(snapshot_bytes(G, D, extra={"payload": _marker_payloads(marker)[kind]}))
    with pytest.raises(RefusedPickle) as err:
        convert_eg3d_pickle(path)
    expected = {"os.system": ("posix.system", "os.system", "nt.system"), "builtins.eval": ("builtins.eval",)}[kind]
    assert any(name in str(err.value) for name in expected) and "nothing from the file was run" in str(err.value)
    assert not marker.exists()


def test_record_source_that_would_run_code_is_refused(tiny_nets, tmp_path):
    G, D = tiny_nets
    marker = tmp_path / "pwned"
    src = f"import torch\nopen({str(marker)!r}, 'w').write('x')\nclass TriPlaneGenerator(torch.nn.Module):\n    pass\n"
    path = tmp_path / "evil_src.pkl"
    path.write_bytes(snapshot_bytes(G, D, g_source=src))
    with pytest.raises(RefusedPickle, match=r"would run code at import: line 2: call at import: open\("):
        convert_eg3d_pickle(path)
    assert not marker.exists()
    convert_eg3d_pickle(path, audit_source=False)  # even without the audit the text is never executed
    assert not marker.exists()


def test_unknown_record_class_and_bare_record_refused(tiny_nets, tmp_path):
    G, D = tiny_nets
    path = tmp_path / "sg3.pkl"
    path.write_bytes(snapshot_bytes(G, D, g_class="StyleGAN3Generator"))
    with pytest.raises(ArchitectureMismatch,
                       match="G is a 'StyleGAN3Generator'; gan3dkit converts EG3D's TriPlaneGenerator"):
        convert_eg3d_pickle(path)
    with fake_modules():
        blob = pickle.dumps({"G": Record("AugmentPipe", {}), "G_ema": Record("AugmentPipe", {})})
    (tmp_path / "aug.pkl").write_bytes(blob)
    with pytest.raises(ArchitectureMismatch, match="'AugmentPipe'"):
        convert_eg3d_pickle(tmp_path / "aug.pkl")


@pytest.mark.parametrize("fraction", [0.0005, 0.5, 0.999])
def test_truncated_pickle(snapshot_pkl, tmp_path, fraction):
    data = snapshot_pkl.read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CorruptPickle, match="truncated|corrupt|malformed"):
        read_pickle(path)


def test_other_architecture_names_the_keys(tiny_nets, tmp_path):
    G, D = tiny_nets
    path = tmp_path / "other.pkl"
    path.write_bytes(snapshot_bytes(G, D, g_kwargs={"mapping_kwargs": {"num_layers": 4}, "channel_max": 32}))
    conv = convert_eg3d_pickle(path)
    with pytest.raises(ArchitectureMismatch) as err:
        write_converted(conv, tmp_path / "o.safetensors", path)
    msg = str(err.value)
    assert "missing from the file: backbone.mapping.fc2.bias" in msg
    assert "shape differs (file vs gan3dkit): backbone.synthesis.b4.const (64, 4, 4) vs (32, 4, 4)" in msg
    assert not (tmp_path / "o.safetensors").exists()


def test_state_dict_zip_converts_and_refuses(tiny_nets, tmp_path):
    G, D = tiny_nets
    cfg = train_preset("tiny")
    torch.save({"G_ema": G.state_dict(), "D": D.state_dict(), "step": 5}, tmp_path / "fork.pt")
    conv = convert_state_dict(tmp_path / "fork.pt", cfg)
    write_converted(conv, tmp_path / "fork.safetensors", tmp_path / "fork.pt")
    G2, _ = load_generator(tmp_path / "fork.safetensors")
    _same_images(G, G2)
    torch.save(G.state_dict(), tmp_path / "flat.pt", _use_new_zipfile_serialization=False)  # legacy format
    assert set(convert_state_dict(tmp_path / "flat.pt", cfg).tensors) == {"G_ema"}
    marker = tmp_path / "pwned"
    torch.save({"G_ema": G.state_dict(), "x": _marker_payloads(marker)["os.system"]}, tmp_path / "evil.pt")
    with pytest.raises(RefusedPickle, match="system"):
        convert_state_dict(tmp_path / "evil.pt", cfg)
    assert not marker.exists()


def test_cli_convert_generate_and_resume(tiny_nets, snapshot_pkl, tmp_path):
    """CLI convert -> generate; a malicious file via the CLI; the checkpoint passes train --resume's setup."""
    runner = CliRunner()
    out = tmp_path / "m.safetensors"
    summary = convert_cli("eg3d-pkl", snapshot_pkl, "--out", out)
    assert summary["resumable"] and summary["plane_axes"] == "eg3d"
    res = runner.invoke(app, ["generate", "--ckpt", str(out), "--seeds", "0", "--out", str(tmp_path / "gen")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "gen" / "views.png").exists()
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(snapshot_bytes(*tiny_nets, extra={"p": _marker_payloads(marker)["os.system"]}))
    res = runner.invoke(app, ["convert", "eg3d-pkl", str(evil), "--out", str(tmp_path / "e.safetensors")])
    assert res.exit_code == 1 and "refused" in res.output and "Traceback" not in res.output
    assert not marker.exists() and not (tmp_path / "e.safetensors").exists()
    # train --resume: what the trainer does at setup (same config check, strict load of G/D/G_ema + both Adams)
    cfg = TrainConfig.from_dict(json.loads((tmp_path / "m.config.json").read_text()))
    cfg.validate()
    header = read_header(out)
    check_resume(cfg.to_dict(), header, out, RESUMABLE_CHANGES)
    G, D = TriPlaneGenerator(cfg.generator), DualDiscriminator(cfg.discriminator)
    phases = _make_phases(cfg, G, D)
    opts = {"G": phases[0].opt, "D": phases[2].opt}
    load_checkpoint(out, {"G": G, "D": D, "G_ema": copy.deepcopy(G)}, opts)
    assert all(not o.state for o in opts.values())  # weights only: the optimiser starts afresh
    assert opts["G"].param_groups[0]["lr"] == phases[0].opt.defaults["lr"]
    assert header["extra"]["optimizer"].startswith("fresh") and header["progress"]["nimg"] == 0
