"""Photo dataset driver (order, resume, reports) and `prepare folder|afhq|cub|lsun` on layouts built here."""

from __future__ import annotations

import io
import json
import math
import os
import time
from pathlib import Path

import lmdb
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from gan3dkit.cameras import get_prior
from gan3dkit.cli.main import app
from gan3dkit.data.reader import DatasetReader, read_meta
from gan3dkit.data.validate import validate_dataset
from gan3dkit.prepare.folders import FolderJob, process_folder_item
from gan3dkit.prepare.photos import BuildSpec, Item, Outcome, attach_labels, build_dataset, list_images, ordered_map


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def read_all(path: Path) -> list[dict]:
    reader = DatasetReader(path)
    out = [reader.read(i) for i in range(len(reader))]
    reader.close()
    return out


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    return pytest.importorskip("skimage.data").chelsea()  # [300, 451, 3], a real cat


def slow_echo(state, item: Item) -> Outcome:
    time.sleep(0.002 * (7 - int(item.name) % 7))  # later items often finish first
    return Outcome(item.name, skip=item.name)


def test_ordered_map_keeps_input_order_with_workers():
    items = [Item(str(i), None) for i in range(40)]
    assert [o.name for o in ordered_map(slow_echo, items, workers=2, window=6)] == [str(i) for i in range(40)]


def _worker_setup(job: str) -> tuple[str, int]:
    return job, os.getpid()


def _report_state(state: tuple[str, int], item: Item) -> Outcome:
    return Outcome(item.name, notes=[f"{state[0]}:{state[1]}:{os.getpid()}"])


@pytest.mark.parametrize("workers", [0, 2])
def test_ordered_map_builds_the_state_once_per_process_and_passes_it(workers):
    """Each call gets the state its own process built from the job with `setup` (no module global per importer)."""
    items = [Item(str(i), None) for i in range(12)]
    notes = [o.notes[0].split(":") for o in ordered_map(_report_state, items, workers, job="J", setup=_worker_setup)]
    assert all(job == "J" and built_in == ran_in for job, built_in, ran_in in notes)
    pids = {ran_in for _, _, ran_in in notes}
    assert (pids == {str(os.getpid())}) if workers == 0 else (str(os.getpid()) not in pids and len(pids) <= 2)


def test_list_images_files_folders_globs(tmp_path, cat):
    (tmp_path / "a" / "sub").mkdir(parents=True)
    for rel in ("a/x.png", "a/sub/y.jpg", "b.png"):
        Image.fromarray(cat).save(tmp_path / rel)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    items = list_images([tmp_path / "a", str(tmp_path / "*.png"), tmp_path / "a" / "x.png"])
    assert [i.name for i in items] == ["sub/y.jpg", "x.png", "b.png"]  # x.png given twice: listed once
    with pytest.raises(FileNotFoundError):
        list_images([tmp_path / "missing"])
    labels = {"00000/x.png": [1.0] * 25, "sub/y.jpg": [2.0] * 25}
    attach_labels(items, labels)
    assert [i.label[0] if i.label else None for i in items] == [2.0, 1.0, None]


def make_folder(tmp_path: Path, cat: np.ndarray, n: int = 9) -> list[Item]:
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(n):
        Image.fromarray(np.roll(cat, 17 * i, axis=1)).save(d / f"{i:02d}.png")
    (d / "05.png").write_bytes(b"broken")
    return list_images([d])


def test_resume_after_interrupt_gives_the_same_dataset(tmp_path, cat):
    items = make_folder(tmp_path, cat)
    attach_labels(items, {"01.png": get_prior("afhq").sample(1).to_label()[0].tolist()})

    def spec(out: str, **kw) -> BuildSpec:
        return BuildSpec(out=tmp_path / out, resolution=32, kind="folder", prior=get_prior("afhq"), seed=3,
                         mirror=True, workers=0, flush_every=2, **kw)

    def stop_at(k: int):
        def progress(done: int, total: int) -> None:
            if done == k:
                raise KeyboardInterrupt
        return progress

    job = FolderJob(32)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(spec("r.lmdb"), items, process_folder_item, job, progress=stop_at(7))
    assert (tmp_path / "r.lmdb.partial").exists() and not (tmp_path / "r.lmdb").exists()
    _, resumed = build_dataset(spec("r.lmdb"), items, process_folder_item, job)
    _, clean = build_dataset(spec("c.lmdb"), items, process_folder_item, job)
    a, b = read_all(tmp_path / "r.lmdb"), read_all(tmp_path / "c.lmdb")
    assert len(a) == len(b) == 16
    for x, y in zip(a, b, strict=False):
        assert x["name"] == y["name"]
        np.testing.assert_array_equal(x["image"], y["image"])
        np.testing.assert_array_equal(x["camera"], y["camera"])
    for rep in (resumed, clean):
        assert rep["skipped"] == [{"name": "05.png", "reason": rep["skipped"][0]["reason"]}]
        assert rep["pose_from_prior"] == [f"{i:02d}.png" for i in range(9) if i not in (1, 5)]
    np.testing.assert_array_equal(a[2]["camera"], np.float32(items[1].label))  # 01.png kept its label


def test_folder_crops_and_label_rules(tmp_path, cat):
    make_folder(tmp_path, cat, n=3)
    src = tmp_path / "imgs"
    no_cameras = invoke("prepare", "folder", str(src), "--out", str(tmp_path / "x.lmdb"))
    assert no_cameras.exit_code == 2 and "--prior" in no_cameras.output
    label = get_prior("afhq").sample(1).to_label()[0].tolist()
    (src / "dataset.json").write_text(json.dumps({"labels": [["00.png", label]]}))
    for crop, expect_used in (("center", 1), ("pad", 1), ("none", 0)):
        out = tmp_path / f"{crop}.lmdb"
        result = invoke("prepare", "folder", str(src), "--out", str(out), "--crop", crop, "--resolution", "48",
                        "--workers", "0", "--json")
        if crop == "none":  # every input skipped: a 0-sample dataset is refused, and nothing is left behind
            assert result.exit_code == 1 and "none of the" in result.output and "not square" in result.output
            assert not out.exists() and not (tmp_path / f"{crop}.lmdb.partial").exists()
            continue
        report = json.loads(result.stdout)
        assert report["counts"]["used"] == expect_used, report
        reasons = {s["name"]: s["reason"] for s in report["skipped"]}
        assert "cannot" in reasons["05.png"]  # the broken file
        assert all("no camera label" in reasons[f"{i:02d}.png"] for i in (1, 2))
    sample = read_all(tmp_path / "pad.lmdb")[0]
    assert sample["image"].shape == (48, 48, 3) and (sample["image"][:4] == 0).all()  # padded band is black
    expected = np.asarray(Image.fromarray(cat[:, 75:375]).resize((48, 48), Image.LANCZOS)).astype(int)
    assert np.abs(read_all(tmp_path / "center.lmdb")[0]["image"].astype(int) - expected).max() <= 1
    assert validate_dataset(tmp_path / "center.lmdb").ok and validate_dataset(tmp_path / "pad.lmdb").ok


def test_afhq_labels_kept_and_unlabelled_cats_flagged(tmp_path, cat):
    src = tmp_path / "cat"
    src.mkdir()
    Image.fromarray(cat[:, 70:370]).save(src / "flickr_cat_000001.png")
    Image.fromarray(cat[:, 100:400]).save(src / "flickr_cat_000002.png")
    label = get_prior("afhq").sample(1).to_label()[0].tolist()
    labels = tmp_path / "afhq.json"
    labels.write_text(json.dumps({"labels": [["flickr_cat_000001.png", label]]}))
    out = tmp_path / "cats.lmdb"
    result = invoke("prepare", "afhq", str(src), "--labels", str(labels), "--out", str(out), "--resolution", "64",
                    "--mirror", "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["pose_from_prior"] == ["flickr_cat_000002.png"]
    assert report["counts"]["samples_written"] == 4 and report["prior"] == "afhq"
    samples = read_all(out)
    np.testing.assert_allclose(samples[0]["camera"], np.float32(label))
    assert read_meta(out)["pose_prior"]["name"] == "afhq" and validate_dataset(out).ok


def make_cub(root: Path, cat: np.ndarray) -> Path:
    cub = root / "CUB_200_2011"
    rows = [("001.Cat/cat_1.jpg", (60, 40, 200, 180), 1), ("001.Cat/cat_2.jpg", (10, 20, 300, 250), 1),
            ("002.Test/cat_3.jpg", (100, 50, 150, 150), 0)]
    (cub / "images.txt").parent.mkdir(parents=True)
    (cub / "images.txt").write_text("".join(f"{i + 1} {r[0]}\n" for i, r in enumerate(rows)))
    (cub / "bounding_boxes.txt").write_text("".join(f"{i + 1} {' '.join(f'{v:.1f}' for v in r[1])}\n"
                                                    for i, r in enumerate(rows)))
    (cub / "train_test_split.txt").write_text("".join(f"{i + 1} {r[2]}\n" for i, r in enumerate(rows)))
    for i, (rel, (x, y, w, h), _) in enumerate(rows):
        (cub / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(cat).save(cub / "images" / rel)
        if i == 1:
            continue  # cat_2 has no segmentation: must be skipped and reported
        yy, xx = np.mgrid[0:cat.shape[0], 0:cat.shape[1]]
        inside = ((xx - x - w / 2) / (w / 2)) ** 2 + ((yy - y - h / 2) / (h / 2)) ** 2 <= 1.0
        mask_path = root / "segmentations" / Path(rel).with_suffix(".png")
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.where(inside, 255, 0).astype(np.uint8)).save(mask_path)
    return cub


def test_cub_birds_on_white_with_masks(tmp_path, cat):
    cub = make_cub(tmp_path, cat)
    out = tmp_path / "birds.lmdb"
    result = invoke("prepare", "cub", "--root", str(cub), "--out", str(out), "--resolution", "64", "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0, result.output
    assert report["counts"]["inputs"] == 2 and report["counts"]["used"] == 1
    assert "no segmentation mask" in report["skipped"][0]["reason"]
    (sample,) = read_all(out)
    assert sample["name"] == "001.Cat/cat_1.jpg"
    assert set(np.unique(sample["mask"]).tolist()) <= {0, 255}
    outside, inside = sample["mask"] == 0, sample["mask"] == 255
    white = (sample["image"] >= 250).all(axis=-1)
    assert inside.mean() > 0.4 and white[outside].mean() > 0.9 and white[[0, 0, -1, -1], [0, -1, 0, -1]].all()
    crop = np.asarray(Image.fromarray(cat[20:240, 50:270]).resize((64, 64), Image.LANCZOS)).astype(int)
    # the bird itself is kept (box centre 160,130; side 220)
    assert np.abs(sample["image"][inside].astype(int) - crop[inside]).mean() < 12
    yaw = math.degrees(float(sample["ypr"][0]))
    assert abs(yaw) <= 135.01 and read_meta(out)["pose_prior"]["name"] == "cub" and validate_dataset(out).ok
    everything = invoke("prepare", "cub", "--root", str(cub), "--out", str(tmp_path / "all.lmdb"),
                        "--split", "all", "--resolution", "32", "--workers", "0", "--json")
    assert json.loads(everything.stdout)["counts"]["inputs"] == 3


def encode(image: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, quality=95)
    return buf.getvalue()


def test_lsun_lmdb_jpeg_webp_and_broken(tmp_path, cat):
    src = tmp_path / "bedroom_train_lmdb"
    marked = cat.copy()
    marked[:, :70] = (255, 0, 0)  # left band that the centre crop must remove (451 wide -> 300 from x = 75)
    values = {b"0001": encode(marked, "JPEG"), b"0002": encode(marked, "WEBP"), b"0003": b"not an image",
              b"0004": encode(marked[:, ::-1], "JPEG")}
    env = lmdb.open(str(src), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for k, v in values.items():
            txn.put(k, v)
    env.close()
    out = tmp_path / "bed.lmdb"
    result = invoke("prepare", "lsun", "--lmdb", str(src), "--out", str(out), "--resolution", "32", "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0, result.output
    assert report["counts"]["inputs"] == 4 and report["skipped"][0]["name"] == "0003"
    assert report["settings"]["prior"] == "lsun_bedroom" and report["counts"]["pose_from_prior"] == 3
    samples = read_all(out)
    assert [s["name"] for s in samples] == ["0001", "0002", "0004"]
    for s in samples:
        red = (s["image"][..., 0] > 200) & (s["image"][..., 1] < 60)
        assert red.mean() < 0.01  # the band was outside the centre square
    assert read_meta(out)["pose_prior"]["name"] == "lsun_bedroom" and validate_dataset(out).ok
    other = tmp_path / "misc_lmdb"
    other.mkdir()
    lmdb.open(str(other)).close()
    bad = invoke("prepare", "lsun", "--lmdb", str(other), "--out", str(tmp_path / "o.lmdb"))
    assert bad.exit_code == 2 and "--prior" in bad.output
