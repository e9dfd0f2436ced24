"""`gan3dkit encode` on an image, a folder and a GIF video; temporal smoothing; --refine seam; bad input."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from gan3dkit.cli.main import app
from gan3dkit.encoders.base import EncoderOutput
from gan3dkit.encoders.encode import TemporalSmoother, to_tensor
from gan3dkit.encoders.models import load_encoder

runner = CliRunner()
FAST = ["--outputs", "triplane,reconstruction,views,depth", "--json"]


def _img(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_encode_image_writes_triplane_and_renders(lp3d_ckpt, tmp_path):
    Image.fromarray(_img(0)).save(tmp_path / "face.png")
    res = runner.invoke(app, ["encode", str(tmp_path / "face.png"), "--ckpt", str(lp3d_ckpt), "--out",
                              str(tmp_path / "o"), "--outputs", "triplane,reconstruction,views,depth,mesh,video",
                              "--mesh-res", "16", "--frames", "3", "--json"])
    assert res.exit_code == 0, res.output
    item = json.loads(res.stdout)["items"][0]
    planes = load_file(item["triplane"])
    assert planes["planes"].shape == (1, 3, 8, 32, 32) and planes["camera"].shape == (1, 25)
    assert Image.open(item["reconstruction"]).size == (64, 32)  # input | reconstruction
    assert Image.open(item["views"]).size[1] > 32 and item["video"][0].endswith(".gif")
    assert item["mesh"].endswith(".ply") or item["mesh"].startswith("skipped")


def test_encode_folder_and_video(lp3d_ckpt, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(_img(i)).save(folder / f"im{i}.png")
    res = runner.invoke(app, ["encode", str(folder), "--ckpt", str(lp3d_ckpt), "--out", str(tmp_path / "f"), *FAST])
    assert res.exit_code == 0, res.output
    assert [it["name"] for it in json.loads(res.stdout)["items"]] == ["im0.png", "im1.png"]
    frames = [Image.fromarray(_img(10 + i)) for i in range(3)]  # PIL merges identical GIF frames
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    res = runner.invoke(app, ["encode", str(tmp_path / "clip.gif"), "--ckpt", str(lp3d_ckpt), "--out",
                              str(tmp_path / "v"), "--smooth", "0.5", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["kind"] == "video" and len(rep["items"]) == 3
    side = Image.open(rep["video_side_by_side"][0])
    assert side.n_frames == 3 and side.size == (96, 32)  # input | reconstruction | novel view


def test_bad_inputs_exit_with_one_line(lp3d_ckpt, tmp_path):
    res = runner.invoke(app, ["encode", str(tmp_path / "missing.png"), "--ckpt", str(lp3d_ckpt)])
    assert res.exit_code == 2 and "not found" in res.output
    (tmp_path / "notes.txt").write_text("x")
    res = runner.invoke(app, ["encode", str(tmp_path / "notes.txt"), "--ckpt", str(lp3d_ckpt)])
    assert res.exit_code == 2 and "unsupported" in res.output
    res = runner.invoke(app, ["distill-encoder", "--arch", "lp4d", "--ckpt", str(lp3d_ckpt), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown --arch" in res.output
    Image.fromarray(_img(1)).save(tmp_path / "face.png")
    for extra, said in ((["--refine-set", "perceptual=none"], "--refine-set needs --refine N"),
                        (["--refine", "2", "--refine-set", "projector.stepz=3"], "stepz")):
        res = runner.invoke(app, ["encode", str(tmp_path / "face.png"), "--ckpt", str(lp3d_ckpt), "--out",
                                  str(tmp_path / "o"), *extra])
        assert res.exit_code == 2 and "--refine-set" in res.output and said in res.output, res.output
        assert not (tmp_path / "o").exists()


def test_temporal_smoothing_reduces_frame_to_frame_change(lp3d_ckpt):
    student, _, _ = load_encoder(lp3d_ckpt)
    base = _img(3).astype(np.float32)
    rng = np.random.default_rng(0)
    outs = []
    with torch.no_grad():
        for _ in range(6):
            jitter = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
            outs.append(student.encode(to_tensor(jitter, 32, torch.device("cpu"))))

    def change(alpha: float) -> float:
        sm = TemporalSmoother(alpha)
        seq = [sm(EncoderOutput(o.planes, None, o.pose)) for o in outs]
        return float(np.mean([(b.planes - a.planes).abs().mean() for a, b in zip(seq, seq[1:], strict=False)]))

    raw, smoothed = change(0.0), change(0.7)
    assert raw > 0 and smoothed < 0.6 * raw


def test_refine_starts_from_the_encoders_w_when_it_has_one(lp3d_ckpt):
    """With one step the projector's lr ramp is still 0, so the refined w is exactly where refine started it."""
    from gan3dkit.encoders.encode import refine
    from gan3dkit.invert import preset
    from gan3dkit.invert.projector import latent_stats

    pixels = ("perceptual=none", "tune_perceptual=none")  # no LPIPS files in CI: pixel L2 asked for explicitly

    student, _, _ = load_encoder(lp3d_ckpt)
    G = student.teacher.G
    img = _img(5)
    cam = student.teacher.frontal(1, torch.device("cpu"))
    with torch.no_grad():
        ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(3)), cam)
    planes = torch.zeros(1, 3, 8, 32, 32)
    given, rep = refine(student, img, cam, 1, "w", EncoderOutput(planes, ws), pixels)[::2]
    assert rep["w_start"].startswith("encoder")
    assert torch.allclose(given.ws[:, 0], ws.mean(1))
    avg, rep = refine(student, img, cam, 1, "avg", EncoderOutput(planes), pixels)[::2]  # LP3D: no latent
    ko = preset("ko", 3).projector
    w_avg, _ = latent_stats(G, min(ko.w_avg_samples, 256), ko.w_avg_psi, ko.seed)
    assert rep["w_start"] == "w_avg" and torch.allclose(avg.ws[:, 0], w_avg[:, 0])
    assert avg.planes.shape == planes.shape
