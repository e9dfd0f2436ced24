"""Regenerate gan3dkit/prepare/faces/data/mean_face_68.json from MediaPipe's canonical face model (Apache-2.0).

The 3D mean face used for PnP head pose is the 68 iBUG points picked from MediaPipe's canonical face mesh with the
same vertex table the mediapipe backend uses for its 2D points (`backends.MEDIAPIPE_TO_68`; two vertices are averaged
where the table names two). Get the mesh from MediaPipe's repository (it is not inside the mediapipe wheel):

    curl -LO https://raw.githubusercontent.com/google-ai-edge/mediapipe/v0.10.21/mediapipe/modules/face_geometry/data/canonical_face_model.obj
    python3 tools/make_mean_face.py canonical_face_model.obj          # writes the JSON (checks the file's sha256)
    python3 tools/make_mean_face.py canonical_face_model.obj --check  # exit 1 if the shipped JSON differs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from gan3dkit.prepare.faces.backends import MEDIAPIPE_TO_68

OUT = Path(__file__).resolve().parents[1] / "gan3dkit" / "prepare" / "faces" / "data" / "mean_face_68.json"
SOURCE = {
    "file": "mediapipe/modules/face_geometry/data/canonical_face_model.obj",
    "repository": "https://github.com/google-ai-edge/mediapipe",
    "tag": "v0.10.21",
    "url": "https://raw.githubusercontent.com/google-ai-edge/mediapipe/v0.10.21/"
           "mediapipe/modules/face_geometry/data/canonical_face_model.obj",
    "sha256": "8bac80443397e113f41a8b565ea72c59390bc031d9defab289dba7bc0c54e618",
    "licence": "Apache-2.0 (Copyright The MediaPipe Authors); see LICENSE-mediapipe.txt beside this file",
}
#: canonical-model frame (x to the image right, y up, z toward the viewer, centimetres) -> gan3dkit's PnP model frame
#: (x to the image right, y down, z into the head): p_model = diag(1, -1, -1) p_obj.
TO_MODEL = np.array([1.0, -1.0, -1.0])


def read_obj_vertices(path: Path) -> np.ndarray:
    """[N, 3] float64 vertices ('v x y z' lines) of a Wavefront OBJ file."""
    rows = [line.split()[1:4] for line in path.read_text().splitlines() if line.startswith("v ")]
    return np.asarray(rows, dtype=np.float64)


def mean_face(vertices: np.ndarray) -> np.ndarray:
    """[68, 3] iBUG-68 points in the model frame from the 468 canonical-mesh vertices."""
    pts = np.stack([vertices[list(MEDIAPIPE_TO_68[i])].mean(axis=0) for i in range(68)])
    return np.round(pts * TO_MODEL, 7) + 0.0  # + 0.0 turns -0.0 into 0.0


def document(points: np.ndarray) -> dict:
    return {
        "name": "mediapipe68",
        "description": "68-point (iBUG/dlib order) 3D mean face for PnP head pose, picked from MediaPipe's canonical "
                       "face model with gan3dkit's MediaPipe->iBUG-68 vertex table (two vertices averaged where "
                       "listed). Changes from the source: vertex selection/averaging and the axis flip below.",
        "frame": "x to the image right, y down, z into the head (frontal face: identity rotation); centimetres, "
                 "origin of the canonical model; p = diag(1, -1, -1) * canonical-model vertex",
        "source": SOURCE,
        "mapping_ibug68_to_mediapipe": [list(MEDIAPIPE_TO_68[i]) for i in range(68)],
        "mapping_source": "gan3dkit.prepare.faces.backends.MEDIAPIPE_TO_68 (based on Peizhi Yan's "
                          "Mediapipe_2_Dlib_Landmarks table, made mirror-symmetric)",
        "generator": "tools/make_mean_face.py",
        "points": points.tolist(),
    }


def dumps(doc: dict) -> str:
    """JSON with one line per key and one line per point / mapping row (diff-friendly)."""
    lines = []
    for key, value in doc.items():
        if isinstance(value, list):
            rows = ",\n  ".join(json.dumps(row) for row in value)
            lines.append(f' "{key}": [\n  {rows}\n ]')
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("obj", type=Path, help="canonical_face_model.obj from MediaPipe (see the module docstring)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="compare with the existing file instead of writing")
    args = parser.parse_args(argv)
    digest = hashlib.sha256(args.obj.read_bytes()).hexdigest()
    if digest != SOURCE["sha256"]:
        print(f"error: {args.obj} has sha256 {digest}, expected {SOURCE['sha256']} (MediaPipe v0.10.21)")
        return 1
    vertices = read_obj_vertices(args.obj)
    if vertices.shape != (468, 3):
        print(f"error: expected 468 vertices, found {vertices.shape[0]}")
        return 1
    doc = document(mean_face(vertices))
    text = dumps(doc)
    if args.check:
        same = args.out.exists() and json.loads(args.out.read_text()) == doc
        print(f"{args.out}: {'up to date' if same else 'DIFFERS'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out} (68 points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
