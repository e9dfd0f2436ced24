"""Synthetic datasets: depth/mask truth, mirror symmetry, determinism and resume, asymmetry, framing, read-back."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gan3dkit.cameras import Cameras, get_prior, lookat_cam2world
from gan3dkit.data import DatasetReader, LMDBDataset, partial_path, read_meta
from gan3dkit.data.validate import validate_dataset
from gan3dkit.prepare.synthetic import (
    FAMILIES,
    build_synthetic,
    default_prior,
    implicit,
    param_names,
    render_batch,
    sample_params,
)
from gan3dkit.render.rays import ray_bundle

BOX = {"heads": 0.5, "objects": 0.8}  # EG3D rendering boxes: box_warp 1 (FFHQ) and 1.6 (ShapeNet)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Many small tensor ops: one thread is as fast and immune to oversubscribed CI machines (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _scenes(family: str, n: int, seed: int = 0, symmetric: bool = False) -> tuple[torch.Tensor, Cameras]:
    params = sample_params(family, n, torch.Generator().manual_seed(seed), symmetric=symmetric)
    cams = get_prior(default_prior(family)).sample(n, torch.Generator().manual_seed(seed + 100))
    return params, cams


def _camera(family: str, yaw: float, pitch: float = 0.0, n: int = 1) -> Cameras:
    """Cameras of the family's prior radius/focal at orbit yaw/pitch (radians), looking at the origin."""
    prior = get_prior(default_prior(family))
    h = torch.full((n,), math.pi / 2 + yaw, dtype=torch.float64)
    v = torch.full((n,), math.pi / 2 * (1 - math.sin(pitch)), dtype=torch.float64)
    return Cameras.from_matrices(lookat_cam2world(h, v, prior.radius).float(), prior.focal)


def _interrupt_at(count: int):
    """A progress callback that raises KeyboardInterrupt (Ctrl-C) once `count` samples are written."""
    def progress(done: int, total: int) -> None:
        if done >= count:
            raise KeyboardInterrupt
    return progress


def _surface_points(cams: Cameras, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World points origin + depth * dir [B, N, 3] of every pixel and the hit mask [B, N]."""
    origins, dirs = ray_bundle(cams, depth.shape[-1])
    d = depth.reshape(len(cams), -1).float()
    hit = torch.isfinite(d)
    return origins + torch.where(hit, d, 0.0)[..., None] * dirs, hit


@pytest.mark.parametrize("family", FAMILIES)
def test_depth_reprojects_onto_the_surface_and_mask_is_the_centre_ray(family):
    params, cams = _scenes(family, 6)
    out = render_batch(family, params, cams, 40, ssaa=2)
    points, hit = _surface_points(cams, out["depth"])
    assert torch.equal(hit.reshape(out["mask"].shape), out["mask"]) and 0.1 < hit.float().mean() < 0.95
    value = implicit(family, params, points)
    assert value[hit].abs().max() < 1e-4                       # float32: on the surface
    assert value[~hit].min() > 1e-3                            # the camera centre is outside the object
    beyond = points + 0.005 * torch.nn.functional.normalize(points - cams.origins[:, None], dim=-1)
    behind = implicit(family, params, beyond)
    assert (behind[hit] < 0).float().mean() > 0.9              # just beyond the hit we are inside the object
    # depth and mask come from the pixel-centre rays whatever the supersampling
    plain = render_batch(family, params, cams, 40, ssaa=1)
    assert torch.equal(plain["depth"], out["depth"]) and torch.equal(plain["mask"], out["mask"])


@pytest.mark.parametrize("family", FAMILIES)
def test_symmetric_scene_mirrors_exactly_under_camera_mirror(family):
    params, cams = _scenes(family, 8, seed=3, symmetric=True)
    a = render_batch(family, params, cams, 32)
    b = render_batch(family, params, cams.mirror(), 32)
    assert torch.equal(a["mask"], b["mask"].flip(2))
    assert torch.equal(a["depth"], b["depth"].flip(2))
    assert (a["image"].int() - b["image"].flip(2).int()).abs().max() <= 1  # sub-sample averaging order only
    # the default (asymmetric) scenes do not have this symmetry
    params_asym, _ = _scenes(family, 8, seed=3)
    c = render_batch(family, params_asym, cams, 32)
    d = render_batch(family, params_asym, cams.mirror(), 32)
    assert (c["image"].float() - d["image"].flip(2).float()).abs().mean() > 1.0


def test_resume_and_batch_size_give_identical_bytes(tmp_path):
    kwargs = {"family": "heads", "num": 9, "resolution": 16, "seed": 5, "ssaa": 2}
    ref = build_synthetic(tmp_path / "ref.lmdb", batch_size=9, **kwargs)
    out = tmp_path / "out.lmdb"
    with pytest.raises(KeyboardInterrupt):
        build_synthetic(out, batch_size=4, progress=_interrupt_at(4), **kwargs)
    assert not out.exists() and partial_path(out).exists()   # only the .partial is left
    seen: list[int] = []
    build_synthetic(out, batch_size=3, resume=True, progress=lambda d, t: seen.append(d), **kwargs)
    assert seen[0] == 4 and seen[-1] == 9                      # resumed at sample 4, not from scratch
    a, b = DatasetReader(ref), DatasetReader(out)
    assert len(a) == len(b) == 9
    for i in range(9):
        for field in a.meta["fields"]:
            assert a.read_raw(i, field) == b.read_raw(i, field), (i, field)
    assert a.meta["extra"] == b.meta["extra"]
    other = build_synthetic(tmp_path / "other.lmdb", batch_size=9, **{**kwargs, "seed": 6})
    assert DatasetReader(other).read_raw(0, "image") != a.read_raw(0, "image")


def test_heads_are_asymmetric_consistently_and_frontal_views_show_the_face():
    n = 8
    params, _ = _scenes("heads", n, seed=7)
    params[:, param_names("heads").index("light_x")] = 0.0     # lighting symmetric: only the head's own asymmetry
    cams = _camera("heads", 0.0, n=n)
    out = render_batch("heads", params, cams, 64)
    img = out["image"].float()
    diff = img - img.flip(2)                                   # [n, H, W, 3]
    changed = (diff.abs().amax(-1) > 30).float().mean(dim=(1, 2))
    assert changed.min() > 0.02                                # every head differs clearly from its mirror image
    names = param_names("heads")
    cols = torch.arange(64, dtype=torch.float32) + 0.5
    for name, left_half in (("earring", False), ("mole_size", True)):  # the same side for every head
        without = params.clone()
        without[:, names.index(name)] = 0.0
        changed = (render_batch("heads", without, cams, 64)["image"] != out["image"]).any(-1).float()  # [n, H, W]
        assert (changed.sum((1, 2)) > 0).all()
        on_left = (changed * (cols < 32)).sum((1, 2)) / changed.sum((1, 2))
        assert (on_left == 1).all() if left_half else (on_left == 0).all()
    sym = sample_params("heads", n, torch.Generator().manual_seed(7), symmetric=True)
    mirror_free = render_batch("heads", sym, cams, 64)["image"]
    assert torch.equal(mirror_free, mirror_free.flip(2))       # symmetric=True switches every asymmetry off
    mask = out["mask"].float()
    centroid = (mask.sum(1) * cols).sum(1) / mask.sum((1, 2))
    assert (centroid - 32).abs().max() < 2.5                   # frontal camera: the head is centred
    face = mask[:, 16:40, 20:44].mean()                        # eyes/nose region is covered by the head
    assert face > 0.99 and 0.35 < mask.mean() < 0.9


def test_objects_white_background_and_distinct_front_and_back():
    n = 6
    params, cams = _scenes("objects", n, seed=11, symmetric=True)
    names = param_names("objects")
    for name, value in (("paint_r", 0.2), ("paint_g", 0.3), ("paint_b", 0.8)):  # blue cars: red = tail lights
        params[:, names.index(name)] = value
    out = render_batch("objects", params, cams, 48)
    near = torch.nn.functional.max_pool2d(out["mask"].float()[:, None], 3, 1, 1)[:, 0] > 0
    assert (out["image"][~near] == 255).all() and (~near).float().mean() > 0.3
    front = render_batch("objects", params, _camera("objects", 0.0, 0.3, n), 48)["image"].int()
    back = render_batch("objects", params, _camera("objects", math.pi, 0.3, n), 48)["image"].int()
    assert (front - back).abs().float().mean(dim=(1, 2, 3)).min() > 5.0

    def red(img: torch.Tensor) -> torch.Tensor:
        return ((img[..., 0] > 150) & (img[..., 1] < 90) & (img[..., 2] < 90)).sum(dim=(1, 2))

    def bright(img: torch.Tensor) -> torch.Tensor:
        return ((img[..., 0] > 220) & (img[..., 1] > 220) & (img[..., 2] > 170) & (img[..., 2] < 240)).sum(dim=(1, 2))

    assert (red(back) > red(front)).all() and (bright(front) > bright(back)).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_surfaces_fit_the_eg3d_box(family):
    n = 48
    params, _ = _scenes(family, n, seed=13)
    gen = torch.Generator().manual_seed(14)
    yaw = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi      # all round, -60..60 deg
    pitch = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi / 3
    radius = get_prior(default_prior(family)).radius
    c2w = lookat_cam2world(yaw + math.pi / 2, math.pi / 2 * (1 - torch.sin(pitch)), radius)
    cams = Cameras.from_matrices(c2w.float(), 0.9)             # wide lens: the whole object is in view
    out = render_batch(family, params, cams, 48, ssaa=1)
    assert not out["mask"][:, [0, -1]].any() and not out["mask"][:, :, [0, -1]].any()  # nothing cut off
    points, hit = _surface_points(cams, out["depth"])
    extent = points[hit].abs().max(dim=0).values
    assert (extent < BOX[family]).all(), extent
    assert extent.max() > 0.3                                  # and the object is not tiny


@pytest.mark.parametrize("family", FAMILIES)
def test_dataset_reads_back_with_all_fields(tmp_path, family):
    path = build_synthetic(tmp_path / f"{family}.lmdb", family=family, num=5, resolution=24, seed=2, ssaa=1,
                           command="pytest")
    meta = read_meta(path)
    d = len(param_names(family))
    assert meta["count"] == 5 and meta["latent_dim"] == d and meta["pose_prior"]["name"] == default_prior(family)
    assert meta["extra"]["family"] == family and meta["extra"]["param_names"] == param_names(family)
    assert set(meta["fields"]) == {"image", "camera", "ypr", "mask", "depth", "latent", "name"}
    assert validate_dataset(path).ok
    ds = LMDBDataset(path)
    item = ds[4]
    assert item["image"].shape == (3, 24, 24) and item["image"].dtype == torch.uint8
    assert item["camera"].shape == (25,) and item["ypr"].shape == (3,) and item["latent"].shape == (d,)
    assert item["mask"].shape == (1, 24, 24) and item["depth"].shape == (1, 24, 24)
    assert item["name"] == f"{family}_000004"
    # stored truth re-projects onto the scene rebuilt from the stored latent (float16 depth: ~1e-3 at r = 2.7)
    cams = Cameras.from_label(torch.stack([ds[i]["camera"] for i in range(5)]))
    depth = torch.stack([ds[i]["depth"][0] for i in range(5)])
    points, hit = _surface_points(cams, depth)
    assert torch.equal(hit.reshape(5, 24, 24), torch.stack([ds[i]["mask"][0] > 0 for i in range(5)]))
    value = implicit(family, torch.stack([ds[i]["latent"] for i in range(5)]), points)
    assert value[hit].abs().max() < 3e-3
    assert np.allclose(meta["pose_prior"]["radius"], cams.radius.numpy(), atol=1e-4)


def test_bad_arguments_and_symmetric_sampling(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic family"):
        sample_params("cats", 1)
    with pytest.raises(ValueError, match="unknown synthetic family"):
        build_synthetic(tmp_path / "c.lmdb", family="cats", num=1, resolution=8)
    params, cams = _scenes("heads", 2)
    with pytest.raises(ValueError, match="params must be"):
        render_batch("heads", params[:1], cams, 8)
    with pytest.raises(ValueError, match="scene parameters must be"):
        render_batch("heads", params[:, :-1], cams, 8)
    for family in FAMILIES:
        sym = sample_params(family, 4, torch.Generator().manual_seed(0), symmetric=True)
        full = sample_params(family, 4, torch.Generator().manual_seed(0))
        zeroed = (sym == 0).all(0)
        assert zeroed.any() and torch.equal(sym[:, ~zeroed], full[:, ~zeroed]) and (full[:, zeroed] != 0).all()
        assert "light_x" in [n for n, z in zip(param_names(family), zeroed.tolist(), strict=False) if z]
    # a resumed job never silently shrinks: more samples already written than --num asks for is an error
    out = tmp_path / "r.lmdb"
    with pytest.raises(KeyboardInterrupt):
        build_synthetic(out, "objects", num=6, resolution=8, batch_size=3, progress=_interrupt_at(3))
    with pytest.raises(ValueError, match="more than --num"):
        build_synthetic(out, "objects", num=2, resolution=8)
    assert torch.get_num_threads() == 1                        # build_synthetic restored the thread setting
