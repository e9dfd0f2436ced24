"""Camera conventions: EG3D known values, label codec, mirroring, rotations, priors, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gan3dkit.cameras import (
    CameraError,
    Cameras,
    cam2world_to_ypr,
    check_label,
    create_cam2world_matrix,
    diagonal_fov_from_focal,
    eg3d_hv_to_yaw_pitch,
    eg3d_positions,
    focal_from_diagonal_fov,
    focal_from_horizontal_fov,
    frontal_camera,
    get_prior,
    horizontal_fov_from_focal,
    label_problems,
    lookat_cam2world,
    lookat_pose,
    matrix_to_rotation_6d,
    prior_names,
    rotation_6d_to_matrix,
    uniform_pose,
    yaw_pitch_to_eg3d_hv,
    ypr_to_cam2world,
)

PI = math.pi


def test_frontal_lookat_is_camera_on_plus_z():
    c2w = lookat_cam2world(torch.tensor([PI / 2]), torch.tensor([PI / 2]), 2.7).double()
    assert torch.allclose(c2w[0, :3, 3], torch.tensor([0.0, 0.0, 2.7], dtype=torch.float64), atol=1e-6)
    # EG3D's typical FFHQ label: R = diag(1, -1, -1) (OpenCV camera, y down, looking at -z)
    assert torch.allclose(c2w[0, :3, :3], torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)), atol=1e-6)


def test_diagonal_fov_18837_is_focal_42647():
    assert focal_from_diagonal_fov(18.837) == pytest.approx(4.2647, rel=1e-3)
    assert diagonal_fov_from_focal(4.2647) == pytest.approx(18.837, abs=0.01)
    assert diagonal_fov_from_focal(focal_from_diagonal_fov(30.0)) == pytest.approx(30.0)
    # the same focal is a 13.37 degree *horizontal* FOV: the conventions must not be mixed up
    assert horizontal_fov_from_focal(4.2647) == pytest.approx(13.37, abs=0.01)
    assert focal_from_horizontal_fov(horizontal_fov_from_focal(1.7074)) == pytest.approx(1.7074)
    with pytest.raises(ValueError):
        focal_from_diagonal_fov(0.0)


@pytest.mark.parametrize("delta", [0.4, -0.25, 1.0])
def test_yaw_offset_is_azimuth(delta):
    pos = eg3d_positions(torch.tensor([PI / 2 + delta]), torch.tensor([PI / 2]), 2.7)[0]
    assert math.atan2(pos[0].item(), pos[2].item()) == pytest.approx(delta, abs=1e-6)
    assert (pos[0].item() > 0) == (delta > 0)  # positive offset moves the camera toward +x


def test_pitch_offset_is_nonlinear():
    pos = eg3d_positions(torch.tensor([PI / 2]), torch.tensor([PI / 2 - 0.2]), 2.7)[0]
    elevation = math.degrees(math.asin(pos[1].item() / 2.7))
    assert elevation == pytest.approx(7.315, abs=0.01)  # not 11.46 degrees
    assert elevation == pytest.approx(math.degrees(math.asin(0.4 / PI)), abs=1e-4)


def test_label_round_trip_and_layout():
    cams = get_prior("cub").sample(7, torch.Generator().manual_seed(3))
    label = cams.to_label()
    assert label.shape == (7, 25)
    back = Cameras.from_label(label)
    assert torch.equal(back.cam2world, cams.cam2world) and torch.equal(back.intrinsics, cams.intrinsics)
    assert torch.equal(label[:, 3], cams.cam2world[:, 0, 3])  # row-major: [0:16] rows of cam2world
    assert torch.allclose(label[:, 16], torch.full((7,), 4.2647))
    with pytest.raises(CameraError):
        Cameras.from_label(torch.zeros(3, 24))


def test_mirror_twice_is_identity_and_matches_flip_yaw():
    cams = get_prior("lsun_bedroom").sample(16, torch.Generator().manual_seed(0))
    twice = cams.mirror().mirror()
    assert torch.equal(twice.cam2world, cams.cam2world) and torch.equal(twice.intrinsics, cams.intrinsics)
    m, p = cams.mirror().cam2world, cams.cam2world
    flipped = torch.zeros(4, 4, dtype=torch.bool)
    for r, c in [(0, 1), (0, 2), (1, 0), (2, 0), (0, 3)]:  # EG3D flip_yaw entries
        flipped[r, c] = True
    assert torch.equal(m[:, flipped], -p[:, flipped]) and torch.equal(m[:, ~flipped], p[:, ~flipped])


def test_mirror_negates_yaw_and_roll():
    yaw, pitch, roll = torch.tensor([0.3, -0.5]), torch.tensor([0.1, -0.2]), torch.tensor([0.05, -0.1])
    c2w = ypr_to_cam2world(yaw, pitch, roll, 2.7).float()
    mirrored = Cameras.from_matrices(c2w, 4.2647).mirror().cam2world
    ypr = cam2world_to_ypr(mirrored)
    assert torch.allclose(ypr[:, 0], -yaw.double(), atol=1e-5)
    assert torch.allclose(ypr[:, 1], pitch.double(), atol=1e-5)
    assert torch.allclose(ypr[:, 2], -roll.double(), atol=1e-5)


def test_ypr_round_trip_and_eg3d_equivalence():
    g = torch.Generator().manual_seed(1)
    yaw = (torch.rand(50, generator=g) - 0.5) * 5
    pitch = (torch.rand(50, generator=g) - 0.5) * 2.4
    roll = (torch.rand(50, generator=g) - 0.5) * 2
    lookat = (0.0, 0.05, 0.2)
    c2w = ypr_to_cam2world(yaw, pitch, roll, 2.7, lookat)
    assert Cameras.from_matrices(c2w.float(), 4.2647).problems() == [[]] * 50
    ypr = cam2world_to_ypr(c2w)
    wrap = lambda a: torch.remainder(a + PI, 2 * PI) - PI  # noqa: E731
    assert torch.allclose(wrap(ypr[:, 0] - yaw.double()), torch.zeros(50, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(ypr[:, 1], pitch.double(), atol=1e-6)
    assert torch.allclose(ypr[:, 2], roll.double(), atol=1e-6)
    h, v = yaw_pitch_to_eg3d_hv(yaw.double(), pitch.double())
    assert torch.allclose(eg3d_positions(h, v, 2.7), c2w[:, :3, 3], atol=1e-6)
    y2, p2 = eg3d_hv_to_yaw_pitch(h, v)
    assert torch.allclose(y2, yaw.double(), atol=1e-9) and torch.allclose(p2, pitch.double(), atol=1e-6)


def test_6d_rotation_round_trip():
    g = torch.Generator().manual_seed(0)
    d6 = torch.randn(100, 6, generator=g, dtype=torch.float64)
    r = rotation_6d_to_matrix(d6)
    eye = torch.eye(3, dtype=torch.float64).expand(100, 3, 3)
    assert torch.allclose(r.transpose(1, 2) @ r, eye, atol=1e-10)
    assert torch.allclose(torch.linalg.det(r), torch.ones(100, dtype=torch.float64))
    assert torch.allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(r)), r, atol=1e-10)
    assert torch.allclose(matrix_to_rotation_6d(r)[:, :3], r[:, :, 0])  # column convention (Zhou et al.)


def test_lookat_points_at_target_and_degenerate_top_view():
    c2w = lookat_pose(PI / 2 + 0.3, PI / 2 - 0.2, (0, 0, 0.2), radius=2.7, batch=3)
    for m in c2w:
        to_target = torch.tensor([0, 0, 0.2]) - m[:3, 3]
        assert torch.allclose(m[:3, 2], to_target / to_target.norm(), atol=1e-6)
    top = create_cam2world_matrix(torch.tensor([[0.0, -1.0, 0.0]]), torch.tensor([[0.0, 2.0, 0.0]]))
    assert (
        torch.isfinite(top).all()
        and label_problems(torch.cat([top.reshape(16), torch.tensor([1.0, 0, 0.5, 0, 1.0, 0.5, 0, 0, 1])])) == []
    )


def test_uniform_sampler_bounds():
    c2w = uniform_pose(PI / 2, PI / 2, 0.3, 0.0, radius=1.0, batch=2000, generator=torch.Generator().manual_seed(0))
    az = torch.atan2(c2w[:, 0, 3], c2w[:, 2, 3])
    assert az.min() >= -0.3 - 1e-5 and az.max() <= 0.3 + 1e-5 and az.max() > 0.29 and az.min() < -0.29


def test_table_c_priors_exact_and_sampled():
    assert {"lsun_bedroom", "lsun_church", "afhq", "cub", "synthetic_heads", "synthetic_objects"} <= set(prior_names())
    church = get_prior("lsun_church")
    assert church.yaw.kind == "uniform" and church.yaw.std == pytest.approx(5 * PI / 18)
    assert church.pitch.kind == "fixed" and church.pitch.mean == pytest.approx(PI / 2)
    assert get_prior("afhq").yaw.std == 0.19 and get_prior("afhq").pitch.std == 0.13
    assert get_prior("cub").yaw.std == pytest.approx(3 * PI / 4)
    assert get_prior("lsun_bedroom").yaw.std == 0.70
    h, v = get_prior("lsun_bedroom").sample_hv(20000, torch.Generator().manual_seed(0))
    assert h.std().item() == pytest.approx(0.70, rel=0.03) and v.std().item() == pytest.approx(0.10, rel=0.03)
    cams = get_prior("synthetic_heads").sample(64, torch.Generator().manual_seed(0))
    assert torch.allclose(cams.radius, torch.full((64,), 2.7), atol=1e-5)
    with pytest.raises(ValueError, match="choose one of"):
        get_prior("ffhq_typo")


def test_label_problems_catch_bad_cameras():
    good = frontal_camera().to_label()[0]
    assert label_problems(good) == []
    bad = good.clone()
    bad[0] = 1.3  # stretch the rotation
    assert any("not orthonormal" in p for p in label_problems(bad))
    refl = good.clone()
    refl[0] = -1.0  # det -1
    assert any("determinant -1" in p for p in label_problems(refl))
    unnorm = good.clone()
    unnorm[16] = unnorm[20] = 2985.29  # pixel focal, not normalised
    assert any("normalised" in p for p in label_problems(unnorm))
    nan = good.clone()
    nan[5] = float("nan")
    assert label_problems(nan) == ["label contains NaN or infinite values"]
    far = good.clone()
    far[11] = 1e6
    assert any("distance" in p for p in label_problems(far))
    with pytest.raises(CameraError, match="invalid camera label"):
        check_label(np.asarray(bad))


def test_batch_operations_equal_the_label_arithmetic_they_replace():
    labels = get_prior("synthetic_heads").sample(6, torch.Generator().manual_seed(3)).to_label().float()
    cams = Cameras.from_label(labels)
    assert [c.to_label().tolist() for c in cams.split(4)] == [s.tolist() for s in labels.split(4)]
    assert torch.equal(Cameras.cat([cams[:2], cams[4:]]).to_label(), torch.cat([labels[:2], labels[4:]]))
    assert torch.equal(cams.roll(1).to_label(), torch.roll(labels, 1, 0))
    mask = torch.tensor([True, False, True, True, False, False])
    mirrored = cams.mirror()
    assert torch.equal(mirrored.where(mask, cams).to_label(),
                       torch.where(mask[:, None], mirrored.to_label(), labels))
    entries = ((2, 0), (0, 1), (0, 2), (0, 3))
    sign = torch.ones(4, 4)
    for i, j in entries:
        sign[i, j] = -1.0
    old = torch.cat([(labels[:, :16].reshape(-1, 4, 4) * sign).reshape(-1, 16), labels[:, 16:]], dim=1)
    assert torch.equal(cams.negate_entries(entries).to_label(), old)
    assert torch.equal(cams.negate_entries(entries).negate_entries(entries).to_label(), labels)


def test_generate_view_and_orbit_cameras_are_eg3d_poses_around_the_pivot():
    from types import SimpleNamespace

    from gan3dkit.generate.video import orbit_cameras
    from gan3dkit.generate.views import view_cameras

    pivot = (0.0, 0.0, 0.2)
    G = SimpleNamespace(config=SimpleNamespace(rendering=SimpleNamespace(
        avg_camera_radius=2.7, avg_camera_pivot=pivot, focal=4.2647)))  # fmt: skip
    views = view_cameras(G, [0.4, 0.0, -0.4], -0.2, "cpu")  # type: ignore[arg-type]
    assert isinstance(views, Cameras) and len(views) == 3 and views.cam2world.dtype == torch.float32
    to_pivot = torch.tensor(pivot) - views.origins
    torch.testing.assert_close(views.forward, to_pivot / to_pivot.norm(dim=1, keepdim=True))
    torch.testing.assert_close(views.focal, torch.full((3, 2), 4.2647))
    torch.testing.assert_close(views.principal_point, torch.full((3, 2), 0.5))
    ypr = cam2world_to_ypr(views.cam2world.double(), (0.0, 0.0, 0.0))
    torch.testing.assert_close(ypr[:, 0], torch.tensor([0.4, 0.0, -0.4], dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(ypr[:, 1], ypr[:1, 1].expand(3), atol=1e-6, rtol=0)  # one pitch for every yaw
    orbit = orbit_cameras(G, 4, "cpu")  # type: ignore[arg-type]
    assert isinstance(orbit, Cameras) and len(orbit) == 4  # t = 0, 1/4: (yaw 0, pitch 0.2), (yaw 0.35, pitch -0.05)
    torch.testing.assert_close(orbit[0].to_label(), view_cameras(G, [0.0], 0.2, "cpu").to_label())  # type: ignore[arg-type]
    torch.testing.assert_close(orbit[1].to_label(), view_cameras(G, [0.35], -0.05, "cpu").to_label())  # type: ignore[arg-type]
