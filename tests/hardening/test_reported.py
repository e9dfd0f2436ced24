"""Inputs that are accepted but must be reported: skipped entries, odd labels, notes; and resume never drops one."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from gan3dkit.cli.main import app
from gan3dkit.data import DatasetReader, partial_path
from gan3dkit.data.validate import validate_dataset

from .conftest import labels, png_bytes

runner = CliRunner(env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})


def names(path):
    r = DatasetReader(path)
    out = [r.read(i, ["name"])["name"] for i in range(len(r))]
    r.close()
    return out


def test_eg3d_bad_entries_are_skipped_and_odd_labels_noted(corpus, tmp_path):
    src = shutil.copytree(corpus.eg3d, tmp_path / "src")
    data = json.loads((src / "dataset.json").read_text())
    lab = {n: v for n, v in data["labels"]}
    lab["img00.png"] = [1.0, 2.0]  # not 25 numbers
    lab["img01.png"] = [float("nan")] * 25
    lab["img02.png"] = "front"  # not numbers at all
    (src / "img03.png").write_bytes(b"\x89PNG broken")
    (src / "img04.png").write_bytes(png_bytes(np.zeros((16, 20, 3), np.uint8)))  # not square
    (src / "extra.png").write_bytes(png_bytes(np.zeros((16, 16, 3), np.uint8)))  # no label
    (src / "img05.png").write_bytes(png_bytes(np.zeros((4, 4, 3), np.uint8)))  # upscaled 4x to 16
    entries = [[n, v] for n, v in lab.items()] + [["img05.png", lab["img05.png"]], ["ghost.png", lab["img05.png"]]]
    (src / "dataset.json").write_text(json.dumps({"labels": entries}).replace("NaN", "NaN"))
    res = runner.invoke(app, ["prepare", "eg3d", str(src), "--out", str(tmp_path / "o.lmdb"), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)["report"]
    skipped = {s["name"]: s["reason"] for s in report["skipped"]}
    assert set(skipped) == {"img00.png", "img01.png", "img02.png", "img03.png", "img04.png", "extra.png"}
    assert "25" in skipped["img00.png"] and "NaN" in skipped["img01.png"] and "not square" not in skipped["img03.png"]
    assert "square" in skipped["img04.png"] and "no label" in skipped["extra.png"]
    issues = {i["name"]: i["issue"] for i in report["label_issues"]}
    assert "duplicate" in issues["img05.png"] and "not in the dataset" in issues["ghost.png"]
    assert report["notes"] == [{"name": "img05.png", "note": "upscaled from 4x4 to 16x16"}]
    assert names(tmp_path / "o.lmdb") == ["img05.png"] and validate_dataset(tmp_path / "o.lmdb").ok
    human = runner.invoke(app, ["prepare", "eg3d", str(src), "--out", str(tmp_path / "h.lmdb")])
    for name in ("img00.png", "img03.png", "extra.png", "ghost.png", "img05.png"):
        assert name in human.output


def test_folder_reports_gifs_links_tiny_images_and_undecodable_names(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    (src / "good.png").write_bytes(png_bytes(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)))
    (src / "dot.png").write_bytes(png_bytes(np.full((1, 1, 3), 200, np.uint8)))
    (src / "anim.gif").write_bytes(png_bytes(np.zeros((8, 8), np.uint8), "GIF"))
    os.symlink(src / "loop.png", src / "loop.png")
    with open(os.path.join(os.fsencode(src), b"caf\xe9.png"), "wb") as f:  # Latin-1 name: not valid UTF-8
        f.write(png_bytes(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)))
    res = runner.invoke(app, ["prepare", "folder", str(src), "--out", str(tmp_path / "o.lmdb"), "--prior", "afhq",
                              "--resolution", "32", "--workers", "0", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    skipped = {s["name"]: s["reason"] for s in report["skipped"]}
    assert ".gif" in skipped["anim.gif"] and "symbolic link" in skipped["loop.png"]
    notes = {n["name"]: n["note"] for n in report["notes"]}
    assert "upscaled 32x" in notes["dot.png"]
    assert any("not valid UTF-8" in v for v in notes.values())
    assert sorted(names(tmp_path / "o.lmdb")) == sorted(["caf\\xe9.png", "dot.png", "good.png"])
    assert report["counts"]["samples_written"] == 3 and report["counts"]["skipped"] == 2


def _interrupt_once(monkeypatch, module, attr, when):
    """Make `module.attr` raise KeyboardInterrupt (like Ctrl-C or a crash) on the call where `when(arg)` holds."""
    real = getattr(module, attr)
    state = {"done": False}

    def flaky(*args, **kwargs):
        if not state["done"] and when(*args):
            state["done"] = True
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, attr, flaky)


@pytest.mark.parametrize("at", [0, 3])
def test_eg3d_rerun_after_a_crash_on_an_entry_loses_nothing(corpus, tmp_path, monkeypatch, at):
    import gan3dkit.data.eg3d_zip as ez

    target = f"img{at:02d}.png"
    _interrupt_once(monkeypatch, ez, "_load_item", lambda source, name, res: name == target)
    with pytest.raises(KeyboardInterrupt):
        ez.import_eg3d(corpus.eg3d, tmp_path / "o.lmdb")
    assert not (tmp_path / "o.lmdb").exists()
    res = runner.invoke(app, ["prepare", "eg3d", str(corpus.eg3d), "--out", str(tmp_path / "o.lmdb")])
    assert res.exit_code == 0, res.output
    assert (f"resuming from {at} samples" in res.output) == (at > 0)
    assert names(tmp_path / "o.lmdb") == [f"img{i:02d}.png" for i in range(6)]
    assert not partial_path(tmp_path / "o.lmdb").exists()


def test_folder_rerun_after_a_crash_on_an_input_loses_nothing(tmp_path, monkeypatch):
    import gan3dkit.prepare.folders as fo

    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(1)
    for i in range(5):
        (src / f"{i}.png").write_bytes(png_bytes(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)))
    args = {"resolution": 16, "prior": "afhq", "workers": 0, "mirror": True}
    _interrupt_once(monkeypatch, fo, "process_folder_item", lambda job, item: item.name == "3.png")
    with pytest.raises(KeyboardInterrupt):
        fo.build_folder([src], tmp_path / "o.lmdb", **args)
    monkeypatch.undo()
    _, report = fo.build_folder([src], tmp_path / "o.lmdb", **args)
    _, clean = fo.build_folder([src], tmp_path / "c.lmdb", **args)
    assert names(tmp_path / "o.lmdb") == names(tmp_path / "c.lmdb") and len(names(tmp_path / "c.lmdb")) == 10
    assert report["counts"] == clean["counts"] and report["skipped"] == []


def test_data_info_warns_on_nan_cameras_and_empty_datasets(corpus):
    res = runner.invoke(app, ["data", "info", str(corpus.nan_camera)])
    assert res.exit_code == 0 and "warning" in res.output and "sample 2" in res.output
    res = runner.invoke(app, ["data", "info", str(corpus.empty), "--json"])
    assert res.exit_code == 0 and "0 samples" in res.output


def test_debug_flag_shows_the_traceback(corpus):
    res = runner.invoke(app, ["--debug", "data", "info", str(corpus.truncated)])
    assert res.exit_code != 0 and type(res.exception).__name__ == "DataError"
    quiet = runner.invoke(app, ["data", "info", str(corpus.truncated)])
    assert quiet.exit_code == 1 and "Traceback" not in quiet.output and "truncated" in quiet.output


def test_every_label_is_checked_vectorised_like_label_problems():
    from gan3dkit.cameras import label_problems
    from gan3dkit.data.validate import camera_label_problems

    good = labels(64)
    rng = np.random.default_rng(0)
    bad = good.copy()
    for i, j in enumerate(rng.choice(64, 12, replace=False)):
        bad[j, [0, 3, 16, 18, 15, 5, 20, 11, 12, 17, 19, 2][i]] = [1.5, 1e4, -1, 3.0, 0.5, np.inf, 0.3, 1e5, 1.0, 0.2,
                                                                   2.0, 0.9][i]
    found = camera_label_problems(bad)
    assert found == {i: label_problems(bad[i]) for i in range(64) if label_problems(bad[i])} and len(found) >= 10
    assert camera_label_problems(good) == {}
