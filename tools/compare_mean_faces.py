"""Head poses with the shipped mean face (mediapipe68) vs insightface's meanshape68 (and bfm5) on real test photos.

Photos come from installed packages (skimage astronaut, matplotlib grace_hopper, insightface's Tom_Hanks and t1.jpg
faces when insightface is installed), each also mirrored. For each face and landmark backend it prints the orbit
(yaw, pitch, roll) in degrees per mean shape, the angle between the two cameras' rotations, and the largest change of
any of the 25 label numbers. `--synthetic` adds known-pose round trips across shapes: landmarks projected from one
mean face, solved against the other. Used for the figures in docs/preprocessing.md.

    OMP_NUM_THREADS=1 python3 tools/compare_mean_faces.py [--backends dlib,mediapipe] [--synthetic] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch

from gan3dkit.cameras import Cameras, cam2world_to_ypr, ypr_to_cam2world
from gan3dkit.prepare.faces.align import crop_box
from gan3dkit.prepare.faces.backends import load_backend
from gan3dkit.prepare.faces.pose import camera_from_head_rotation, mean_shape, solve_head_pose

D = np.diag([1.0, -1.0, -1.0])


def ypr_deg(label: np.ndarray) -> np.ndarray:
    return torch.rad2deg(cam2world_to_ypr(Cameras.from_label(torch.as_tensor(label)).cam2world))[0].numpy()


def rot_angle(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1)))


def photos() -> list[tuple[str, np.ndarray]]:
    from PIL import Image

    out = []
    if find_spec("skimage"):
        from skimage import data
        out.append(("astronaut", data.astronaut()))
    if find_spec("matplotlib"):
        from matplotlib import cbook
        with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
            out.append(("grace_hopper", np.asarray(im.convert("RGB"))))
    spec = find_spec("insightface")
    if spec and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations))) / "data" / "images"
        for name in ("Tom_Hanks_54745.png", "t1.jpg"):
            if (root / name).exists():
                with Image.open(root / name) as im:
                    out.append((name.split(".")[0], np.asarray(im.convert("RGB"))))
    return out


def faces_of(backend, locator, name: str, photo: np.ndarray):
    """(label, face, image) per face: the group photo t1 gives one window per face `locator` (dlib) finds there, as
    in the tests (mediapipe's short-range detector misses its small faces), numbered left to right."""
    if name != "t1":
        faces = backend.detect(np.ascontiguousarray(photo))
        return [(name, max(faces, key=lambda f: f.area), photo)] if faces else []
    out = []
    h, w = photo.shape[:2]
    for k, face in enumerate(sorted(locator.detect(photo), key=lambda f: f.box[0])):
        x0, y0, x1, y1 = (int(v) for v in face.box)
        pad = x1 - x0
        sub = np.ascontiguousarray(photo[max(0, y0 - pad):min(h, y1 + pad), max(0, x0 - pad):min(w, x1 + pad)])
        found = backend.detect(sub)
        if found:
            out.append((f"t1#{k}", max(found, key=lambda f: f.area), sub))
    return out


def pose(face, photo: np.ndarray, shape):
    crop = crop_box(face.lm5, photo.shape[1], photo.shape[0])
    pts2d, pts3d = shape.correspondences(face)
    p = solve_head_pose(crop.to_crop(pts2d), pts3d, 512)
    return p, camera_from_head_rotation(p.rotation)


def compare_photos(backends: list[str], shapes: list[str]) -> list[dict]:
    rows = []
    pics = photos()
    locator = load_backend("dlib")
    for bname in backends:
        backend = locator if bname == "dlib" else load_backend(bname)
        for name, photo in pics:
            for flip in (False, True):
                img = np.ascontiguousarray(photo[:, ::-1]) if flip else photo
                for label, face, sub in faces_of(backend, locator, name, img):
                    row = {"backend": bname, "photo": label + (" (flipped)" if flip else "")}
                    poses = {s: pose(face, sub, mean_shape(s)) for s in shapes}
                    for s, (p, lab) in poses.items():
                        row[s] = {"ypr": ypr_deg(lab).round(2).tolist(), "error_px": round(p.error_px, 2)}
                    (pa, la), (pb, lb) = poses[shapes[0]], poses[shapes[1]]
                    row["rotation_diff_deg"] = round(rot_angle(pa.rotation, pb.rotation), 2)
                    row["ypr_diff_deg"] = (ypr_deg(la) - ypr_deg(lb)).round(2).tolist()
                    row["label_max_abs_diff"] = float(np.abs(la - lb).max().round(4))
                    rows.append(row)
                    print(f"{bname:9s} {row['photo']:22s} " + "  ".join(
                        f"{s}: ypr {np.round(row[s]['ypr'], 1)} err {row[s]['error_px']:.1f}px" for s in shapes)
                        + f"  | d(ypr) {np.round(row['ypr_diff_deg'], 1)} rot {row['rotation_diff_deg']:.2f} deg"
                        f" label {row['label_max_abs_diff']:.3f}")
    return rows


def synthetic(shapes: list[str]) -> list[dict]:
    """Landmarks projected exactly from shape `src` at a known orbit pose, solved against shape `dst`."""
    rows = []
    grid = [(y, p, r) for y in (-40.0, -20.0, 0.0, 20.0, 40.0) for p in (-15.0, 0.0, 15.0) for r in (-10.0, 0.0, 10.0)]
    for src in shapes[:2]:
        for dst in shapes[:2]:
            a, b = mean_shape(src), mean_shape(dst)
            errs = []
            for ypr in grid:
                yaw, pitch, roll = (torch.tensor([math.radians(v)], dtype=torch.float64) for v in ypr)
                c2w = ypr_to_cam2world(yaw, pitch, roll, radius=2.7)[0].numpy()
                rot = c2w[:3, :3].T @ D
                scale = 0.3 / np.ptp(a.points[:, 0])  # face 0.3 units wide at distance 2.7, as in EG3D's crops
                cam = (rot @ (a.points * scale).T).T + np.array([0.0, 0.0, 2.7])
                pts = cam[:, :2] / cam[:, 2:] * 4.2647 * 512 + 256 - 0.5
                p = solve_head_pose(pts, b.points, 512)
                errs.append(ypr_deg(camera_from_head_rotation(p.rotation)) - np.array(ypr))
            errs = np.array(errs)
            row = {"projected_from": src, "solved_with": dst, "poses": len(grid),
                   "mean_ypr_error_deg": errs.mean(0).round(2).tolist(),
                   "max_abs_ypr_error_deg": np.abs(errs).max(0).round(2).tolist()}
            rows.append(row)
            print(f"synthetic: projected from {src:11s} solved with {dst:11s}: mean ypr error "
                  f"{row['mean_ypr_error_deg']} max |error| {row['max_abs_ypr_error_deg']} over {len(grid)} poses")
    return rows


def synthetic_heads(shapes: list[str], heads: int = 4, resolution: int = 256) -> list[dict]:
    """gan3dkit's procedural heads rendered at known orbit poses, mediapipe landmarks (dlib finds no face on them),
    PnP with each shape: error of (yaw, pitch, roll) against the true camera, and the yaw gain (fitted slope)."""
    from gan3dkit.prepare.synthetic import render_batch, sample_params

    grid = [(y, p) for y in (-30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0) for p in (-10.0, 0.0, 10.0)]
    params = sample_params("heads", heads, torch.Generator().manual_seed(0))
    backend = load_backend("mediapipe")
    k = torch.tensor([4.2647, 0, 0.5, 0, 4.2647, 0.5, 0, 0, 1.0])
    truth, est = [], {s: [] for s in shapes}
    for h in range(heads):
        yaw, pitch = (torch.tensor([math.radians(g[i]) for g in grid], dtype=torch.float64) for i in (0, 1))
        c2w = ypr_to_cam2world(yaw, pitch, torch.zeros_like(yaw), radius=2.7)
        cams = Cameras.from_label(torch.cat([c2w.reshape(-1, 16), k.expand(len(grid), 9).double()], 1).float())
        images = render_batch("heads", params[h:h + 1].expand(len(grid), -1), cams, resolution)["image"].numpy()
        for g, img in zip(grid, images, strict=False):
            faces = backend.detect(img)
            if not faces:
                continue
            face = max(faces, key=lambda f: f.area)
            truth.append((*g, 0.0))
            for s in shapes:
                est[s].append(ypr_deg(pose(face, img, mean_shape(s))[1]))
    truth = np.array(truth)
    rows = []
    for s in shapes:
        e = np.array(est[s]) - truth
        gain = float(np.polyfit(truth[:, 0], np.array(est[s])[:, 0], 1)[0])
        rows.append({"shape": s, "views": len(truth), "of": heads * len(grid),
                     "mean_ypr_error_deg": e.mean(0).round(2).tolist(),
                     "mean_abs_ypr_error_deg": np.abs(e).mean(0).round(2).tolist(), "yaw_gain": round(gain, 3)})
        print(f"synthetic heads ({len(truth)}/{heads * len(grid)} views found), {s:11s}: "
              f"mean error {rows[-1]['mean_ypr_error_deg']} mean |error| {rows[-1]['mean_abs_ypr_error_deg']} "
              f"yaw gain {gain:.3f}")
    a, b = (np.array(est[s]) for s in shapes[:2])
    diff = np.abs(a - b)
    print(f"synthetic heads: |{shapes[0]} - {shapes[1]}| mean {diff.mean(0).round(2)} max {diff.max(0).round(2)}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="dlib,mediapipe")
    parser.add_argument("--shapes", default="mediapipe68,meanshape68,bfm5", help="the first two are compared")
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--heads", action="store_true", help="gan3dkit's synthetic heads at known poses (mediapipe)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    shapes = args.shapes.split(",")
    report = {"photos": compare_photos([b for b in args.backends.split(",") if b], shapes)}
    if args.synthetic:
        report["synthetic"] = synthetic(shapes)
    if args.heads:
        report["synthetic_heads"] = synthetic_heads(shapes)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
