"""The viewer without a browser: camera mapping, frames equal to the generator's render, sources, exports, follow."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gan3dkit.cameras.camera import Cameras
from gan3dkit.generate.loading import load_generator
from gan3dkit.generate.views import seed_latent, view_cameras
from gan3dkit.render import ray_bundle
from gan3dkit.utils.visual import to_uint8_hwc
from gan3dkit.view.camera import (
    BrowserView,
    label_from_view,
    pad_to_aspect,
    pose_from_label,
    square_focal,
    yaw_pitch_radius,
)
from gan3dkit.view.render import FrameRenderer, ViewSettings
from gan3dkit.view.sources import open_source

CPU = torch.device("cpu")


def browser_view_of(label: torch.Tensor, width: int = 800, height: int = 800) -> BrowserView:
    """What viser reports for a tab whose camera sits at the EG3D `label` (square canvas: fov from the focal)."""
    from viser import transforms as tf

    cams = Cameras.from_label(label.double())
    wxyz = tuple(tf.SO3.from_matrix(cams.rotations[0].numpy()).wxyz)
    fov = 2 * math.atan(0.5 / float(cams.focal[0, 1]))
    return BrowserView(wxyz, tuple(cams.origins[0].tolist()), fov, width, height)


@pytest.fixture(scope="module")
def G(tiny_ckpt):
    return load_generator(tiny_ckpt)[0]


@pytest.mark.parametrize("yaw,pitch", [(0.0, 0.0), (0.4, -0.2), (-0.7, 0.3)])
def test_browser_camera_is_the_eg3d_camera(G, yaw, pitch):
    label = view_cameras(G, [yaw], pitch, CPU).to_label()
    view = browser_view_of(label)
    assert torch.allclose(label_from_view(view), label, atol=1e-5)
    y, p, r = yaw_pitch_radius(view, G.config.rendering.avg_camera_pivot)
    assert (y, p) == pytest.approx((yaw, pitch), abs=1e-5)
    assert r == pytest.approx(G.config.rendering.avg_camera_radius, rel=1e-5)
    pose = pose_from_label(label, G.config.rendering.avg_camera_pivot)  # back: the browser pose looks at the pivot
    assert np.allclose(pose.look_at, G.config.rendering.avg_camera_pivot, atol=1e-5)
    assert pose.fov == pytest.approx(view.fov)


def test_canvas_shape_sets_the_square_and_its_focal():
    assert square_focal(0.5, 2.0) == pytest.approx(0.5 / math.tan(0.25))  # wide: the square is as tall as the canvas
    assert square_focal(0.5, 0.5) == pytest.approx(2 * 0.5 / math.tan(0.25))  # tall: as wide; FOV covers 2x its side
    img = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    wide, tall = pad_to_aspect(img, 2.0), pad_to_aspect(img, 0.5)
    assert wide.shape == (4, 8, 3) and np.array_equal(wide[:, 2:6], img) and not wide[:, :2].any()
    assert tall.shape == (8, 4, 3) and np.array_equal(tall[2:6], img)
    assert pad_to_aspect(img, 1.0) is img
    pair = np.ones((4, 8, 3), np.uint8)  # before | after, side by side: never cropped, only padded
    assert pad_to_aspect(pair, 3.0).shape == (4, 12, 3) and pad_to_aspect(pair, 1.5).shape == (5, 8, 3)


def test_frame_is_the_generators_render(tiny_ckpt, G):
    """A still frame = G.synthesis of the seed's w (frontal conditioning) at that camera, constant noise and
    deterministic samples; the moving (coarse) frame is the same render at the lower resolution."""
    frames = FrameRenderer(open_source(tiny_ckpt))
    label = view_cameras(G, [0.4], -0.2, CPU).to_label()
    s = ViewSettings(seed=3, psi=0.7)
    ws = G.mapping(seed_latent(G, 3), view_cameras(G, [0.0], 0.0, CPU).to_label(), truncation_psi=0.7)
    for nrr in (16, 32):
        ref = G.synthesis(ws, label, neural_rendering_resolution=nrr, noise_mode="const", deterministic_render=True)
        frame = frames.render(s, label, nrr)
        want = to_uint8_hwc(ref["image"][0])
        assert np.array_equal(frame.image, want)
        assert np.allclose(frame.depth, ref["image_depth"][0, 0].numpy())
    other = frames.render(ViewSettings(seed=4, psi=0.7), label)
    assert np.abs(other.image.astype(int) - frame.image.astype(int)).mean() > 1  # another seed, another picture
    raw = frames.render(ViewSettings(seed=3, psi=0.7, mode="raw"), label)
    assert np.array_equal(raw.image, to_uint8_hwc(ref["image_raw"][0]))  # the raw render at NRR 32


def test_render_camera_conditioning_and_samples(tiny_ckpt, G):
    src = open_source(tiny_ckpt)
    seen, mapping = [], src.G.mapping

    def spy(z, c, **kwargs):  # the camera each latent is mapped with
        seen.append(c.clone())
        return mapping(z, c, **kwargs)

    src.G.mapping = spy
    frames = FrameRenderer(src)
    label = view_cameras(G, [0.5], 0.0, CPU).to_label()
    a = frames.render(ViewSettings(seed=1), label).image
    assert torch.equal(seen[-1], view_cameras(G, [0.0], 0.0, CPU).to_label())  # frontal conditioning
    b = frames.render(ViewSettings(seed=1, conditioning="render"), label).image
    assert torch.equal(seen[-1], label)  # EG3D's entangle: conditioned on the render camera
    # The tiny preset is trained without pose conditioning (c_gen_conditioning_zero): both cameras give one picture.
    assert np.array_equal(a, b)
    few = frames.render(ViewSettings(seed=1, samples=4), label)
    ws = G.mapping(seed_latent(G, 1), view_cameras(G, [0.0], 0.0, CPU).to_label())
    planes = G.synthesize_planes(ws, noise_mode="const")
    rays = ray_bundle(Cameras.from_label(label), 32)
    ref = G.renderer(planes, G.decoder, *rays, deterministic=True, depth_resolution=4, depth_resolution_importance=4)
    assert np.allclose(few.depth, ref.depth[0, :, 0].reshape(32, 32).numpy(), atol=1e-5)


def test_normals_of_a_plane_face_the_camera():
    from gan3dkit.view.render import normals_from_depth

    label = Cameras.from_matrices(torch.eye(4)[None], 1.0).to_label()  # camera at 0 looking down +z
    r = 16
    u = (torch.arange(r) + 0.5) / r - 0.5
    dirs = torch.stack(torch.meshgrid(u, u, indexing="xy") + (torch.ones(r, r),), -1)
    depth = 2.0 * dirs.norm(dim=-1)  # the plane z = 2, as ray distances
    n = normals_from_depth(label, depth).astype(int)
    assert np.abs(n - np.array([128, 128, 255])).max() <= 1  # facing the viewer: the normal-map blue


def test_ganspace_edit_moves_the_picture(tiny_ckpt, G):
    from gan3dkit.edit import GanSpaceConfig, compute_ganspace

    gs = compute_ganspace(G, GanSpaceConfig(num_samples=256, batch=256))
    frames = FrameRenderer(open_source(tiny_ckpt), gs)
    label = view_cameras(G, [0.0], 0.0, CPU).to_label()
    base = frames.render(ViewSettings(seed=2), label).image.astype(int)
    edited = frames.render(ViewSettings(seed=2, edits=((0, 3.0, 0, G.num_ws),)), label).image.astype(int)
    early = frames.render(ViewSettings(seed=2, edits=((0, 3.0, 0, 1),)), label).image.astype(int)
    assert np.abs(edited - base).mean() > 0.5
    assert np.abs(early - base).mean() > 0 and not np.array_equal(early, edited)  # the layer range matters


def test_inversion_before_after_and_photo(tiny_ckpt, inversion_dir):
    src = open_source(inversion_dir)
    assert src.kind == "inversion" and src.tuned is not None and src.photo.shape == (64, 64, 3)
    assert src.photo[..., 0].min() == 200  # the first tile of reconstruction.png
    frames = FrameRenderer(src)
    tuned = frames.render(ViewSettings(panel="tuned"), src.camera).image
    before = frames.render(ViewSettings(panel="projected"), src.camera).image
    both = frames.render(ViewSettings(panel="both"), src.camera).image
    assert both.shape == (64, 128, 3) and np.array_equal(both[:, :64], tuned) and np.array_equal(both[:, 64:], before)
    assert not np.array_equal(tuned, before)  # the tuned SR differs
    ws = torch.from_numpy(np.load(inversion_dir / "w.npy")).expand(1, src.G.num_ws, -1)
    ref = src.G.synthesis(ws, src.camera, noise_mode="const", deterministic_render=True, neural_rendering_resolution=32)
    assert np.array_equal(before, to_uint8_hwc(ref["image"][0]))


def test_triplane_file_renders_like_the_generator(tiny_ckpt, G, tmp_path):
    from safetensors.torch import save_file

    ws = G.mapping(seed_latent(G, 7), view_cameras(G, [0.0], 0.0, CPU).to_label())
    planes = G.synthesize_planes(ws, noise_mode="const")
    cam = view_cameras(G, [0.2], 0.0, CPU).to_label()
    path = tmp_path / "x_triplane.safetensors"
    save_file({"planes": planes.contiguous(), "camera": cam, "ws": ws.contiguous()}, str(path))
    src = open_source(path, ckpt=tiny_ckpt)
    assert src.kind == "triplane"
    a = FrameRenderer(src).render(ViewSettings(seed=0), cam).image
    b = FrameRenderer(open_source(tiny_ckpt)).render(ViewSettings(seed=7), cam).image
    assert np.array_equal(a, b)


def test_exports(tiny_ckpt, G, tmp_path):
    from gan3dkit.view.exports import run_export

    frames = FrameRenderer(open_source(tiny_ckpt))
    s, label = ViewSettings(seed=2, psi=0.5, mode="depth"), view_cameras(G, [0.3], 0.0, CPU).to_label()
    png = run_export("png", frames, s, label, tmp_path)[0]
    from PIL import Image

    assert png.name == "seed0002_psi0p5_depth.png"
    assert np.array_equal(np.asarray(Image.open(png)), frames.render(s, label).image)
    depth = run_export("depth", frames, s, label, tmp_path)[0]
    assert np.allclose(np.load(depth), frames.render(s, label).depth)
    mesh = run_export("mesh", frames, s, label, tmp_path)[0]
    head = mesh.read_bytes()[:200].decode("latin1")
    assert head.startswith("ply") and int(head.split("element vertex ")[1].split()[0]) > 0
    videos = run_export("video", frames, s, label, tmp_path)
    gif = Image.open(videos[0])
    assert videos[0].suffix == ".gif" and gif.n_frames == 48
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes left no litter


def test_dollied_camera_still_sees_the_model(tiny_ckpt, G):
    """EG3D's near/far are distances from the camera: the viewer moves them with the camera's distance from the
    pivot, so a camera twice as far (with twice the focal: the same framing) sees the same surface, farther away."""
    frames = FrameRenderer(open_source(tiny_ckpt))
    near = view_cameras(G, [0.0], 0.0, CPU).to_label()
    cams = Cameras.from_label(near)
    pivot = torch.tensor(G.config.rendering.avg_camera_pivot)
    c2w = cams.cam2world.clone()
    c2w[0, :3, 3] = pivot + 2 * (c2w[0, :3, 3] - pivot)
    far = Cameras.from_matrices(c2w, 2 * float(cams.focal[0, 0])).to_label()
    a, b = frames.render(ViewSettings(seed=1), near), frames.render(ViewSettings(seed=1), far)
    shift = G.config.rendering.avg_camera_radius
    assert np.abs((b.depth - a.depth)[15:17, 15:17] - shift).max() < 0.05
    assert np.abs(b.image.astype(int) - a.image.astype(int)).mean() < 8  # nearly the same picture


def test_a_frame_at_cameras_equals_the_frame_at_its_label(tiny_ckpt, G):
    """The viewer renders the browser's camera as `Cameras` (decoded once); a label (a saved camera file, the old
    API) gives the same frame bit for bit, in every mode that reads the camera."""
    frames = FrameRenderer(open_source(tiny_ckpt))
    cams = view_cameras(G, [0.3], -0.1, CPU)
    for mode, conditioning in (("rgb", "frontal"), ("normals", "frontal"), ("rgb", "render")):
        s = ViewSettings(seed=2, mode=mode, conditioning=conditioning)
        a, b = frames.render(s, cams), frames.render(s, cams.to_label())
        assert np.array_equal(a.image, b.image) and np.array_equal(a.depth, b.depth)
