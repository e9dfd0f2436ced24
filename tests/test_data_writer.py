"""Writer safety: atomic finish, kill -9 during a write, exact resume, input validation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gan3dkit.cameras import CameraError, frontal_camera
from gan3dkit.data import DatasetFormatError, DatasetReader, DatasetWriter, partial_path, read_meta
from gan3dkit.data.validate import validate_dataset
from gan3dkit.utils.errors import UsageError

SCRIPT = textwrap.dedent("""
    import sys, time, numpy as np
    from gan3dkit.cameras import frontal_camera
    from gan3dkit.data import DatasetWriter
    out, n, delay, resume = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
    cam = frontal_camera().to_label()[0].numpy()
    w = DatasetWriter(out, resolution=8, fields=["image", "camera", "latent"], latent_dim=1, commit_every=3,
                      resume=resume, resume_key={"n": n})
    for i in range(w.count, n):
        w.add(np.full((8, 8, 3), i % 256, np.uint8), cam, latent=np.array([i], np.float32))
        print(w.count, flush=True)
        time.sleep(delay)
    w.finish()
""")


def _run(tmp_path, out, n, delay, resume):
    script = tmp_path / "writer.py"
    script.write_text(SCRIPT)
    return subprocess.Popen(
        [sys.executable, str(script), str(out), str(n), str(delay), "1" if resume else "0"],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_kill_during_write_leaves_no_valid_dataset_and_resume_is_exact(tmp_path):
    out = tmp_path / "k.lmdb"
    proc = _run(tmp_path, out, 40, 0.02, resume=False)
    for line in proc.stdout:  # wait until a few transactions are committed
        if int(line) >= 10:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists() and partial_path(out).exists()
    report = validate_dataset(out)
    assert not report.ok and "interrupted write" in report.errors[0]
    with pytest.raises(DatasetFormatError, match="no meta record"):
        read_meta(partial_path(out))
    # resume finishes the job; result equals an uninterrupted run
    assert _run(tmp_path, out, 40, 0.0, resume=True).wait() == 0
    ref = tmp_path / "ref.lmdb"
    assert _run(tmp_path, ref, 40, 0.0, resume=False).wait() == 0
    a, b = DatasetReader(out), DatasetReader(ref)
    assert len(a) == len(b) == 40
    for i in range(40):
        for f in ("image", "camera", "latent"):
            assert a.read_raw(i, f) == b.read_raw(i, f)
    assert validate_dataset(out).ok and not partial_path(out).exists()


def test_resume_with_other_settings_is_refused(tmp_path):
    out = tmp_path / "r.lmdb"
    w = DatasetWriter(out, resolution=8, commit_every=1, resume_key={"seed": 1})
    w.add(np.zeros((8, 8, 3), np.uint8), frontal_camera().to_label()[0])
    w.close()
    with pytest.raises(UsageError, match="different settings"):  # a usage error (exit 2): the options differ
        DatasetWriter(out, resolution=8, resume=True, resume_key={"seed": 2})
    w2 = DatasetWriter(out, resolution=8, resume=False, resume_key={"seed": 2})  # restart discards it
    assert w2.count == 0
    w2.close()


def test_existing_output_is_protected_and_overwrite_is_atomic(tmp_path, dataset_factory):
    path, _ = dataset_factory(n=3)
    with pytest.raises(FileExistsError, match="--overwrite"):
        DatasetWriter(path, resolution=16)
    w = DatasetWriter(path, resolution=8, overwrite=True)
    assert read_meta(path)["count"] == 3  # old dataset intact until finish
    w.add(np.zeros((8, 8, 3), np.uint8), frontal_camera().to_label()[0])
    w.finish()
    assert read_meta(path)["count"] == 1 and read_meta(path)["resolution"] == 8


def test_bad_samples_are_rejected_at_the_boundary(tmp_path):
    w = DatasetWriter(tmp_path / "b.lmdb", resolution=8, fields=["image", "camera", "depth"])
    cam = frontal_camera().to_label()[0].numpy()
    bad_cam = cam.copy()
    bad_cam[0] = 2.0
    with pytest.raises(CameraError, match="not orthonormal"):
        w.add(np.zeros((8, 8, 3), np.uint8), bad_cam, depth=np.ones((8, 8)))
    with pytest.raises(DatasetFormatError, match="shape"):
        w.add(np.zeros((9, 8, 3), np.uint8), cam, depth=np.ones((8, 8)))
    with pytest.raises(DatasetFormatError, match="declares"):
        w.add(np.zeros((8, 8, 3), np.uint8), cam)  # depth missing
    with pytest.raises(DatasetFormatError, match="uint8"):
        w.add(np.zeros((8, 8, 3), np.float32), cam, depth=np.ones((8, 8)))
    assert w.count == 0
    w.close()
    with pytest.raises(DatasetFormatError, match="unknown sample fields"):
        DatasetWriter(tmp_path / "c.lmdb", resolution=8, fields=["image", "camera", "normals"])


def test_validate_reports_corrupt_images_bad_cameras_and_outliers(dataset_factory):
    import lmdb

    path, _ = dataset_factory(n=8)
    env = lmdb.open(str(path), map_size=1 << 30)
    cam = np.frombuffer(env.begin().get(b"00000005/camera"), "<f4").copy()
    cam[0] = 1.5
    far = np.frombuffer(env.begin().get(b"00000006/camera"), "<f4").copy()
    far[[3, 7, 11]] *= 10
    with env.begin(write=True) as txn:
        txn.put(b"00000002/image", b"\x89PNG\r\n\x1a\nnot really a png")
        txn.put(b"00000005/camera", cam.tobytes())
        txn.put(b"00000006/camera", far.tobytes())
        txn.put(b"00000099/image", b"stray")
    env.close()
    report = validate_dataset(path)
    assert not report.ok
    bad = {b["index"]: " ".join(b["problems"]) for b in report.bad}
    assert set(bad) == {2, 5, 6}
    assert "cannot decode" in bad[2] and "not orthonormal" in bad[5] and "outlier" in bad[6]
    assert any("beyond count" in e for e in report.errors)
