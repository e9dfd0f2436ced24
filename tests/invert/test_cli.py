"""`gan3dkit invert` end to end on a micro generator: outputs, delta checkpoint, folders (resume), LMDB, bad input."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

from gan3dkit.cli.main import app
from gan3dkit.invert import load_delta
from gan3dkit.utils.visual import to_uint8_hwc

from .conftest import render_target

runner = CliRunner()
FAST = ["--steps", "4", "--tune-steps", "2", "--mesh-res", "16", "--frames", "4", "--perceptual", "none", "--set",
        "tune_perceptual=none", "--set", "projector.w_avg_samples=16", "--set", "pose.warp_features=rgb"]
# no LPIPS / VGG files in CI: pixels asked for explicitly


def _crop(G, tmp_path, name="face", yaw=0.2):
    img, _, cam, _ = render_target(G, yaw)
    arr = ((img[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    Image.fromarray(arr).save(tmp_path / f"{name}.png")
    (tmp_path / f"{name}.json").write_text(json.dumps({"camera": cam[0].tolist()}))  # as `prepare single` writes
    return tmp_path / f"{name}.png", cam


def test_help_names_the_algorithms():
    res = runner.invoke(app, ["invert", "--help"], terminal_width=200)
    assert res.exit_code == 0
    text = " ".join(res.output.replace("│", " ").split())
    for phrase in ("1 = Ko et al.", "2 = the given camera", "3 = joint gradient descent", "Example:"):
        assert phrase in text


def test_invert_ko_end_to_end(micro_ckpt, tmp_path):
    ckpt, G = micro_ckpt
    src, cam = _crop(G, tmp_path)
    out = tmp_path / "out"
    res = runner.invoke(app, ["invert", str(src), "--ckpt", str(ckpt), "--method", "ko", "--out", str(out), *FAST])
    assert res.exit_code == 0, res.output
    for f in ("w.npy", "camera.json", "reconstruction.png", "views.png", "orbit.gif", "depth.png", "depth.npy",
              "mesh.ply", "metrics.json", "config.json", "generator_delta.safetensors"):
        assert (out / f).is_file(), f
    m = json.loads((out / "metrics.json").read_text())
    assert m["method"] == "ko" and m["algorithm"] == 1 and m["pose_mode"] == "alternating"
    assert m["losses"]["projector"]["calibrated"] is False  # offline: no VGG weights, and it says so
    assert m["losses"]["projector"]["name"].startswith("none") or "RANDOM" not in m["losses"]["projector"]["name"]
    assert {"projector_s", "tuning_s", "outputs_s", "total_s"} <= set(m["time"])
    assert m["pose_before"]["label"] == [float(v) for v in cam[0]]
    assert set(m["reconstruction"]) == {"projected", "tuned"} and "psnr" in m["reconstruction"]["tuned"]
    assert np.load(out / "w.npy").shape == (G.w_dim,)
    Image.open(out / "reconstruction.png").verify()
    # the delta reproduces the tuned generator: its rendering matches the stored reconstruction
    G2, _ = load_delta(out / "generator_delta.safetensors")
    ws = torch.from_numpy(np.load(out / "w.npy"))[None, None].expand(1, G.num_ws, -1)
    after = torch.tensor(json.loads((out / "camera.json").read_text())["camera"])[None]
    with torch.no_grad():
        img = G2.synthesis(ws, after, noise_mode="const", deterministic_render=True)["image"]
    recon = np.asarray(Image.open(out / "reconstruction.png"))
    tuned_panel = recon[:, -G.img_resolution:]
    got = to_uint8_hwc(img[0])
    assert np.abs(got.astype(int) - tuned_panel.astype(int)).max() <= 1


def test_folder_resumes(micro_ckpt, tmp_path):
    ckpt, G = micro_ckpt
    src = tmp_path / "in"
    src.mkdir()
    _crop(G, src, "a", 0.1)
    _crop(G, src, "b", -0.1)
    out = tmp_path / "out"
    args = ["invert", str(src), "--ckpt", str(ckpt), "--method", "w", "--outputs", "", "--out", str(out), "--json",
            *FAST]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert [i["name"] for i in report["items"]] == ["a.png", "b.png"]
    assert (out / "a.png" / "metrics.json").is_file() and (out / "report.json").is_file()
    res = runner.invoke(app, args)
    assert res.exit_code == 0
    again = json.loads(res.stdout)
    assert not again["items"] and [s["name"] for s in again["skipped"]] == ["a.png", "b.png"]


def test_lmdb_dataset_uses_camera_field(micro_ckpt, tmp_path):
    ckpt, _ = micro_ckpt
    from gan3dkit.cameras import get_prior
    from gan3dkit.data import DatasetWriter

    data = tmp_path / "d.lmdb"
    cams = get_prior("synthetic_heads").sample(2, torch.Generator().manual_seed(0)).to_label().numpy()
    rng = np.random.default_rng(0)
    with DatasetWriter(data, resolution=32, fields=["image", "camera", "name"], latent_dim=0,
                       pose_prior=get_prior("synthetic_heads").to_dict(), source="test") as w:
        for i in range(2):
            w.add(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), cams[i], name=f"img{i}")
    arrays = {"camera": cams}
    out = tmp_path / "out"
    res = runner.invoke(app, ["invert", str(data), "--ckpt", str(ckpt), "--method", "w", "--outputs", "",
                              "--out", str(out), "--json", *FAST])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert [i["name"] for i in report["items"]] == ["img0", "img1"]
    m = json.loads((out / "img1" / "metrics.json").read_text())
    assert np.allclose(m["pose_before"]["label"], arrays["camera"][1], atol=1e-6)


def test_photo_without_face_and_corrupt_image_write_nothing(micro_ckpt, tmp_path):
    ckpt, _ = micro_ckpt
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(blank)
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    for src, words in ((blank, ("face",)), (corrupt, ("cannot read image",))):
        out = tmp_path / f"out_{src.stem}"
        res = runner.invoke(app, ["invert", str(src), "--ckpt", str(ckpt), "--out", str(out), *FAST])
        assert res.exit_code == 1, res.output
        assert "error:" in res.output and all(w in res.output for w in words), res.output
        assert "Traceback" not in res.output
        assert not out.exists()


def test_torchrun_shards_items(micro_ckpt, tmp_path, monkeypatch):
    """Under torchrun (RANK / WORLD_SIZE) each process takes every WORLD_SIZE-th item and writes its own report."""
    from gan3dkit.invert import invert_source, preset

    ckpt, G = micro_ckpt
    src = tmp_path / "in"
    src.mkdir()
    for name, yaw in (("a", 0.1), ("b", 0.0), ("c", -0.1)):
        _crop(G, src, name, yaw)
    cfg = preset("w")
    cfg.perceptual, cfg.projector.steps, cfg.projector.w_avg_samples = "none", 1, 8
    from gan3dkit.invert import Extras

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    rep = invert_source(G, ckpt, src, tmp_path / "out", cfg, extras=Extras(outputs=()))
    assert [i["name"] for i in rep["items"]] == ["b.png"] and rep["shard"] == [1, 2]
    assert (tmp_path / "out" / "report.rank1.json").is_file() and not (tmp_path / "out" / "a.png").exists()
