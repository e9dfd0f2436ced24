"""Folder inputs of encode and invert: good items done, bad ones reported, outputs keyed by the full input name, an
--out inside the source never read back; notes for upscaled and animated inputs; data info on a resolution mismatch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lmdb
import numpy as np
import pytest
from safetensors.torch import load_file

from gan3dkit.cli.main import app

from .conftest import apng, bomb_png, png_bytes
from .test_corpus import runner
from .test_corpus_models import FAST


@pytest.fixture(autouse=True)
def _reference_ops(monkeypatch):
    monkeypatch.setenv("GAN3DKIT_NO_EXTENSION", "1")


def mixed_folder(t: Path) -> Path:
    """x.png and x.jpg (same stem), sub/x.png, a 1x1 image, an APNG, a corrupt JPEG and a decompression bomb."""
    from PIL import Image

    src = t / "photos"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(3)
    for name in ("x.png", "sub/x.png"):
        (src / name).write_bytes(png_bytes(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)))
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(src / "x.jpg")
    (src / "dot.png").write_bytes(png_bytes(np.full((1, 1, 3), 200, np.uint8)))
    apng(src / "anim.png")
    (src / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    bomb_png(src / "huge.png")
    return src


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


GOOD = {"anim.png", "dot.png", "sub/x.png", "x.jpg", "x.png"}


def _check_report(rep: dict) -> dict:
    assert {i["name"] for i in rep["items"]} == GOOD
    failed = {f["name"]: f["error"] for f in rep["failed"]}
    assert set(failed) == {"bad.jpg", "huge.png"}
    assert "bad.jpg" in failed["bad.jpg"] and "decompression bomb" in failed["huge.png"]
    notes = {i["name"]: " ".join(i.get("notes", [])) for i in rep["items"]}
    assert "upscaled 32x" in notes["dot.png"] and "first frame" in notes["anim.png"] and notes["x.png"] == ""
    return notes


def test_encode_folder_does_the_good_items_and_keys_them_by_full_name(models, tmp_path):
    src = mixed_folder(tmp_path)
    out = src / "encoded"  # inside the source: a rerun must not encode its own outputs
    args = ["encode", str(src), "--ckpt", str(models.enc), "--out", str(out), "--outputs", "triplane,reconstruction",
            "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    _check_report(json.loads(res.stdout))
    a, b = load_file(out / "x.png_triplane.safetensors"), load_file(out / "x.jpg_triplane.safetensors")
    assert not np.array_equal(a["planes"].numpy(), b["planes"].numpy())  # two inputs, two results
    assert (out / "sub" / "x.png_triplane.safetensors").is_file()
    assert all(np.isfinite(load_file(p)["planes"].numpy()).all() for p in out.rglob("*_triplane.safetensors"))
    dead = out / f".x.png_triplane.safetensors.{dead_pid()}.k2j4x9q1.tmp"  # a killed run's temp
    dead.write_bytes(b"\0" * 100)
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert {i["name"] for i in json.loads(again.stdout)["items"]} == GOOD  # nothing from encoded/ read back
    assert not dead.exists()
    human = runner.invoke(app, args[:-1])
    assert "failed bad.jpg" in human.output and "huge.png" in human.output and "note dot.png" in human.output


def test_encode_notes_a_stretched_input(models, tmp_path):
    (tmp_path / "wide.png").write_bytes(png_bytes(np.zeros((16, 24, 3), np.uint8)))
    res = runner.invoke(app, ["encode", str(tmp_path / "wide.png"), "--ckpt", str(models.enc), "--out",
                              str(tmp_path / "o"), "--outputs", "triplane", "--json"])
    assert res.exit_code == 0, res.output
    assert "not square (24x16): stretched to 32x32" in json.loads(res.stdout)["items"][0]["notes"]


def test_encode_animated_png_is_encoded_frame_by_frame(models, tmp_path):
    res = runner.invoke(app, ["encode", str(apng(tmp_path / "clip.png", frames=3)), "--ckpt", str(models.enc),
                              "--out", str(tmp_path / "o"), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["kind"] == "video" and [i["name"] for i in rep["items"]] == ["frame00000", "frame00001", "frame00002"]


def test_invert_folder_does_every_item_with_the_same_stem_and_never_reads_its_outputs(models, tmp_path):
    src = mixed_folder(tmp_path)
    out = src / "inverted"
    args = ["invert", str(src), "--ckpt", str(models.gen), "--out", str(out), *FAST, "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    _check_report(json.loads(res.stdout))
    for name in GOOD:
        assert (out / name / "metrics.json").is_file(), name
    m = json.loads((out / "dot.png" / "metrics.json").read_text())
    assert any("upscaled 32x" in n for n in m["notes"])
    dead = out / "x.jpg" / f".generator_delta.safetensors.{dead_pid()}.k2j4x9q1.tmp"
    dead.write_bytes(b"\0" * 100)
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert not dead.exists()
    rep = json.loads(again.stdout)
    assert not rep["items"] and {s["name"] for s in rep["skipped"]} == GOOD  # x.jpg is not "done" because of x.png
    assert {f["name"] for f in rep["failed"]} == {"bad.jpg", "huge.png"}


def test_invert_dataset_with_repeated_names_keys_samples_by_index(models, tmp_path):
    from gan3dkit.cameras import get_prior
    from gan3dkit.data import DatasetWriter

    from .conftest import labels

    w = DatasetWriter(tmp_path / "d.lmdb", resolution=32, fields=["image", "camera", "name"], source="test",
                      pose_prior=get_prior("synthetic_heads").to_dict())
    for i, cam in enumerate(labels(2)):
        w.add(np.full((32, 32, 3), 40 * i, np.uint8), cam, name="same.png")
    data = w.finish()
    res = runner.invoke(app, ["invert", str(data), "--ckpt", str(models.gen), "--out", str(tmp_path / "o"),
                              *FAST, "--json"])
    assert res.exit_code == 0, res.output
    assert [i["name"] for i in json.loads(res.stdout)["items"]] == ["00000000", "00000001"]


def test_data_info_flags_a_recorded_resolution_that_differs_from_the_images(models, tmp_path):
    import shutil

    data = shutil.copytree(models.dataset, tmp_path / "d.lmdb")
    env = lmdb.open(str(data), subdir=True, map_size=1 << 30)
    with env.begin(write=True) as txn:
        meta = json.loads(txn.get(b"__meta__"))
        txn.put(b"__meta__", json.dumps({**meta, "resolution": 64}).encode())
    env.close()
    res = runner.invoke(app, ["data", "info", str(data)])
    assert res.exit_code == 0, res.output
    assert "warning" in res.output and "resolution 64" in res.output and "32x32" in res.output
    clean = runner.invoke(app, ["data", "info", str(models.dataset)])
    assert clean.exit_code == 0 and "resolution 64" not in clean.output and "differ" not in clean.output


def test_a_generator_delta_with_nan_is_refused_naming_it(models, tmp_path):
    import torch

    from gan3dkit.generate.loading import load_generator
    from gan3dkit.invert.delta import load_delta, save_delta
    from gan3dkit.train.checkpoint import CheckpointError

    base = load_generator(models.gen)[0]
    tuned = load_generator(models.gen)[0]
    with torch.no_grad():
        next(tuned.parameters()).fill_(float("nan"))
    save_delta(tmp_path / "d.safetensors", models.gen, base, tuned)
    with pytest.raises(CheckpointError, match=r"d\.safetensors.*NaN"):
        load_delta(tmp_path / "d.safetensors")


def test_single_inputs_with_the_same_stem_never_replace_each_other(models, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(9)
    (tmp_path / "x.png").write_bytes(png_bytes(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)))
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "x.jpg")
    for name in ("x.png", "x.jpg"):
        res = runner.invoke(app, ["encode", str(tmp_path / name), "--ckpt", str(models.enc), "--out",
                                  str(tmp_path / "enc"), "--outputs", "triplane"])
        assert res.exit_code == 0, res.output
    assert {p.name for p in (tmp_path / "enc").glob("*_triplane.safetensors")} == {
        "x.png_triplane.safetensors", "x.jpg_triplane.safetensors"}
    inv = ["--ckpt", str(models.gen), "--out", str(tmp_path / "inv"), *FAST]
    assert runner.invoke(app, ["invert", str(tmp_path / "x.png"), *inv]).exit_code == 0
    before = (tmp_path / "inv" / "metrics.json").read_bytes()
    other = runner.invoke(app, ["invert", str(tmp_path / "x.jpg"), *inv])
    assert other.exit_code == 2 and "holds the inversion of 'x.png'" in other.output, other.output
    same = runner.invoke(app, ["invert", str(tmp_path / "x.png"), *inv, "--json"])
    assert same.exit_code == 0 and json.loads(same.stdout)["skipped"][0]["name"] == "x.png"
    assert (tmp_path / "inv" / "metrics.json").read_bytes() == before
