"""EG3D zip/folder interchange: exact round trip, skipped inputs never shift labels, strict mode."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from gan3dkit.data import DatasetFormatError, DatasetReader
from gan3dkit.data.eg3d_zip import eg3d_name, export_eg3d, import_eg3d


@pytest.mark.parametrize("suffix", [".zip", "_folder"])
def test_export_import_round_trip(dataset_factory, tmp_path, suffix):
    path, data = dataset_factory(n=5)
    out = export_eg3d(path, tmp_path / f"eg3d{suffix}")
    if suffix == ".zip":
        with zipfile.ZipFile(out) as zf:
            assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())  # like EG3D's dataset_tool
            labels = json.loads(zf.read("dataset.json"))["labels"]
    else:
        labels = json.loads((out / "dataset.json").read_text())["labels"]
    assert [name for name, _ in labels] == [eg3d_name(i) for i in range(5)]
    assert np.array_equal(np.asarray([lab for _, lab in labels], np.float32), data["camera"])
    back, report = import_eg3d(out, tmp_path / f"back{suffix}.lmdb")
    assert report["imported"] == 5 and report["skipped"] == []
    r = DatasetReader(back)
    for i in range(5):
        s = r.read(i)
        assert np.array_equal(s["image"], data["image"][i]) and np.array_equal(s["camera"], data["camera"][i])


def _png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _eg3d_zip(tmp_path, dataset_factory):
    """An EG3D zip whose 2nd image is corrupt, 3rd has no label and 4th has a broken camera."""
    path, data = dataset_factory(n=6)
    zpath = tmp_path / "mixed.zip"
    labels = []
    with zipfile.ZipFile(zpath, "w") as zf:
        for i in range(6):
            name = f"img{i:02d}.png"
            zf.writestr(name, b"garbage" if i == 1 else _png(data["image"][i]))
            cam = data["camera"][i].tolist()
            if i == 3:
                cam[0] = 3.0
            if i != 2:
                labels.append([name, cam])
        zf.writestr("dataset.json", json.dumps({"labels": labels}))
    return zpath, data


def test_bad_entries_are_skipped_without_shifting_labels(dataset_factory, tmp_path):
    zpath, data = _eg3d_zip(tmp_path, dataset_factory)
    out, report = import_eg3d(zpath, tmp_path / "m.lmdb")
    reasons = {s["name"]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"img01.png", "img02.png", "img03.png"}
    assert "cannot decode" in reasons["img01.png"] and "no label" in reasons["img02.png"]
    assert "orthonormal" in reasons["img03.png"]
    r = DatasetReader(out)
    kept = [0, 4, 5]
    assert len(r) == 3
    for j, i in enumerate(kept):
        s = r.read(j)
        assert s["name"] == f"img{i:02d}.png"
        assert np.array_equal(s["image"], data["image"][i]) and np.array_equal(s["camera"], data["camera"][i])
    with pytest.raises(DatasetFormatError, match="img01.png"):
        import_eg3d(zpath, tmp_path / "strict.lmdb", strict=True)


def test_missing_labels_file_and_resize(dataset_factory, tmp_path):
    folder = tmp_path / "nolabels"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "a.png")
    with pytest.raises(DatasetFormatError, match="dataset.json"):
        import_eg3d(folder, tmp_path / "x.lmdb")
    path, data = dataset_factory(n=2, resolution=16)
    src = export_eg3d(path, tmp_path / "src.zip")
    out, report = import_eg3d(src, tmp_path / "small.lmdb", resolution=8)
    assert report["resized"] == 2 and DatasetReader(out).read(0)["image"].shape == (8, 8, 3)
