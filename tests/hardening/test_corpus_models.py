"""The bad-input corpus of the model commands (encode, invert, distill-encoder, edit, convert): every case exits 1
(bad data) or 2 (usage) with one message naming the culprit, no traceback, and leaves nothing half-written.
Inputs are built in tmp folders (see conftest), never committed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from gan3dkit.cli.main import app

from .conftest import Models, bomb_png, png_bytes
from .test_corpus import _files, registrars, runner

Build = Callable[[Models, Path], tuple[list[str], list[str]]]
CASES: list[tuple[str, int, Build]] = []


case, simple = registrars(CASES)


def image(t: Path, name: str = "face.png", side: int = 32) -> Path:
    (t / name).write_bytes(png_bytes(np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)))
    return t / name


def folder(t: Path, bad: int = 0, good: int = 0) -> Path:
    src = t / "imgs"
    src.mkdir(exist_ok=True)
    for i in range(bad):
        (src / f"bad{i}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    for i in range(good):
        image(src, f"ok{i}.png")
    return src


def nonsense(t: Path, name: str) -> Path:
    (t / name).write_bytes(np.random.default_rng(0).bytes(400))
    return t / name


def run_folder(m: Models, t: Path) -> Path:
    """A folder passed where a checkpoint file is wanted: a copy of the encoder's run folder."""
    return shutil.copytree(m.enc.parent, t / "run", ignore=shutil.ignore_patterns("samples"))


# --- encode ----------------------------------------------------------------------------------------------------------
def enc(m: Models, t: Path, src: Path | None = None, *extra: str, ckpt: Path | None = None) -> list[str]:
    return ["encode", str(src or image(t)), "--ckpt", str(ckpt or m.enc), "--out", str(t / "o"), "--outputs",
            "triplane", *extra]


simple("encode-missing-source", 2, lambda m, t: enc(m, t, t / "none.png"), "none.png")
simple("encode-unsupported-type", 2, lambda m, t: enc(m, t, nonsense(t, "notes.txt")), "notes.txt", ".txt")
simple("encode-ckpt-missing", 2, lambda m, t: enc(m, t, ckpt=t / "no.safetensors"), "no.safetensors", "--ckpt")
simple("encode-ckpt-is-a-generator", 2, lambda m, t: enc(m, t, ckpt=m.gen), "is a generator checkpoint",
       "--ckpt wants an encoder")
simple("encode-ckpt-is-a-ko-estimator", 2, lambda m, t: enc(m, t, ckpt=m.ko_pose), "ko-pose.safetensors",
       "Ko et al. pose estimator", "--ckpt wants an encoder")
simple("encode-ckpt-is-a-dataset", 2, lambda m, t: enc(m, t, ckpt=m.dataset), "d.lmdb", "gan3dkit dataset")
simple("encode-ckpt-is-a-run-folder", 2, lambda m, t: enc(m, t, ckpt=run_folder(m, t)), "run folder",
       "checkpoint.safetensors")
simple("encode-ckpt-garbage", 1, lambda m, t: enc(m, t, ckpt=nonsense(t, "x.safetensors")), "x.safetensors")
simple("encode-nan-encoder", 1, lambda m, t: enc(m, t, ckpt=m.nan_enc), "e.safetensors", "NaN")
for opt, val in (("--device", "tpu"), ("--device", "gpu"), ("--mesh-res", "0"), ("--mesh-res", "4"), ("--frames", "1"),
                 ("--max-frames", "0"), ("--smooth", "1"), ("--smooth", "nan"), ("--refine", "-1"), ("--yaws", "left"),
                 ("--yaws", "nan"),
                 ("--yaws", ","), ("--outputs", "hologram")):
    simple(f"encode-{opt[2:]}-{val}", 2, lambda m, t, o=opt, v=val: enc(m, t, None, o, v),
           opt if opt != "--outputs" else val, *([val] if opt == "--device" else []))


@case("encode-out-is-the-source-folder", 2)
def _(m, t):
    src = folder(t, good=1)
    return ["encode", str(src), "--ckpt", str(m.enc), "--out", str(src)], ["input folder"]


simple("encode-corrupt-image", 1, lambda m, t: enc(m, t, nonsense(t, "broken.png")), "broken.png")
simple("encode-decompression-bomb", 1, lambda m, t: enc(m, t, bomb_png(t / "huge.png")), "huge.png",
       "decompression bomb")
simple("encode-folder-all-bad", 1, lambda m, t: enc(m, t, folder(t, bad=2)), "bad0.jpg", "bad1.jpg")
simple("encode-folder-no-images", 2, lambda m, t: enc(m, t, folder(t)), "imgs", "no images")


@case("encode-video-undecodable", 1)
def _(m, t):
    (t / "clip.gif").write_bytes(b"GIF89a" + np.random.default_rng(0).bytes(100))
    return enc(m, t, t / "clip.gif"), ["clip.gif"]


# --- invert ----------------------------------------------------------------------------------------------------------
FAST = ["--method", "w", "--steps", "1", "--outputs", "", "--camera", "frontal", "--set", "projector.w_avg_samples=8",
        "--perceptual", "none"]


def inv(m: Models, t: Path, src: Path | None = None, *extra: str, ckpt: Path | None = None) -> list[str]:
    return ["invert", str(src or image(t)), "--ckpt", str(ckpt or m.gen), "--out", str(t / "o"), *FAST, *extra]


simple("invert-missing-source", 2, lambda m, t: inv(m, t, t / "none.png"), "none.png")
simple("invert-ckpt-missing", 2, lambda m, t: inv(m, t, ckpt=t / "no.safetensors"), "no.safetensors", "--ckpt")
simple("invert-ckpt-is-an-encoder", 2, lambda m, t: inv(m, t, ckpt=m.enc), "is an encoder checkpoint (lp3d-lt)",
       "--ckpt wants a generator")
simple("invert-ckpt-is-a-dataset", 2, lambda m, t: inv(m, t, ckpt=m.dataset), "d.lmdb", "gan3dkit dataset")
simple("invert-ckpt-is-a-run-folder", 2, lambda m, t: inv(m, t, ckpt=run_folder(m, t)), "run folder",
       "an encoder checkpoint")
simple("invert-ckpt-garbage", 1, lambda m, t: inv(m, t, ckpt=nonsense(t, "x.safetensors")), "x.safetensors")
simple("invert-nan-generator", 1, lambda m, t: inv(m, t, ckpt=m.nan_gen), "g.safetensors", "NaN")
simple("invert-pose-encoder-is-lp3d", 2, lambda m, t: inv(m, t, None, "--method", "ko", "--pose-encoder", str(m.enc)),
       "is an encoder checkpoint (lp3d-lt)", "--pose-encoder wants")
simple("invert-latent-encoder-is-pose", 2, lambda m, t: inv(m, t, None, "--method", "ko", "--latent-encoder",
                                                                         str(m.ko_pose)),
       "ko-pose", "--latent-encoder wants")
simple("invert-pose-encoder-missing", 2, lambda m, t: inv(m, t, None, "--method", "ko", "--pose-encoder",
                                                                        str(t / "p.safetensors")),
       "p.safetensors")
simple("invert-nan-pose-encoder", 1, lambda m, t: inv(m, t, None, "--method", "ko", "--pose-encoder", str(m.nan_ko)),
       "p.safetensors", "NaN")
for opt, val in (("--device", "tpu"), ("--method", "magic"), ("--align", "sometimes"), ("--outputs", "hologram"),
                 ("--mesh-res", "0"), ("--frames", "1"), ("--algorithm", "4"), ("--steps", "-1"),
                 ("--set", "projector.bogus=1")):
    simple(f"invert-{opt[2:]}-{val}", 2, lambda m, t, o=opt, v=val: inv(m, t, None, o, v),
           opt if opt not in ("--outputs", "--set") else val.split("=")[0].split(".")[-1])


@case("invert-out-is-the-source-folder", 2)
def _(m, t):
    src = folder(t, good=1)
    return ["invert", str(src), "--ckpt", str(m.gen), "--out", str(src), *FAST], ["input folder"]


simple("invert-camera-missing", 2, lambda m, t: inv(m, t, None, "--camera", str(t / "cam.json")), "cam.json")


@case("invert-camera-not-25-floats", 1)
def _(m, t):
    (t / "cam.json").write_text(json.dumps([1.0] * 24))
    return inv(m, t, None, "--camera", str(t / "cam.json")), ["cam.json", "25 floats"]


@case("invert-camera-invalid-json", 1)
def _(m, t):
    (t / "cam.json").write_text("[1, 2,")
    return inv(m, t, None, "--camera", str(t / "cam.json")), ["cam.json"]


simple("invert-corrupt-image", 1, lambda m, t: inv(m, t, nonsense(t, "broken.png")), "broken.png")
simple("invert-decompression-bomb", 1, lambda m, t: inv(m, t, bomb_png(t / "huge.png")), "huge.png",
       "decompression bomb")
simple("invert-not-square-crop", 1, lambda m, t: inv(m, t, _wide(t)), "wide.png",
       "square")
simple("invert-folder-all-bad", 1, lambda m, t: inv(m, t, folder(t, bad=2)), "bad0.jpg", "bad1.jpg")
simple("invert-folder-no-images", 2, lambda m, t: inv(m, t, folder(t)), "imgs", "no images")


def _wide(t: Path) -> Path:
    (t / "wide.png").write_bytes(png_bytes(np.zeros((16, 24, 3), np.uint8)))
    return t / "wide.png"


@case("invert-dataset-truncated", 1)
def _(m, t):
    data = shutil.copytree(m.dataset, t / "cut.lmdb")
    (data / "data.mdb").write_bytes((data / "data.mdb").read_bytes()[:3000])
    return inv(m, t, data), ["cut.lmdb"]


# --- distill-encoder -------------------------------------------------------------------------------------------------
def dis(m: Models, t: Path, *extra: str, ckpt: Path | None = None, arch: str = "lp3d-lt") -> list[str]:
    return ["distill-encoder", "--arch", arch, "--ckpt", str(ckpt or m.gen), "--out", str(t / "run"), "--preset",
            "tiny", "--device", "cpu", "--random-init", *extra]


simple("distill-unknown-arch", 2, lambda m, t: dis(m, t, arch="lp4d"), "lp4d")
simple("distill-unknown-preset", 2, lambda m, t: dis(m, t, "--preset", "huge"), "huge")
simple("distill-ckpt-missing", 2, lambda m, t: dis(m, t, ckpt=t / "no.safetensors"), "no.safetensors")
simple("distill-ckpt-is-a-ko-estimator", 2, lambda m, t: dis(m, t, ckpt=m.ko_pose), "pose estimator (ko-pose)",
       "--ckpt wants a generator")
simple("distill-ckpt-is-a-dataset", 2, lambda m, t: dis(m, t, ckpt=m.dataset), "d.lmdb", "gan3dkit dataset")
simple("distill-ckpt-is-a-run-folder", 2, lambda m, t: dis(m, t, ckpt=run_folder(m, t)), "run folder")
simple("distill-ckpt-garbage", 1, lambda m, t: dis(m, t, ckpt=nonsense(t, "x.safetensors")), "x.safetensors")
simple("distill-nan-generator", 1, lambda m, t: dis(m, t, ckpt=m.nan_gen), "g.safetensors", "NaN")
simple("distill-ko-ckpt-is-an-encoder", 2, lambda m, t: dis(m, t, ckpt=m.enc, arch="ko-pose"),
       "is an encoder checkpoint (lp3d-lt)", "--ckpt wants a generator")
simple("distill-ko-nan-generator", 1, lambda m, t: dis(m, t, ckpt=m.nan_gen, arch="ko-latent"), "g.safetensors",
       "NaN")
for opt, val in (("--device", "tpu"), ("--steps", "0"), ("--steps", "-3"), ("--minutes", "0"), ("--minutes", "nan"),
                 ("--size", "huge"), ("--set", "run.bogus=1")):
    simple(f"distill-{opt[2:]}-{val}", 2, lambda m, t, o=opt, v=val: dis(m, t, o, v),
           opt if opt not in ("--set", "--size") else val.split("=")[0].split(".")[-1])


# --- edit ------------------------------------------------------------------------------------------------------------
def edi(m: Models, t: Path, *extra: str, ckpt: Path | None = None) -> list[str]:
    return ["edit", "--ckpt", str(ckpt or m.gen), "--out", str(t / "e"), "--samples", "64", *extra]


simple("edit-nothing-to-do", 2, lambda m, t: edi(m, t), "--list", "--edit")
simple("edit-ckpt-missing", 2, lambda m, t: edi(m, t, "--list", ckpt=t / "no.safetensors"), "no.safetensors")
simple("edit-ckpt-is-an-encoder", 2, lambda m, t: edi(m, t, "--list", ckpt=m.enc),
       "is an encoder checkpoint (lp3d-lt)", "--ckpt wants a generator")
simple("edit-ckpt-is-a-dataset", 2, lambda m, t: edi(m, t, "--list", ckpt=m.dataset), "d.lmdb", "gan3dkit dataset")
simple("edit-nan-generator", 1, lambda m, t: edi(m, t, "--list", ckpt=m.nan_gen), "g.safetensors", "NaN")
for opt, val in (("--device", "tpu"), ("--edit", "zero:2"), ("--edit", "0:nan"), ("--mode", "multiply"),
                 ("--sigma", "0"), ("--sigma", "nan"), ("--trunc", "nan"), ("--pitch", "inf"), ("--samples", "1"),
                 ("--yaws", "left"),
                 ("--top", "0"), ("--seeds", "a-b")):
    simple(f"edit-{opt[2:]}-{val}", 2, lambda m, t, o=opt, v=val: edi(m, t, "--list", o, v), opt)


@case("edit-components-is-a-folder", 2)
def _(m, t):
    (t / "comp").mkdir()
    return edi(m, t, "--list", "--components", str(t / "comp")), ["--components", "comp", "folder"]


@case("edit-components-garbage", 1)
def _(m, t):
    return edi(m, t, "--list", "--components", str(nonsense(t, "c.safetensors"))), ["c.safetensors"]


@case("edit-components-nan", 1)
def _(m, t):
    from gan3dkit.edit import GanSpaceConfig, compute_ganspace, save_ganspace
    from gan3dkit.generate import load_generator

    gs = compute_ganspace(load_generator(m.gen)[0], GanSpaceConfig(num_samples=64))
    gs.components[0, 0] = float("nan")
    save_ganspace(gs, t / "c.safetensors")
    return edi(m, t, "--list", "--components", str(t / "c.safetensors")), ["c.safetensors", "NaN"]


simple("edit-delta-planes-garbage", 1, lambda m, t: edi(m, t, "--edit", "0:1", "--delta-planes",
                                                        str(nonsense(t, "dt.safetensors"))), "dt.safetensors")


@case("edit-latent-wrong-shape", 1)
def _(m, t):
    np.save(t / "w.npy", np.zeros((3, 7), np.float32))
    return edi(m, t, "--edit", "0:1", "--latent", str(t / "w.npy")), ["w.npy", "shape"]


simple("edit-latent-missing", 2, lambda m, t: edi(m, t, "--edit", "0:1", "--latent", str(t / "w.npy")), "w.npy")


# --- convert ---------------------------------------------------------------------------------------------------------
def sd(m: Models, t: Path, src: Path | None = None, *extra: str) -> list[str]:
    return ["convert", "state-dict", str(src or m.state_dict), "--preset", "tiny", "--out", str(t / "c.safetensors"),
            *extra]


def cut(m: Models, t: Path, name: str = "cut.pt", keep: float = 0.5) -> Path:
    data = m.state_dict.read_bytes()
    (t / name).write_bytes(data[: int(len(data) * keep)])
    return t / name


simple("convert-sd-missing", 2, lambda m, t: sd(m, t, t / "none.pt"), "none.pt")
simple("convert-sd-truncated-half", 1, lambda m, t: sd(m, t, cut(m, t)), "cut.pt", "truncated")
simple("convert-sd-truncated-end", 1, lambda m, t: sd(m, t, cut(m, t, "end.pt", 0.999)), "end.pt", "truncated")
simple("convert-sd-garbage", 1, lambda m, t: sd(m, t, nonsense(t, "junk.pt")), "junk.pt")
simple("convert-sd-out-not-safetensors", 2, lambda m, t: sd(m, t, None)[:-1] + [str(t / "c.pt")], "--out")
simple("convert-sd-unknown-preset", 2, lambda m, t: sd(m, t, None, "--preset", "huge"), "huge")
simple("convert-sd-config-missing", 2, lambda m, t: sd(m, t, None, "--config", str(t / "cfg.json")), "cfg.json")
simple("convert-sd-wrong-architecture", 1, lambda m, t: sd(m, t, None, "--preset", "ffhq512"), "g.pt")
@case("convert-sd-nan-weights", 1)
def _(m, t):
    import torch

    sd_ = torch.load(m.state_dict)
    key = next(k for k, v in sd_["G_ema"].items() if v.is_floating_point())
    sd_["G_ema"][key] = torch.full_like(sd_["G_ema"][key], float("nan"))
    torch.save(sd_, t / "nan.pt")
    return sd(m, t, t / "nan.pt"), ["nan.pt", "NaN", "G_ema"]


simple("convert-sd-nrr-0", 2, lambda m, t: sd(m, t, None, "--nrr", "0"), "--nrr")
simple("convert-pkl-focal-nan", 2, lambda m, t: ["convert", "eg3d-pkl", str(m.state_dict), "--out",
                                                 str(t / "c.safetensors"), "--focal", "nan"], "--focal")
simple("convert-pkl-is-a-torch-zip", 2, lambda m, t: ["convert", "eg3d-pkl", str(m.state_dict), "--out",
                                                      str(t / "c.safetensors")], "g.pt", "convert state-dict")
simple("convert-pkl-missing", 2, lambda m, t: ["convert", "eg3d-pkl", str(t / "n.pkl"), "--out",
                                               str(t / "c.safetensors")], "n.pkl")
simple("convert-pkl-garbage", 1, lambda m, t: ["convert", "eg3d-pkl", str(nonsense(t, "g.pkl")), "--out",
                                               str(t / "c.safetensors")], "g.pkl")


@case("convert-sd-config-invalid-json", 1)
def _(m, t):
    (t / "cfg.json").write_text("{")
    return sd(m, t, None, "--config", str(t / "cfg.json")), ["cfg.json"]


def out_is_a_file(argv: Callable[[Models, Path], list[str]], out: str) -> Build:
    def build(m: Models, t: Path) -> tuple[list[str], list[str]]:
        (t / out).write_text("keep me")
        return argv(m, t), ["--out", "existing file"]
    return build


for _cmd, _argv, _out in (("encode", enc, "o"), ("invert", inv, "o"), ("distill", dis, "run"), ("edit",
                          lambda m, t: edi(m, t, "--list"), "e")):
    case(f"{_cmd}-out-is-a-file", 2)(out_is_a_file(_argv, _out))


@pytest.mark.parametrize("name,code,build", CASES, ids=[c[0] for c in CASES])
def test_bad_input(name: str, code: int, build: Build, models: Models, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GAN3DKIT_NO_EXTENSION", "1")
    argv, needles = build(models, tmp_path)
    before, models_before = _files(tmp_path), _files(models.root)
    res = runner.invoke(app, argv)
    out = res.output
    assert res.exit_code == code, f"{name}: exit {res.exit_code} (want {code}): {out[-800:]} {res.exception!r}"
    assert "Traceback" not in out and "a bug in gan3dkit" not in out, out
    for needle in needles:
        assert needle in out, f"{name}: {needle!r} not named in: {out[-800:]}"
    created = _files(tmp_path) - before
    assert not created, f"{name} left {sorted(created)}"  # nothing half-written: no output folder, file or temp
    assert _files(models.root) == models_before


def test_the_model_corpus_is_large_enough():
    families = {n.split("-")[0] for n, _, _ in CASES}
    assert len(CASES) >= 60 and families == {"encode", "invert", "distill", "edit", "convert"}
