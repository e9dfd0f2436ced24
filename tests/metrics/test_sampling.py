"""Inputs of the metrics: reproducible latents and fakes, EG3D pose draws (with mirrors) or prior draws, hashes."""

from __future__ import annotations

import torch

from gan3dkit.cameras import Cameras, get_prior
from gan3dkit.data import DatasetReader
from gan3dkit.generate.loading import load_generator
from gan3dkit.metrics import sampling


def test_latents_are_per_sample_reproducible():
    a = sampling.latents(5, 7, seed=3)
    assert torch.equal(a[2:], sampling.latents(3, 7, seed=3, start=2))
    assert not torch.equal(a, sampling.latents(5, 7, seed=4))


def test_pose_draws_from_dataset_with_mirrors_or_from_prior(heads16):
    reader = DatasetReader(heads16)
    pool = sampling.pose_pool(reader, mirror=True)
    assert pool.shape == (32, 25)
    torch.testing.assert_close(pool[16:], Cameras.from_label(pool[:16]).mirror().to_label())
    cams = sampling.draw_poses("dataset", 50, 0, reader, mirror=True)
    assert all(any(torch.equal(c, p) for p in pool) for c in cams[:10])
    assert torch.equal(cams, sampling.draw_poses("dataset", 50, 0, reader, mirror=True))
    prior = get_prior("synthetic_heads")
    ypr = sampling.camera_ypr(sampling.draw_poses("prior", 400, 0, prior=prior), (0.0, 0.0, 0.0))
    assert abs(float(ypr[:, 0].std()) - 0.3) < 0.05 and float(ypr[:, 2].abs().max()) < 1e-4


def test_render_fakes_is_deterministic_and_shaped(tiny_ckpt, heads16):
    G, _ = load_generator(tiny_ckpt)
    cams = sampling.draw_poses("dataset", 3, 0, DatasetReader(heads16))
    a = sampling.render_fakes(G, cams, seed=1, nrr=16, batch=2, keep=("image", "image_raw", "image_depth"))
    b = sampling.render_fakes(G, cams, seed=1, nrr=16, batch=2, keep=("image", "image_raw", "image_depth"))
    assert a["image"].dtype == torch.uint8 and a["image"].shape == (3, 3, 64, 64) and a["image_raw"].shape[-1] == 16
    assert a["image_depth"].shape == (3, 1, 16, 16) and torch.equal(a["camera"], cams)
    assert all(torch.equal(a[k], b[k]) for k in a)
    streamed = []
    for batch in sampling.iter_fakes(G, cams, seed=1, nrr=16, batch=2):
        torch.rand(1000)  # a consumer drawing random numbers between batches must not change the fakes
        streamed.append(batch["image"])
    assert torch.equal(torch.cat(streamed), a["image"])
    assert torch.equal(sampling.to_uint8(torch.tensor([-1.0, 0.0, 1.0, 2.0])), torch.tensor([0, 128, 255, 255],
                                                                                           dtype=torch.uint8))


def test_dataset_hash_tracks_content(heads16, dataset_factory):
    h = sampling.dataset_hash(heads16)
    assert h == sampling.dataset_hash(heads16) and len(h) == 64
    other, _ = dataset_factory(n=4)
    assert sampling.dataset_hash(other) != h
