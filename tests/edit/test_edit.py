"""GANSpace PCA, the two edit conventions, the tri-plane-offset edit, the components file, and `gan3dkit edit`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from gan3dkit.cli.main import app
from gan3dkit.edit import (
    Edit,
    GanSpace,
    GanSpaceConfig,
    apply_edit,
    compute_ganspace,
    load_ganspace,
    parse_edit,
    pca,
    save_ganspace,
    triplane_offset_edit,
)
from gan3dkit.edit.pictures import render
from gan3dkit.generate import load_generator
from gan3dkit.utils.errors import DataError, UsageError


def test_pca_recovers_known_axes():
    g = torch.Generator().manual_seed(0)
    rot, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    std = torch.tensor([5.0, 3.0, 2.0, 1.0, 0.5, 0.25], dtype=torch.float64)
    w = (torch.randn(20000, 6, generator=g, dtype=torch.float64) * std) @ rot.T + 3.0
    comps, sd, mean, ratio = pca(w)
    assert torch.allclose(mean.double(), torch.full((6,), 3.0, dtype=torch.float64), atol=0.1)
    assert torch.allclose(sd.double(), std, rtol=0.03)
    assert torch.allclose(ratio.double(), std**2 / (std**2).sum(), atol=0.01)
    cos = (comps.double() @ rot).abs()  # each component is one of the true axes, in order
    assert torch.all(cos.diagonal() > 0.99)
    assert torch.all(comps[torch.arange(6), comps.abs().argmax(1)] > 0)  # sign convention


def _toy_space(dim: int = 4) -> GanSpace:
    comps = torch.eye(dim)
    return GanSpace(comps, torch.tensor([2.0, 1.0, 0.5, 0.25]), torch.ones(dim), torch.ones(dim) / dim, "x",
                    [0.0] * 25, GanSpaceConfig())  # fmt: skip


def test_edit_conventions_and_layer_range():
    gs = _toy_space()
    ws = torch.randn(3, 5, 4)
    add = apply_edit(ws, gs, parse_edit("1:2@1-3"))
    assert torch.allclose(add[:, 1:3, 1] - ws[:, 1:3, 1], torch.full((3, 2), 2.0 * 1.0))  # + s σ v on layers 1, 2
    assert torch.equal(add[:, [0, 3, 4]], ws[:, [0, 3, 4]]) and torch.equal(add[..., [0, 2, 3]], ws[..., [0, 2, 3]])
    w_space = ws[:, :1].repeat(1, 5, 1)
    st = apply_edit(w_space, gs, parse_edit("0:-1.5", mode="set"))
    coord = (st[:, :, 0] - 1.0) / 2.0  # (w - mean) . v / σ
    assert torch.allclose(coord, torch.full((3, 5), -1.5))  # the coordinate is set, whatever it was
    wplus = apply_edit(ws, gs, parse_edit("0:-1.5", mode="set"))  # W+: the step is read from layer 0 (e4e)
    assert torch.allclose((wplus[:, 0, 0] - 1.0) / 2.0, torch.full((3,), -1.5))
    assert torch.allclose(wplus[:, 1:, 0] - ws[:, 1:, 0], (wplus[:, :1, 0] - ws[:, :1, 0]).expand(-1, 4))
    assert torch.allclose(apply_edit(st, gs, Edit(0, -1.5, mode="set")), st)  # idempotent
    assert parse_edit("3:-1.5@0-5") == Edit(3, -1.5, 0, 5, "additive")
    for bad in ("x", "1", "1:2@5"):
        with pytest.raises(UsageError):
            parse_edit(bad)
    with pytest.raises(UsageError, match="component 9"):
        apply_edit(ws, gs, Edit(9, 1.0))
    with pytest.raises(UsageError, match="layers 4-9"):
        apply_edit(ws, gs, Edit(0, 1.0, 4, 9))


def test_triplane_offset_edit_and_components_file(tiny_ckpt, tmp_path):
    G, _ = load_generator(tiny_ckpt)
    gs = compute_ganspace(G, GanSpaceConfig(num_samples=256, batch=128))
    assert gs.components.shape == (G.w_dim, G.w_dim) and abs(float(gs.var_ratio.sum()) - 1) < 1e-4
    save_ganspace(gs, tmp_path / "c.safetensors")
    back = load_ganspace(tmp_path / "c.safetensors", G)
    assert torch.equal(back.components, gs.components) and back.config.num_samples == 256
    assert back.camera == gs.camera and len(back.camera) == 25 and back.generator_sha256 == gs.generator_sha256
    other, _ = load_generator(tiny_ckpt)
    with torch.no_grad():
        other.decoder.net[0].weight.add_(1.0)
    with pytest.raises(DataError, match="another generator"):
        load_ganspace(tmp_path / "c.safetensors", other)
    cond = torch.tensor(gs.camera).view(1, -1)
    ws = G.mapping(torch.randn(1, G.z_dim), cond)
    ws_e = apply_edit(ws, gs, Edit(0, 3.0))
    with torch.no_grad():
        direct = G.synthesize_planes(ws_e, noise_mode="const")
        assert torch.allclose(triplane_offset_edit(G, ws, ws_e), direct, atol=1e-5)
        delta = torch.randn_like(direct) * 0.1
        assert torch.allclose(triplane_offset_edit(G, ws, ws_e, delta) - direct, delta, atol=1e-5)
        cams = cond.clone()
        a = render(G, ws_e, cams, 16, planes=direct)["image"]  # edit's path for given planes: G's one entry
        b = G.synthesis(ws_e, cams, neural_rendering_resolution=16, noise_mode="const", deterministic_render=True)
        assert torch.equal(a, b["image"])
        plain = render(G, ws, cams, 16, planes=G.synthesize_planes(ws, noise_mode="const"))["image"]
        assert (a - plain).abs().max() > 1e-3


def test_cli_edit_end_to_end(tiny_ckpt, tmp_path):
    runner = CliRunner()
    out = tmp_path / "edits"
    args = ["edit", "--ckpt", str(tiny_ckpt), "--out", str(out), "--samples", "300", "--list", "--top", "2",
            "--edit", "0:2", "--edit", "1:-1@0-3", "--mode", "set", "--yaws", "0", "--video", "--frames", "2",
            "--json"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout[res.stdout.index("{") :])
    assert rep["num_samples"] == 300 and rep["edits"] == ["pc0=2sd", "pc1=-1sd@0-3"]
    for f in [rep["list"], rep["components"], *rep["grids"], *rep["videos"]]:
        assert Path(f).exists(), f
    assert len(rep["videos"]) == 2
    delta = tmp_path / "delta.safetensors"
    save_file({"delta_planes": torch.zeros(1, 3, 16, 64, 64)}, str(delta))
    res = runner.invoke(app, ["edit", "--ckpt", str(tiny_ckpt), "--out", str(out), "--edit", "0:1", "--yaws", "0",
                              "--delta-planes", str(delta)])  # fmt: skip
    assert res.exit_code == 0, res.output  # reuses components.safetensors (300 samples, no recompute)
    assert "300 samples" in res.output
    res = runner.invoke(app, ["edit", "--ckpt", str(tiny_ckpt), "--out", str(out), "--edit", "99:1"])
    assert res.exit_code == 2 and "component 99" in res.output
    res = runner.invoke(app, ["edit", "--ckpt", str(tiny_ckpt), "--out", str(out)])
    assert res.exit_code == 2 and "nothing to do" in res.output
    res = runner.invoke(app, ["edit", "--help"])
    assert res.exit_code == 0 and "Example" in res.output
