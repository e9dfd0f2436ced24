"""EG3D's FFHQ face crop: Deep3DFaceRecon's 5-point similarity alignment (1024 / 300), centre crop 700, resize."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

#: Deep3DFaceRecon's standard 5-point face (`lm3d_std`, from its `BFM/similarity_Lm3D_all.mat` via `load_lm3d`):
#: centres of the image-left and image-right eye (mean of the two corners), nose tip, left and right mouth corner.
#: Axes: x to the image right, y up, z toward the viewer; units are BFM decimetres. [5, 3]
LM3D_STD = np.array([[-0.31148657, 0.29036078, 0.13377953],
                     [0.30979887, 0.28972036, 0.13179526],
                     [0.0032535, -0.04617932, 0.55244243],
                     [-0.25216928, -0.38133916, 0.22405732],
                     [0.2484662, -0.38128236, 0.22235769]], dtype=np.float64)

#: iBUG-68 indices used for the 5 points: eye corners (averaged), nose tip, mouth corners.
EYE_CORNERS = ((36, 39), (42, 45))
NOSE_TIP, MOUTH_LEFT, MOUTH_RIGHT = 30, 48, 54


@dataclass(frozen=True)
class CropSpec:
    """The crop chain: align to `target_size` with `rescale_factor`, centre crop `center_crop`, resize to `output_size`.

    EG3D's FFHQ values are 1024 / 300 / 700 / 512 (reference eg3d.md §10.1); only `output_size` usually changes.
    """

    output_size: int = 512
    target_size: int = 1024
    rescale_factor: float = 300.0
    center_crop: int = 700

    def __post_init__(self) -> None:
        if not (self.output_size >= 8 and 0 < self.center_crop <= self.target_size and self.rescale_factor > 0):
            raise ValueError(f"invalid crop settings {self}")


@dataclass(frozen=True)
class FaceCrop:
    """Where the output square lies in the source photo.

    Attributes:
        box: (x0, y0, x1, y1) of the crop in source pixel-edge coordinates (pixel i covers [i, i + 1)); it may reach
            outside the photo (filled with black, as EG3D's PIL crop does).
        scale: Deep3DFaceRecon's image scale s = rescale_factor / s_pos (source -> 1024 alignment image).
        output_size: side of the output image in pixels.
    """

    box: tuple[float, float, float, float]
    scale: float
    output_size: int

    @property
    def upscale(self) -> float:
        """Output pixels per source pixel (> 1 means the face is enlarged)."""
        return self.output_size / max(self.box[2] - self.box[0], 1e-9)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Source pixel-index coordinates [N, 2] -> output pixel-index coordinates [N, 2]."""
        x0, y0, x1, y1 = self.box
        p = np.asarray(points, dtype=np.float64)
        sx, sy = self.output_size / (x1 - x0), self.output_size / (y1 - y0)
        return np.stack([(p[:, 0] + 0.5 - x0) * sx - 0.5, (p[:, 1] + 0.5 - y0) * sy - 0.5], axis=1)

    def to_dict(self) -> dict[str, float | list[float]]:
        return {"box": [float(v) for v in self.box], "scale": float(self.scale), "upscale": float(self.upscale)}


def five_from_68(lm68: np.ndarray) -> np.ndarray:
    """iBUG-68 landmarks [68, 2] -> the 5 alignment points [5, 2] (Deep3DFaceRecon's `extract_5p` order)."""
    lm68 = np.asarray(lm68, dtype=np.float64)
    eyes = [lm68[list(pair)].mean(axis=0) for pair in EYE_CORNERS]
    return np.stack([eyes[0], eyes[1], lm68[NOSE_TIP], lm68[MOUTH_LEFT], lm68[MOUTH_RIGHT]])


def pos_fit(points2d: np.ndarray, points3d: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares affine camera fit (Deep3DFaceRecon's POS): points2d [N, 2] ~ s * P(points3d [N, 3]) + t.

    Solves the 8-parameter system x = r1 . X + tx, y = r2 . X + ty; returns t [2] and s = (|r1| + |r2|) / 2.
    """
    n = points2d.shape[0]
    a = np.zeros((2 * n, 8))
    a[0::2, 0:3] = points3d
    a[0::2, 3] = 1.0
    a[1::2, 4:7] = points3d
    a[1::2, 7] = 1.0
    b = np.asarray(points2d, dtype=np.float64).reshape(-1)
    k = np.linalg.lstsq(a, b, rcond=None)[0]
    s = (np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2.0
    return np.array([k[3], k[7]]), float(s)


def crop_box(lm5: np.ndarray, width: int, height: int, spec: CropSpec = CropSpec()) -> FaceCrop:
    """The EG3D crop of a `width` x `height` photo whose 5 alignment points (pixel indices, y down) are `lm5` [5, 2].

    Follows Deep3DFaceRecon `align_img` / `resize_n_crop_img` and EG3D's `crop_images.py` step by step, integer
    truncations included: y is flipped to y-up as H - 1 - y; POS gives t, s; the photo is scaled by
    s' = rescale / s to (int(W s'), int(H s')); a target_size square starts at left = int(w/2 - T/2 + (tx - W/2) s'),
    up = int(h/2 - T/2 + (H/2 - ty) s'); its centre `center_crop` square starts at int(T/2 - C/2). The result is
    that square mapped back to the source, so one resampling step (`warp_crop`) replaces EG3D's two.
    """
    lm5 = np.asarray(lm5, dtype=np.float64).reshape(5, 2)
    if not np.isfinite(lm5).all():
        raise ValueError("landmarks contain NaN or inf")
    lm_up = np.stack([lm5[:, 0], height - 1 - lm5[:, 1]], axis=1)
    t, s_pos = pos_fit(lm_up, LM3D_STD)
    if not (s_pos > 0 and math.isfinite(s_pos)):
        raise ValueError("degenerate landmarks (zero scale)")
    scale = spec.rescale_factor / s_pos
    w, h = int(width * scale), int(height * scale)
    if w < 1 or h < 1:
        raise ValueError(f"face is too large for the photo (alignment scale {scale:.3g})")
    size = spec.target_size
    left = int(w / 2 - size / 2 + (t[0] - width / 2) * scale)
    up = int(h / 2 - size / 2 + (height / 2 - t[1]) * scale)
    inner = int(size / 2 - spec.center_crop / 2)
    rx, ry = left + inner, up + inner
    sx, sy = width / w, height / h  # resized -> source, per axis (int() makes them differ slightly)
    box = (rx * sx, ry * sy, (rx + spec.center_crop) * sx, (ry + spec.center_crop) * sy)
    return FaceCrop(box=box, scale=scale, output_size=spec.output_size)


def warp_crop(image: np.ndarray, crop: FaceCrop, resample: int = Image.Resampling.LANCZOS) -> np.ndarray:
    """Cut `crop.box` out of `image` (uint8 [H, W, C] or [H, W]) and resize it to the output size in one step.

    Outside the photo is black. Lanczos with PIL's box resize (antialiased when shrinking).
    """
    height, width = image.shape[:2]
    x0, y0, x1, y1 = crop.box
    margin = 4 + math.ceil(3.0 / min(crop.upscale, 1.0))  # filter support beyond the box sees black, not edge
    pad_l = max(0, margin - math.floor(x0))
    pad_t = max(0, margin - math.floor(y0))
    pad_r = max(0, math.ceil(x1) + margin - width)
    pad_b = max(0, math.ceil(y1) + margin - height)
    # Only the window around the box is needed: slice first, then pad (cheap for large photos).
    sx0, sy0 = max(0, math.floor(x0) - margin), max(0, math.floor(y0) - margin)
    sx1, sy1 = min(width, math.ceil(x1) + margin), min(height, math.ceil(y1) + margin)
    if sx1 <= sx0 or sy1 <= sy0:
        raise ValueError("the crop lies entirely outside the photo")
    window = image[sy0:sy1, sx0:sx1]
    pads = ((pad_t if sy0 == 0 else 0, pad_b if sy1 == height else 0),
            (pad_l if sx0 == 0 else 0, pad_r if sx1 == width else 0)) + ((0, 0),) * (image.ndim - 2)
    window = np.pad(window, pads)
    ox, oy = sx0 - pads[1][0], sy0 - pads[0][0]  # source coordinate of the window's (0, 0)
    box = (x0 - ox, y0 - oy, x1 - ox, y1 - oy)
    size = crop.output_size
    return np.asarray(Image.fromarray(window).resize((size, size), resample=resample, box=box))


def template_eye_positions(spec: CropSpec = CropSpec()) -> np.ndarray:
    """Where an exact fit puts the two eye centres in the output, pixel-index coordinates [2, 2] (x, y).

    In the target_size image the template origin sits at the centre and a template point X lands at
    (T/2 + rescale X_x, T/2 - rescale X_y); the centre crop and the resize follow. For 1024/300/700/512 the eyes land
    at about (187.6, 192.3) and (324.0, 192.4); the photo's H - 1 flip shifts y by up to one source pixel.
    """
    k = spec.output_size / spec.center_crop
    inner = int(spec.target_size / 2 - spec.center_crop / 2)
    eyes = LM3D_STD[:2]
    x = (spec.target_size / 2 + spec.rescale_factor * eyes[:, 0] - inner) * k - 0.5
    y = (spec.target_size / 2 - spec.rescale_factor * eyes[:, 1] - inner) * k - 0.5
    return np.stack([x, y], axis=1)
