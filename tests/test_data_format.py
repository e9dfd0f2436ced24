"""LMDB format v1: round trips, byte layout per data_specs, version checks, reader with workers, x-flip."""

from __future__ import annotations

import json

import lmdb
import numpy as np
import pytest
import torch

from gan3dkit.cameras import Cameras
from gan3dkit.data import DatasetFormatError, DatasetReader, FormatVersionError, LMDBDataset, flip_sample, read_meta
from gan3dkit.data.format import META_KEY
from gan3dkit.specs import load_spec

ALL = ("image", "camera", "ypr", "mask", "depth", "latent", "name")


def test_round_trip_all_fields(dataset_factory):
    path, data = dataset_factory(fields=ALL, n=5)
    reader = DatasetReader(path)
    assert len(reader) == 5
    for i in range(5):
        s = reader.read(i)
        assert np.array_equal(s["image"], data["image"][i])
        assert np.array_equal(s["camera"], data["camera"][i])  # float32 exact
        assert np.array_equal(s["ypr"], data["ypr"][i]) and np.array_equal(s["latent"], data["latent"][i])
        assert np.array_equal(s["mask"], data["mask"][i])
        assert s["depth"].dtype == np.float16
        inside = data["mask"][i] > 0
        assert np.allclose(s["depth"][inside], data["depth"][i][inside], rtol=1e-3)
        assert np.isinf(s["depth"][~inside]).all()
        assert s["name"] == f"img{i}"


def test_stored_bytes_follow_the_spec(dataset_factory):
    path, data = dataset_factory(fields=ALL, n=2, resolution=8)
    spec = load_spec()
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        meta = json.loads(txn.get(spec["keys"]["meta"].encode()))
        cam = txn.get(b"00000001/camera")
        depth = txn.get(b"00000001/depth")
        img = txn.get(b"00000001/image")
        keys = [k.decode() for k in txn.cursor().iternext(values=False)]
    env.close()
    assert len(cam) == 25 * 4 and np.array_equal(np.frombuffer(cam, "<f4"), data["camera"][1])
    assert len(depth) == 8 * 8 * 2
    assert img[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(keys) == {"__meta__"} | {f"{i:08d}/{f}" for i in range(2) for f in ALL}
    required = {k for k, v in spec["meta_fields"].items() if v["required"]}
    assert required <= set(meta) and set(meta) <= set(spec["meta_fields"])
    assert meta["format_version"] == spec["version"] and meta["count"] == 2
    assert meta["camera_convention"] == spec["camera_convention"]
    assert meta["depth"] == spec["depth_convention"] and meta["ypr_convention"] == "orbit_v1"
    assert {"source", "command", "gan3dkit_version", "created"} <= set(meta["provenance"])
    assert meta["pose_prior"]["name"] == "synthetic_heads"


def _rewrite_meta(path, **changes):
    env = lmdb.open(str(path), map_size=1 << 30)
    with env.begin(write=True) as txn:
        meta = json.loads(txn.get(META_KEY))
        meta.update(changes)
        txn.put(META_KEY, json.dumps(meta).encode())
    env.close()


def test_unknown_major_version_is_refused_with_advice(dataset_factory):
    path, _ = dataset_factory()
    _rewrite_meta(path, format_version="2.0")
    with pytest.raises(FormatVersionError, match=r"v2\.0.*reads v1\.x.*Upgrade gan3dkit"):
        read_meta(path)
    _rewrite_meta(path, format_version="1.7")  # a newer minor of a known major reads fine
    assert read_meta(path)["format_version"] == "1.7"
    _rewrite_meta(path, format="something-else")
    with pytest.raises(DatasetFormatError, match="not a gan3dkit-lmdb dataset"):
        read_meta(path)


def test_missing_paths_and_non_datasets(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_meta(tmp_path / "nope.lmdb")
    (tmp_path / "empty.lmdb").mkdir()
    with pytest.raises(DatasetFormatError, match="not an LMDB"):
        read_meta(tmp_path / "empty.lmdb")


def test_reader_with_workers_sees_every_sample_once(dataset_factory):
    path, data = dataset_factory(n=12, fields=("image", "camera", "depth", "mask"))
    ds = LMDBDataset(path, xflip=True)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=5, num_workers=2, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    seen = []
    for batch in loader:
        for j in range(len(batch["index"])):
            i, flipped = int(batch["index"][j]), bool(batch["flipped"][j])
            img = batch["image"][j].permute(1, 2, 0).numpy()
            expect = data["image"][i][:, ::-1] if flipped else data["image"][i]
            assert np.array_equal(img, expect)
            cam = Cameras.from_label(torch.from_numpy(data["camera"][i]))
            expect_cam = (cam.mirror() if flipped else cam).to_label()[0]
            assert torch.equal(batch["camera"][j], expect_cam)
            seen.append((i, flipped))
    assert sorted(seen) == sorted((i, f) for i in range(12) for f in (False, True))


def test_flip_twice_is_identity(dataset_factory):
    path, _ = dataset_factory(fields=ALL, n=3)
    ds = LMDBDataset(path)
    s = ds[1]
    back = flip_sample(flip_sample(s))
    for k in ("image", "camera", "ypr", "mask", "depth"):
        assert torch.equal(back[k], s[k]), k
    assert back["flipped"] is False
    once = flip_sample(s)
    assert not torch.equal(once["image"], s["image"])
    assert torch.equal(once["ypr"][[0, 2]], -s["ypr"][[0, 2]]) and once["ypr"][1] == s["ypr"][1]
    assert torch.equal(LMDBDataset(path, xflip=True)[4]["image"], once["image"])  # index count + 1 = flip of 1


def test_reader_picklable_for_spawn(dataset_factory):
    import pickle

    path, data = dataset_factory(n=2)
    ds = LMDBDataset(path)
    _ = ds[0]  # opens the environment
    clone = pickle.loads(pickle.dumps(ds))
    assert np.array_equal(clone[1]["image"].permute(1, 2, 0).numpy(), data["image"][1])


def test_workers_after_the_parent_has_read(dataset_factory):
    """Reading in the parent first (as the trainer does for its reals grid) must not break forked workers."""
    path, data = dataset_factory(n=6)
    ds = LMDBDataset(path)
    assert np.array_equal(ds[0]["image"].permute(1, 2, 0).numpy(), data["image"][0])
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    got = torch.cat([b["index"] for b in loader]).tolist()
    assert got == list(range(6))
    assert np.array_equal(ds[5]["image"].permute(1, 2, 0).numpy(), data["image"][5])  # parent reopens lazily
