"""`gan3dkit prepare ffhq|single` end to end on real photos, with broken, odd-format and face-less inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gan3dkit.cameras import Cameras, ypr_to_cam2world
from gan3dkit.cli.main import app
from gan3dkit.data.reader import DatasetReader
from gan3dkit.data.validate import validate_dataset

pytestmark = pytest.mark.usefixtures("dlib_backend")
ASTRONAUT_VARIANTS = ("a_astronaut.jpg", "e_cmyk.jpg", "g_gray.png", "h_exif_rotated.jpg", "f_gray16.png")


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory, astronaut, grace_hopper, request) -> Path:
    """Real photos plus every awkward input the issue lists, written at test time (never committed)."""
    d = tmp_path_factory.mktemp("photos")
    ast = Image.fromarray(astronaut)
    ast.save(d / "a_astronaut.jpg", quality=95)
    Image.fromarray(grace_hopper).save(d / "b_grace_hopper.png")
    coffee = pytest.importorskip("skimage.data").coffee()
    Image.fromarray(coffee).save(d / "c_coffee_no_face.png")
    (d / "d_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    ast.convert("CMYK").save(d / "e_cmyk.jpg", quality=95)
    Image.fromarray(np.asarray(ast.convert("L")).astype(np.uint16) * 257).save(d / "f_gray16.png")
    ast.convert("L").save(d / "g_gray.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; viewers (and load_image_file) turn it upright
    ast.transpose(Image.ROTATE_90).save(d / "h_exif_rotated.jpg", exif=exif, quality=95)
    ast.resize((64, 64)).save(d / "j_tiny.png")
    return d


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_ffhq_end_to_end_with_bad_inputs(photo_dir, tmp_path, group_photo_path):
    src = tmp_path / "in"
    src.mkdir()
    for p in photo_dir.iterdir():
        (src / p.name).write_bytes(p.read_bytes())
    (src / "i_group.jpg").write_bytes(group_photo_path.read_bytes())
    out = tmp_path / "faces.lmdb"
    result = invoke("prepare", "ffhq", str(src), "--out", str(out), "--mirror", "--workers", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == json.loads((tmp_path / "faces.lmdb.report.json").read_text())
    assert report["settings"]["backend"] == "dlib"
    skipped = {s["name"]: s["reason"] for s in report["skipped"]}
    assert set(skipped) == {"c_coffee_no_face.png", "d_broken.jpg", "j_tiny.png"}
    assert "no face" in skipped["c_coffee_no_face.png"] and "cannot read" in skipped["d_broken.jpg"]
    assert [n["name"] for n in report["notes"]] == ["i_group.jpg"] and "took the largest" in report["notes"][0]["note"]
    used = ["a_astronaut.jpg", "b_grace_hopper.png", "e_cmyk.jpg", "f_gray16.png", "g_gray.png",
            "h_exif_rotated.jpg", "i_group.jpg"]
    assert report["counts"] == {"inputs": 10, "used": 7, "skipped": 3, "samples_written": 14, "mirrored": True,
                                "pose_from_prior": 0}
    assert validate_dataset(out).ok
    assert invoke("data", "validate", str(out)).exit_code == 0
    reader = DatasetReader(out)
    samples = [reader.read(i) for i in range(len(reader))]
    assert [s["name"] for s in samples] == [n for u in used for n in (u, f"{u}_mirror")]  # order never shifts
    for orig, mirr in zip(samples[0::2], samples[1::2], strict=False):
        np.testing.assert_array_equal(mirr["image"], orig["image"][:, ::-1])
        expect = Cameras.from_label(torch.from_numpy(orig["camera"].copy())).mirror().to_label()[0].numpy()
        np.testing.assert_allclose(mirr["camera"], expect, atol=1e-6)
        assert mirr["ypr"][0] == pytest.approx(-orig["ypr"][0], abs=1e-5)
    yaws = {s["name"]: np.degrees(s["ypr"][0]) for s in samples}
    for name in ASTRONAUT_VARIANTS:  # CMYK, 16-bit, grey, EXIF-rotated: the same face, the same pose
        assert abs(yaws[name] - yaws["a_astronaut.jpg"]) < 3.0, (name, yaws[name])
    reader.close()


def test_ffhq_uses_given_labels_and_skips_unlabelled(photo_dir, tmp_path):
    label = Cameras.from_matrices(ypr_to_cam2world(torch.tensor([0.3]), torch.tensor([0.1]), torch.tensor([0.0])),
                                  4.2647).to_label()[0].tolist()
    labels = tmp_path / "dataset.json"
    labels.write_text(json.dumps({"labels": [["a_astronaut.jpg", label]]}))
    out = tmp_path / "labelled.lmdb"
    result = invoke("prepare", "ffhq", str(photo_dir / "a_astronaut.jpg"), str(photo_dir / "b_grace_hopper.png"),
                    "--out", str(out), "--labels", str(labels), "--workers", "0", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["skipped"] == [{"name": "b_grace_hopper.png",
                                  "reason": "no label for this image in the given dataset.json"}]
    reader = DatasetReader(out)
    assert len(reader) == 1
    np.testing.assert_allclose(reader.read(0)["camera"], np.float32(label))
    reader.close()


def test_face_too_small_is_skipped(photo_dir, tmp_path):
    result = invoke("prepare", "ffhq", str(photo_dir / "a_astronaut.jpg"), "--out", str(tmp_path / "s.lmdb"),
                    "--max-upscale", "1.5", "--workers", "0", "--json")
    # its only input skipped: no 0-sample dataset is written (exit 1), and the message says why
    assert result.exit_code == 1 and "face too small" in result.output and "a_astronaut.jpg" in result.output
    assert not (tmp_path / "s.lmdb").exists() and not (tmp_path / "s.lmdb.partial").exists()


def test_single_writes_png_npy_json(photo_dir, tmp_path):
    out = tmp_path / "aligned"
    result = invoke("prepare", "single", str(photo_dir / "a_astronaut.jpg"), "--out", str(out), "--mirror")
    assert result.exit_code == 0, result.output
    for stem in ("a_astronaut", "a_astronaut_mirror"):
        image = np.asarray(Image.open(out / f"{stem}.png"))
        camera = np.load(out / f"{stem}.npy")
        meta = json.loads((out / f"{stem}.json").read_text())
        assert image.shape == (512, 512, 3) and camera.shape == (25,) and camera.dtype == np.float32
        np.testing.assert_allclose(camera, meta["camera"])
        assert np.linalg.norm(camera[[3, 7, 11]]) == pytest.approx(2.7, abs=1e-5)
        assert len(meta["lm5"]) == 5
    a, m = (json.loads((out / f"a_astronaut{s}.json").read_text())["ypr_deg"] for s in ("", "_mirror"))
    assert m[0] == pytest.approx(-a[0], abs=1e-4)
    again = invoke("prepare", "single", str(photo_dir / "a_astronaut.jpg"), "--out", str(out))
    assert again.exit_code == 2 and "already exists" in again.output
    none = invoke("prepare", "single", str(photo_dir / "c_coffee_no_face.png"), "--out", str(out))
    assert none.exit_code == 1 and "no face" in none.output
