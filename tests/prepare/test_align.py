"""EG3D's face crop: geometry against a literal re-run of the Deep3DFaceRecon/EG3D chain, and eyes on real photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gan3dkit.prepare.faces.align import (
    LM3D_STD,
    CropSpec,
    crop_box,
    five_from_68,
    pos_fit,
    template_eye_positions,
    warp_crop,
)


def eg3d_chain(image: np.ndarray, lm5: np.ndarray, spec: CropSpec | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The crop as EG3D computes it, step by step (Deep3DFaceRecon `align_img(target 1024, rescale 300)` with PIL
    BICUBIC, then `crop_images.py`: centre crop 700, LANCZOS to 512), and its landmark formula. Written from the
    published algorithm for the test: an independent check of the one-step implementation."""
    spec = spec or CropSpec()
    pil = Image.fromarray(image)
    w0, h0 = pil.size
    lm = np.asarray(lm5, dtype=np.float64).copy()
    lm[:, 1] = h0 - 1 - lm[:, 1]
    n = len(lm)
    a = np.zeros((2 * n, 8))
    a[0::2, 0:3], a[0::2, 3], a[1::2, 4:7], a[1::2, 7] = LM3D_STD, 1, LM3D_STD, 1
    k = np.linalg.lstsq(a, lm.reshape(-1), rcond=None)[0]
    t = np.array([k[3], k[7]])
    s = spec.rescale_factor / ((np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2)
    size = spec.target_size
    w, h = int(w0 * s), int(h0 * s)
    left = int(w / 2 - size / 2 + float((t[0] - w0 / 2) * s))
    up = int(h / 2 - size / 2 + float((h0 / 2 - t[1]) * s))
    big = pil.resize((w, h), resample=Image.BICUBIC).crop((left, up, left + size, up + size))
    lm_big = np.stack([lm[:, 0] - t[0] + w0 / 2, lm[:, 1] - t[1] + h0 / 2], axis=1) * s
    lm_big -= np.array([w / 2 - size / 2, h / 2 - size / 2])
    lm_big[:, 1] = size - 1 - lm_big[:, 1]  # back to y down
    c0 = int(size / 2 - spec.center_crop / 2)
    out = big.crop((c0, c0, c0 + spec.center_crop, c0 + spec.center_crop))
    out = out.resize((spec.output_size, spec.output_size), resample=Image.LANCZOS)
    return np.asarray(out), (lm_big - c0) * spec.output_size / spec.center_crop


def template_landmarks(scale: float, angle: float, shift: tuple[float, float], height: int) -> np.ndarray:
    """The 5-point template seen frontally, rotated in the image plane, scaled and moved: [5, 2], y down."""
    c, s = np.cos(angle), np.sin(angle)
    xy = LM3D_STD[:, :2] @ np.array([[c, s], [-s, c]]) * scale + np.array(shift)
    return np.stack([xy[:, 0], height - 1 - xy[:, 1]], axis=1)


def test_pos_fit_recovers_scale_and_translation():
    pts = LM3D_STD[:, :2] * 123.0 + np.array([40.0, -7.0])
    t, s = pos_fit(pts, LM3D_STD)
    assert s == pytest.approx(123.0, rel=1e-6)
    np.testing.assert_allclose(t, [40.0, -7.0], atol=1e-6)


def test_five_points_from_68_are_deep3d_order():
    lm68 = np.arange(136, dtype=np.float64).reshape(68, 2)
    five = five_from_68(lm68)
    np.testing.assert_allclose(five[0], (lm68[36] + lm68[39]) / 2)
    np.testing.assert_allclose(five[1], (lm68[42] + lm68[45]) / 2)
    np.testing.assert_allclose(five[2:], lm68[[30, 48, 54]])


@pytest.mark.parametrize("resolution", [512, 256])
def test_exact_template_face_puts_eyes_on_template_positions(resolution):
    spec = CropSpec(output_size=resolution)
    expected = template_eye_positions(spec)
    if resolution == 512:
        np.testing.assert_allclose(expected, [[187.15, 191.79], [323.48, 191.93]], atol=0.02)
    for scale, shift, (w, h) in [(90.0, (300.0, 260.0), (640, 480)), (400.0, (900.0, 700.0), (1600, 1200))]:
        lm5 = template_landmarks(scale, 0.0, shift, h)
        crop = crop_box(lm5, w, h, spec)
        eyes = crop.to_crop(lm5[:2])
        # 1 px: the photo's H - 1 flip and pixel-centre conventions move points by up to a source pixel
        np.testing.assert_allclose(eyes, expected, atol=1.0 + 0.5 * crop.upscale)


@pytest.mark.parametrize("scale,angle,shift,size", [
    (80.0, 0.0, (200.0, 150.0), (400, 300)),
    (150.0, 0.2, (130.0, 420.0), (517, 613)),  # face near the edge: the crop leaves the photo (black fill)
    (300.0, -0.35, (701.3, 455.7), (1283, 977)),  # shrinking crop
])
def test_one_step_crop_matches_literal_eg3d_chain(scale, angle, shift, size):
    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([(xx * 0.7 + yy * 0.3) % 256, (yy * 1.3) % 256, (xx * 0.2 + 90) % 256], -1)
    image = np.clip(smooth + rng.normal(0, 3, smooth.shape), 0, 255).astype(np.uint8)
    lm5 = template_landmarks(scale, angle, shift, h) + rng.normal(0, 1.5, (5, 2))
    ref_img, ref_lm = eg3d_chain(image, lm5)
    crop = crop_box(lm5, w, h)
    ours = warp_crop(image, crop)
    assert ours.shape == ref_img.shape == (512, 512, 3)
    np.testing.assert_allclose(crop.to_crop(lm5), ref_lm, atol=1.0)
    diff = np.abs(ours.astype(np.float64) - ref_img.astype(np.float64))
    assert np.median(diff) <= 3.0 and diff.mean() < 6.0, (np.median(diff), diff.mean())


def test_real_photos_eyes_land_where_eg3d_puts_them(dlib_backend, astronaut, grace_hopper):
    """Crop real photos, find the eyes again in the 512 crop, compare with EG3D's chain (within a few pixels)."""
    for photo in (astronaut, grace_hopper):
        face = max(dlib_backend.detect(photo), key=lambda f: f.area)
        crop = crop_box(face.lm5, photo.shape[1], photo.shape[0])
        ours = warp_crop(photo, crop)
        ref_img, ref_lm = eg3d_chain(photo, face.lm5)
        predicted = crop.to_crop(face.lm5[:2])
        # EG3D's landmark formula ignores pixel centres: it differs from the exact mapping by ~s/2 source pixels
        np.testing.assert_allclose(predicted, ref_lm[:2], atol=1.0 + 0.5 * crop.upscale)
        again = max(dlib_backend.detect(ours), key=lambda f: f.area)
        err = np.linalg.norm(again.lm5[:2] - predicted, axis=1)
        formula = np.linalg.norm(again.lm5[:2] - ref_lm[:2], axis=1).round(2)
        print("eye error (px at 512):", err.round(2), "vs EG3D formula:", formula)
        assert err.max() < 5.0 and err.mean() < 3.0, err
        # and near the template's eye positions (the affine fit trades eyes against nose and mouth)
        assert np.abs(again.lm5[:2] - template_eye_positions()).max() < 30.0
        assert np.abs(ours.astype(int) - ref_img.astype(int)).mean() < 4.0
