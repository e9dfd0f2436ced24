"""The bad-input corpus: every case exits 1 (bad data) or 2 (usage) with one message naming the culprit, no
traceback, and leaves nothing half-written. Inputs are generated in tmp folders (see conftest), never committed."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gan3dkit.cli.main import app

from .conftest import Corpus, png_bytes, set_args

runner = CliRunner(env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})
Build = Callable[[Corpus, Path], tuple[list[str], list[str]]]
CASES: list[tuple[str, int, Build]] = []


def registrars(cases: list) -> tuple[Callable, Callable]:
    """`case(name, code)`, a decorator for a builder returning (argv, culprit strings), and `simple(name, code, argv,
    *culprits)` for fixed culprit strings (the option name, a path part, a word); both append to `cases`."""
    def case(name: str, code: int) -> Callable[[Build], Build]:
        def register(fn: Build) -> Build:
            cases.append((name, code, fn))
            return fn
        return register

    def simple(name: str, code: int, argv: Callable[[Any, Path], list[str]], *needles: str) -> None:
        cases.append((name, code, lambda c, t: (argv(c, t), list(needles))))

    return case, simple


case, simple = registrars(CASES)


def eg3d_copy(c: Corpus, t: Path, edit: Callable[[Path, dict], None] | None = None) -> Path:
    src = shutil.copytree(c.eg3d, t / "src")
    if edit is not None:
        data = json.loads((src / "dataset.json").read_text())
        edit(src, data)
        (src / "dataset.json").write_text(json.dumps(data))
    return src


def photos(t: Path, n: int = 0, bad: int = 0, gifs: int = 0) -> Path:
    src = t / "photos"
    src.mkdir(exist_ok=True)
    rng = np.random.default_rng(5)
    for i in range(n):
        (src / f"ok{i}.png").write_bytes(png_bytes(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)))
    for i in range(bad):
        (src / f"bad{i}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    for i in range(gifs):
        (src / f"anim{i}.gif").write_bytes(png_bytes(np.zeros((8, 8), np.uint8), "GIF"))
    return src


# --- data info / validate / export -----------------------------------------------------------------------------
for cmd in ("info", "validate"):
    code_missing = 2 if cmd == "info" else 1
    simple(f"data-{cmd}-missing", code_missing, lambda c, t, cmd=cmd: ["data", cmd, str(t / "nope.lmdb")], "nope.lmdb")
    simple(f"data-{cmd}-truncated", 1, lambda c, t, cmd=cmd: ["data", cmd, str(c.truncated)], "truncated.lmdb",
           "truncated")
    simple(f"data-{cmd}-garbage-mdb", 1, lambda c, t, cmd=cmd: ["data", cmd, str(c.garbage)], "garbage.lmdb",
           "not an LMDB file")
    simple(f"data-{cmd}-no-mdb", 1, lambda c, t, cmd=cmd: ["data", cmd, str(c.root)], "no data.mdb")
    simple(f"data-{cmd}-bad-meta", 1, lambda c, t, cmd=cmd: ["data", cmd, str(c.bad_meta)], "bad_meta.lmdb",
           "not valid JSON")
    simple(f"data-{cmd}-future-version", 1, lambda c, t, cmd=cmd: ["data", cmd, str(c.future)], "future.lmdb",
           "Upgrade")
simple("data-validate-empty", 1, lambda c, t: ["data", "validate", str(c.empty)], "empty.lmdb", "0 samples")
simple("data-validate-nan-camera", 1, lambda c, t: ["data", "validate", str(c.nan_camera)], "sample 2", "NaN")
simple("data-validate-bad-image", 1, lambda c, t: ["data", "validate", str(c.bad_image)], "sample 3", "image")
simple("data-validate-show-negative", 2, lambda c, t: ["data", "validate", str(c.good), "--show", "-1"], "--show")
simple("data-info-num-zero", 2, lambda c, t: ["data", "info", str(c.good), "--num", "0"], "--num")
simple("data-info-max-samples-zero", 2, lambda c, t: ["data", "info", str(c.good), "--max-samples", "0"],
       "--max-samples")
simple("data-info-grid-of-empty", 1, lambda c, t: ["data", "info", str(c.empty), "--grid", str(t / "g.png")],
       "empty.lmdb", "0 samples")
simple("data-info-grid-bad-image", 1, lambda c, t: ["data", "info", str(c.bad_image), "--grid", str(t / "g.png")],
       "sample 3")
simple("data-export-truncated", 1, lambda c, t: ["data", "export", str(c.truncated), "--out", str(t / "e.zip")],
       "truncated")
simple("data-export-missing", 2, lambda c, t: ["data", "export", str(t / "x.lmdb"), "--out", str(t / "e.zip")],
       "x.lmdb")
simple("data-export-nan-camera", 1, lambda c, t: ["data", "export", str(c.nan_camera), "--out", str(t / "e.zip")],
       "sample 2")
simple("data-export-empty", 1, lambda c, t: ["data", "export", str(c.empty), "--out", str(t / "e")], "0 samples")


@case("data-export-exists", 2)
def _(c, t):
    (t / "e.zip").write_bytes(b"keep me")
    return ["data", "export", str(c.good), "--out", str(t / "e.zip")], ["e.zip", "--overwrite"]


# --- prepare eg3d --------------------------------------------------------------------------------------------------
simple("eg3d-missing-src", 2, lambda c, t: ["prepare", "eg3d", str(t / "none.zip"), "--out", str(t / "o.lmdb")],
       "none.zip")


@case("eg3d-not-a-zip", 1)
def _(c, t):
    (t / "notes.zip").write_text("just text")
    return ["prepare", "eg3d", str(t / "notes.zip"), "--out", str(t / "o.lmdb")], ["notes.zip", "zip"]


@case("eg3d-truncated-zip", 1)
def _(c, t):
    data = c.eg3d_zip.read_bytes()
    (t / "cut.zip").write_bytes(data[: len(data) // 2])
    return ["prepare", "eg3d", str(t / "cut.zip"), "--out", str(t / "o.lmdb")], ["cut.zip", "zip"]


@case("eg3d-random-bytes-zip", 1)
def _(c, t):
    (t / "rnd.zip").write_bytes(np.random.default_rng(0).bytes(5000))
    return ["prepare", "eg3d", str(t / "rnd.zip"), "--out", str(t / "o.lmdb")], ["rnd.zip"]


@case("eg3d-no-dataset-json", 1)
def _(c, t):
    src = eg3d_copy(c, t)
    (src / "dataset.json").unlink()
    return ["prepare", "eg3d", str(src), "--out", str(t / "o.lmdb")], ["dataset.json"]


@case("eg3d-invalid-json", 1)
def _(c, t):
    src = eg3d_copy(c, t)
    (src / "dataset.json").write_text('{"labels": [["img00.png", [1, 2,')
    return ["prepare", "eg3d", str(src), "--out", str(t / "o.lmdb")], ["dataset.json", "line 1"]


@case("eg3d-invalid-json-in-zip", 1)
def _(c, t):
    with zipfile.ZipFile(t / "a.zip", "w") as zf:
        zf.write(c.eg3d / "img00.png", "img00.png")
        zf.writestr("dataset.json", "{oops")
    return ["prepare", "eg3d", str(t / "a.zip"), "--out", str(t / "o.lmdb")], ["dataset.json", "a.zip"]


@case("eg3d-no-labels", 1)
def _(c, t):
    src = eg3d_copy(c, t, lambda s, d: d.update(labels=None))
    return ["prepare", "eg3d", str(src), "--out", str(t / "o.lmdb")], ["dataset.json", "labels"]


@case("eg3d-labels-not-list", 1)
def _(c, t):
    src = eg3d_copy(c, t, lambda s, d: d.update(labels={"img00.png": [0] * 25}))
    return ["prepare", "eg3d", str(src), "--out", str(t / "o.lmdb")], ["dataset.json", "labels"]


@case("eg3d-no-images", 1)
def _(c, t):
    src = eg3d_copy(c, t)
    for p in src.glob("*.png"):
        p.unlink()
    return ["prepare", "eg3d", str(src), "--out", str(t / "o.lmdb")], ["no images"]


@case("eg3d-every-entry-bad", 1)
def _(c, t):
    src = eg3d_copy(c, t, lambda s, d: d.update(labels=[[n, [1.0] * 7] for n, _ in d["labels"]]))
    return ["prepare", "eg3d", str(src), "--out", str(t / "o.lmdb")], ["no entry could be imported", "img00.png"]


@case("eg3d-strict-bad-label", 1)
def _(c, t):
    src = eg3d_copy(c, t, lambda s, d: d["labels"][0].__setitem__(1, "abc"))
    return ["prepare", "eg3d", str(src), "--out", str(t / "o.lmdb"), "--strict"], ["img00.png", "--strict"]


@case("eg3d-strict-duplicate", 1)
def _(c, t):
    src = eg3d_copy(c, t, lambda s, d: d["labels"].append(list(d["labels"][1])))
    return ["prepare", "eg3d", str(src), "--out", str(t / "o.lmdb"), "--strict"], ["img01.png", "duplicate"]


@case("eg3d-strict-label-without-file", 1)
def _(c, t):
    src = eg3d_copy(c, t, lambda s, d: d["labels"].append(["ghost.png", d["labels"][0][1]]))
    return ["prepare", "eg3d", str(src), "--out", str(t / "o.lmdb"), "--strict"], ["ghost.png"]


for opt, val in (("--max-images", "0"), ("--max-images", "-3"), ("--resolution", "0"), ("--resolution", "x")):
    simple(f"eg3d-{opt[2:]}-{val}", 2, lambda c, t, o=opt, v=val: ["prepare", "eg3d", str(c.eg3d), "--out",
                                                                     str(t / "o.lmdb"), o, v], opt)
simple("eg3d-unknown-prior", 2, lambda c, t: ["prepare", "eg3d", str(c.eg3d), "--out", str(t / "o.lmdb"), "--prior",
                                              "nowhere"], "nowhere")


@case("eg3d-out-exists", 2)
def _(c, t):
    (t / "o.lmdb").mkdir()
    return ["prepare", "eg3d", str(c.eg3d), "--out", str(t / "o.lmdb")], ["o.lmdb", "--overwrite"]


# --- prepare folder / afhq / cub / lsun / synthetic -------------------------------------------------------------
simple("folder-missing", 2, lambda c, t: ["prepare", "folder", str(t / "nope"), "--out", str(t / "o.lmdb")], "nope")


@case("folder-no-images", 2)
def _(c, t):
    (t / "docs").mkdir()
    (t / "docs" / "a.txt").write_text("x")
    return ["prepare", "folder", str(t / "docs"), "--out", str(t / "o.lmdb"), "--prior", "afhq"], ["docs", "no image"]


@case("folder-only-corrupt", 1)
def _(c, t):
    return (["prepare", "folder", str(photos(t, bad=3)), "--out", str(t / "o.lmdb"), "--prior", "afhq",
             "--workers", "0"], ["none of the 3 inputs", "bad0.jpg"])


@case("folder-only-gifs", 1)
def _(c, t):
    return (["prepare", "folder", str(photos(t, gifs=2)), "--out", str(t / "o.lmdb"), "--prior", "afhq",
             "--workers", "0"], ["anim0.gif", ".gif"])


@case("folder-only-broken-links", 1)
def _(c, t):
    src = t / "links"
    src.mkdir()
    os.symlink(src / "gone.png", src / "a.png")
    os.symlink(src / "b.png", src / "b.png")  # a loop
    return (["prepare", "folder", str(src), "--out", str(t / "o.lmdb"), "--prior", "afhq", "--workers", "0"],
            ["a.png", "symbolic link"])


@case("folder-labels-invalid-json", 1)
def _(c, t):
    (t / "l.json").write_text("{'single quotes': 1}")
    return (["prepare", "folder", str(photos(t, n=2)), "--out", str(t / "o.lmdb"), "--labels", str(t / "l.json")],
            ["l.json", "JSON"])


@case("folder-labels-not-pairs", 1)
def _(c, t):
    (t / "l.json").write_text(json.dumps({"labels": [["ok0.png"]]}))
    return (["prepare", "folder", str(photos(t, n=2)), "--out", str(t / "o.lmdb"), "--labels", str(t / "l.json")],
            ["l.json", "entry 0"])


@case("folder-labels-missing-file", 2)
def _(c, t):
    return (["prepare", "folder", str(photos(t, n=2)), "--out", str(t / "o.lmdb"), "--labels", str(t / "l.json")],
            ["l.json"])


@case("folder-no-labels-no-prior", 2)
def _(c, t):
    return ["prepare", "folder", str(photos(t, n=2)), "--out", str(t / "o.lmdb")], ["--prior"]


for opt, val in (("--crop", "zoom"), ("--max-images", "0"), ("--resolution", "4"), ("--fill", "300"),
                 ("--workers", "-1"), ("--prior", "mars")):
    simple(f"folder-{opt[2:]}-{val}", 2, lambda c, t, o=opt, v=val: (
        ["prepare", "folder", str(photos(t, n=1)), "--out", str(t / "o.lmdb"), *(["--prior", "afhq"] if o != "--prior"
                                                                                   else []), o, v]),
        opt if opt not in ("--crop", "--prior") else val)
simple("afhq-max-images-0", 2, lambda c, t: ["prepare", "afhq", str(photos(t, n=1)), "--out", str(t / "o.lmdb"),
                                             "--max-images", "0"], "--max-images")
simple("ffhq-max-upscale-nan", 2, lambda c, t: ["prepare", "ffhq", str(photos(t, n=1)), "--out", str(t / "o.lmdb"),
                                                "--max-upscale", "nan"], "--max-upscale")
simple("single-max-upscale-0", 2, lambda c, t: ["prepare", "single", str(photos(t, n=1)), "--out", str(t / "o"),
                                                "--max-upscale", "0"], "--max-upscale")
simple("cub-margin-nan", 2, lambda c, t: ["prepare", "cub", "--root", str(t), "--out", str(t / "o.lmdb"), "--margin",
                                          "nan"], "--margin")
simple("cub-missing-root", 2, lambda c, t: ["prepare", "cub", "--root", str(t / "CUB"), "--out", str(t / "o.lmdb")],
       "CUB")


@case("cub-bad-split", 2)
def _(c, t):
    (t / "CUB").mkdir()
    return ["prepare", "cub", "--root", str(t / "CUB"), "--out", str(t / "o.lmdb"), "--split", "val"], ["--split"]


simple("lsun-missing", 2, lambda c, t: ["prepare", "lsun", "--lmdb", str(t / "bedroom_lmdb"), "--out",
                                        str(t / "o.lmdb")], "bedroom_lmdb")
simple("lsun-truncated", 1, lambda c, t: ["prepare", "lsun", "--lmdb", str(c.truncated), "--out", str(t / "o.lmdb"),
                                          "--prior", "lsun_bedroom"], "truncated")
simple("lsun-unknown-category", 2, lambda c, t: ["prepare", "lsun", "--lmdb", str(c.good), "--out",
                                                 str(t / "o.lmdb")], "--prior")
simple("lsun-max-images-0", 2, lambda c, t: ["prepare", "lsun", "--lmdb", str(c.good), "--out", str(t / "o.lmdb"),
                                             "--max-images", "0"], "--max-images")
for opt, val in (("--family", "dragons"), ("--num", "0"), ("--resolution", "4"), ("--ssaa", "9"),
                 ("--prior", "mars"), ("--num", "many")):
    simple(f"synthetic-{opt[2:]}-{val}", 2, lambda c, t, o=opt, v=val: (
        ["prepare", "synthetic", "--out", str(t / "o.lmdb"), o, v]), val if opt in ("--family", "--prior") else opt)


@case("synthetic-out-exists", 2)
def _(c, t):
    (t / "o.lmdb").mkdir()
    return ["prepare", "synthetic", "--out", str(t / "o.lmdb"), "--num", "2"], ["o.lmdb", "--overwrite"]


# --- train ---------------------------------------------------------------------------------------------------------
def train_argv(data: Path, t: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--out", str(t / "run"), "--max-steps", "1", *set_args(), *extra]


simple("train-data-missing", 2, lambda c, t: train_argv(t / "nope.lmdb", t), "nope.lmdb")
simple("train-data-truncated", 1, lambda c, t: train_argv(c.truncated, t), "truncated.lmdb", "truncated")
simple("train-data-garbage", 1, lambda c, t: train_argv(c.garbage, t), "garbage.lmdb")
simple("train-nan-camera", 1, lambda c, t: train_argv(c.nan_camera, t), "nan_camera.lmdb", "sample 2")
simple("train-bad-image", 1, lambda c, t: train_argv(c.bad_image, t), "bad_image.lmdb", "sample 3")
simple("train-empty", 1, lambda c, t: train_argv(c.empty, t), "empty.lmdb", "0 samples")
simple("train-resolution-mismatch", 2, lambda c, t: train_argv(c.small, t), "resolution")
for opt, val in (("--kimg", "-1"), ("--kimg", "0"), ("--kimg", "nan"), ("--kimg", "inf"), ("--max-steps", "-5"),
                 ("--max-steps", "0"), ("--minutes", "0"), ("--minutes", "nan"), ("--device", "tpu"),
                 ("--device", "gpu"), ("--preset", "huge")):
    simple(f"train-{opt[2:]}-{val}", 2, lambda c, t, o=opt, v=val: train_argv(c.good, t, o, v),
           opt if opt not in ("--device", "--preset") else val)
for key, val, needle in (("run.snapshot_ticks", "0", "run.snapshot_ticks"), ("run.tick_kimg", "0", "run.tick_kimg"),
                         ("optim.glr", "-0.001", "-0.001"), ("optim.dlr", "NaN", "optim.dlr"),
                         ("optim.batch", "0", "optim.batch"), ("run.workers", "-1", "run.workers"),
                         ("optim.betas", "[0.5, 1.5]", "optim.betas"), ("run.grid_size", "0", "run.grid_size"),
                         ("loss.r1_gamma", "-1", "loss.r1_gamma"), ("run.bogus", "1", "bogus"),
                         ("optim.batch", "four", "optim.batch")):
    simple(f"train-set-{key}-{val}", 2, lambda c, t, k=key, v=val: train_argv(c.good, t, "--set", f"{k}={v}"), needle)
simple("train-set-no-equals", 2, lambda c, t: train_argv(c.good, t, "--set", "optim.batch"), "optim.batch")


@case("train-config-invalid-json", 1)
def _(c, t):
    (t / "cfg.json").write_text("{")
    return train_argv(c.good, t, "--config", str(t / "cfg.json")), ["cfg.json"]


simple("train-config-missing", 2, lambda c, t: train_argv(c.good, t, "--config", str(t / "nocfg.json")), "nocfg.json")


@case("train-device-cuda-without-cuda", 2)
def _(c, t):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    return train_argv(c.good, t, "--device", "cuda"), ["--device", "CUDA"]


@case("train-resume-corrupt-checkpoint", 1)
def _(c, t):
    (t / "run").mkdir()
    (t / "run" / "checkpoint.safetensors").write_bytes(b"\x00" * 100)
    return train_argv(c.good, t), ["checkpoint.safetensors"]


# --- generate / evaluate / train-probe -----------------------------------------------------------------------------
def gen_argv(ckpt: Path, t: Path, *extra: str) -> list[str]:
    return ["generate", "--ckpt", str(ckpt), "--out", str(t / "gen"), "--seeds", "0", *extra]


simple("generate-ckpt-missing", 2, lambda c, t: gen_argv(t / "no.safetensors", t), "no.safetensors")
simple("generate-nan-weights", 1, lambda c, t: gen_argv(c.nan_ckpt, t), "NaN", "checkpoint.safetensors")


@case("generate-ckpt-garbage", 1)
def _(c, t):
    (t / "x.safetensors").write_bytes(np.random.default_rng(0).bytes(300))
    return gen_argv(t / "x.safetensors", t), ["x.safetensors"]


@case("generate-ckpt-no-header", 1)
def _(c, t):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(t / "plain.safetensors"))
    return gen_argv(t / "plain.safetensors", t), ["plain.safetensors", "header"]


for opt, val in (("--trunc", "nan"), ("--trunc", "inf"), ("--trunc", "7"), ("--seeds", "a-b"), ("--seeds", ","),
                 ("--yaws", "left"), ("--yaws", "nan"), ("--pitch", "nan"), ("--device", "tpu"), ("--frames", "0"),
                 ("--mesh-level", "high"), ("--nrr", "0"), ("--mesh-res", "2")):
    simple(f"generate-{opt[2:]}-{val}", 2, lambda c, t, o=opt, v=val: gen_argv(c.ckpt, t, o, v),
           opt if opt != "--device" else val)


def eval_argv(data: Path, ckpt: Path | None, *extra: str) -> list[str]:
    return ["evaluate", "--data", str(data), *(["--ckpt", str(ckpt)] if ckpt else []), "--metrics", "fid",
            "--num", "4", "--offline", "--no-record", "--no-cache", *extra]


simple("evaluate-data-truncated", 1, lambda c, t: eval_argv(c.truncated, c.ckpt), "truncated")
simple("evaluate-nan-weights", 1, lambda c, t: eval_argv(c.good, c.nan_ckpt), "NaN")
simple("evaluate-unknown-metric", 2, lambda c, t: eval_argv(c.good, c.ckpt, "--metrics", "fdi"), "fdi")
for opt, val in (("--num", "0"), ("--batch", "0"), ("--trunc", "nan"), ("--device", "tpu"), ("--threads", "0"),
                 ("--max-real", "0"), ("--js-bins", "1"), ("--nrr", "-64")):
    simple(f"evaluate-{opt[2:]}-{val}", 2, lambda c, t, o=opt, v=val: eval_argv(c.good, c.ckpt, o, v),
           opt if opt != "--device" else val)
for opt, val in (("--steps", "0"), ("--holdout", "1.5"), ("--lr", "-1"), ("--lr", "nan"), ("--batch", "0")):
    simple(f"probe-{opt[2:]}-{val}", 2, lambda c, t, o=opt, v=val: (
        ["train-probe", "--target", "pose", "--data", str(c.good), "--out", str(t / "p.safetensors"), o, v]), opt)
simple("probe-data-truncated", 1, lambda c, t: ["train-probe", "--target", "pose", "--data", str(c.truncated), "--out",
                                                str(t / "p.safetensors"), "--steps", "1"], "truncated")


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.mark.parametrize("name,code,build", CASES, ids=[c[0] for c in CASES])
def test_bad_input(name: str, code: int, build: Build, corpus: Corpus, tmp_path: Path) -> None:
    argv, needles = build(corpus, tmp_path)
    before, corpus_before = _files(tmp_path), _files(corpus.root)
    res = runner.invoke(app, argv)
    out = res.output
    assert res.exit_code == code, f"{name}: exit {res.exit_code} (want {code}): {out[-800:]} {res.exception!r}"
    assert "Traceback" not in out, out
    for needle in needles:
        assert needle in out, f"{name}: {needle!r} not named in: {out[-800:]}"
    created = _files(tmp_path) - before
    assert not created, f"{name} left {sorted(created)}"  # nothing half-written: no output, .partial or temp file
    assert _files(corpus.root) == corpus_before


def test_the_corpus_is_large_enough():
    families = {n.split("-")[0] for n, _, _ in CASES}
    assert len(CASES) >= 80 and {"data", "eg3d", "folder", "synthetic", "train", "generate", "evaluate"} <= families
