"""The one list of pretrained files gan3dkit knows: name, what uses it, URL or page, sha256, size, licence; and the
cache operations behind `gan3dkit weights list|add|fetch`. A digest or size not known to the project is None and
shown as "unknown" (never made up)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..utils.files import atomic_output, atomic_write_bytes, sha256_file
from .weights import WeightSpec, cache_dir, check_sha256, fetch, package_file

#: ImageNet ResNet34 (LP3D's backbone init; Ko et al.'s P), used through `encoders.pretrained`.
RESNET34 = WeightSpec(
    "resnet34 (torchvision, ImageNet)",
    "resnet34-b627a593.pth",
    url="https://download.pytorch.org/models/resnet34-b627a593.pth",
    sha256="b627a593",
    hint="pass --backbone-weights PATH (torchvision resnet34-b627a593.pth)",
)

#: unsup3d's CelebA model (TriPlaneNet v2's confidence net: the netC of checkpoint030.pth), shipped inside a zip.
UNSUP3D_CELEBA = WeightSpec(
    "unsup3d CelebA (checkpoint030.pth, netC = ConfNet)",
    "unsup3d_celeba_checkpoint030.pth",
    hint="download https://www.robots.ox.ac.uk/~vgg/research/unsup3d/data/pretrained_celeba.zip, unzip it, then "
    "`gan3dkit weights add pretrained_celeba/checkpoint030.pth --name unsup3d-celeba` (or --set "
    "confidence_weights=PATH)",
)


@dataclass(frozen=True)
class Entry:
    spec: WeightSpec
    used_by: str
    licence: str = "unknown"
    size: int | None = None
    """Bytes, when known."""
    page: str | None = None
    """Where to download by hand when there is no direct URL (Google Drive folders of the releases)."""


def _released(name: str, filename: str, used_by: str, page: str, licence: str) -> Entry:
    hint = f"download {filename} from {page}, then run `gan3dkit weights add {filename}`"
    return Entry(WeightSpec(name, filename, hint=hint), used_by, licence, page=page)


def _entries() -> dict[str, Entry]:
    from .features import INCEPTION, VGG16_NV
    from .identity import ARCFACE
    from .perceptual import ALEXNET, DISTS_WEIGHTS, LPIPS_HEADS, VGG16

    tv = "BSD-3-Clause (torchvision)"
    ko_page = "https://drive.google.com/drive/folders/1HRSRRZLhWfQI3eBP3Fen-TcHeocj2GkE"
    ko_lic = "unknown (no licence file in cvlab-kaist/3DGAN-Inversion)"
    tpn_lic = "MIT (anantarb/triplanenet)"
    lp3d_page = "https://drive.google.com/drive/folders/1Z6uri8pH048Qzyhu0PE3llxO5EC7ic_v"
    lp3d_lic = "Apache-2.0 (Dong142857/Live3DPortrait)"
    lpips_lic = "BSD-2-Clause (richzhang/PerceptualSimilarity)"
    return {
        "resnet34": Entry(RESNET34, "LP3D backbone init (distill-encoder --arch lp3d*)", tv),
        "alexnet": Entry(ALEXNET, "LPIPS alex backbone (metrics, distill-encoder, PTI tuning)", tv),
        "vgg16": Entry(VGG16, "LPIPS vgg backbone (invert projector, warp loss), DISTS", tv),
        "lpips-alex": Entry(LPIPS_HEADS["alex"], "LPIPS alex linear heads", lpips_lic),
        "lpips-vgg": Entry(LPIPS_HEADS["vgg"], "LPIPS vgg linear heads", lpips_lic),
        "dists": Entry(DISTS_WEIGHTS, "DISTS metric"),
        "ir-se50": Entry(ARCFACE, "ArcFace IR-SE-50: identity loss (LP3D, TriPlaneNet), ID metric, TriPlaneNet/e4e "
                         "backbone init", "MIT (TreB1eN/InsightFace_Pytorch)",
                         page="https://drive.google.com/file/d/1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn/view"),
        "curricularface": _released("CurricularFace backbone", "CurricularFace_Backbone.pth",
                                    "TriPlaneNet's ID similarity metric",
                                    "https://drive.google.com/file/d/1f4IwVa2-Bn9vWLwB-bUwm53U_MlvinAj/view",
                                    "unknown"),
        "unsup3d-celeba": Entry(UNSUP3D_CELEBA, "TriPlaneNet v2's confidence net sigma (distill-encoder "
                                "--arch triplanenet-v2)", "MIT (elliottwu/unsup3d)",
                                page="https://github.com/elliottwu/unsup3d/blob/master/pretrained/"
                                "download_pretrained_celeba.sh"),
        "inception": Entry(INCEPTION, "FID / KID (evaluate)"),
        "vgg16-nvidia": Entry(VGG16_NV, "precision/recall features (evaluate)"),
        "eg3d-ffhq512-128": Entry(WeightSpec(
            "EG3D ffhq512-128.pkl", "ffhq512-128.pkl",
            url="https://api.ngc.nvidia.com/v2/models/nvidia/research/eg3d/versions/1/files/ffhq512-128.pkl",
            hint="then `gan3dkit convert eg3d-pkl`"), "generator (convert eg3d-pkl)",
            "NVIDIA Source Code License for EG3D (non-commercial)"),
        "triplanenet-v1": _released("TriPlaneNet v1 (EG3D inversion)", "triplanenet_v1.pt", "convert triplanenet",
                                    "https://drive.google.com/file/d/17pzNC00BOFCu0oCqbCybfAiaZF7iwNUU/view", tpn_lic),
        "triplanenet-v2": _released("TriPlaneNet v2 (EG3D inversion)", "triplanenet_v2.pt", "convert triplanenet",
                                    "https://drive.google.com/file/d/1Q7hGZw97nTmRyJ-itVGRaFJn9KyjAuhn/view", tpn_lic),
        "ko-pose-euler": _released("Ko et al. P (euler)", "pose_estimator.pt", "convert ko-pose", ko_page, ko_lic),
        "ko-pose-quat": _released("Ko et al. P (quaternion)", "pose_estimator_quat.pt", "convert ko-pose", ko_page,
                                  ko_lic),
        "ko-pose-afhq": _released("Ko et al. P (6D, AFHQ)", "pose_estimator_afhq.pt", "convert ko-pose", ko_page,
                                  ko_lic),
        "e4e-ffhq": _released("Ko et al. E (e4e, FFHQ)", "e4e_ffhq.pt", "convert e4e", ko_page, ko_lic),
        "e4e-afhq": _released("Ko et al. E (e4e, AFHQ)", "e4e_afhq.pt", "convert e4e", ko_page, ko_lic),
        "lp3d": _released("LP3D encoder + renderer (Live3DPortrait)", "encoder_render.pt", "convert lp3d", lp3d_page,
                          lp3d_lic),
        "lp3d-eg3d-ffhqrebalanced512-128": _released(
            "EG3D ffhqrebalanced512-128 (Live3DPortrait's G, torch.save of {G, D, ...})", "ffhqrebalanced512-128.pth",
            "convert state-dict --preset ffhq512 --nrr 128 (the --generator of convert lp3d)", lp3d_page,
            "NVIDIA Source Code License for EG3D (non-commercial)"),
    }  # fmt: skip


def registry() -> dict[str, Entry]:
    return _entries()


def get_entry(name: str) -> Entry:
    reg = registry()
    if name not in reg:
        raise ValueError(f"unknown weights {name!r}; `gan3dkit weights list` shows: {', '.join(reg)}")
    return reg[name]


def _cached(entry: Entry) -> Path:
    return cache_dir() / "weights" / entry.spec.filename


def status(name: str, entry: Entry, verify: bool = True) -> dict[str, Any]:
    """One row of `weights list`: the registry fields, whether the file is cached and whether it checks out."""
    spec, path = entry.spec, _cached(entry)
    row = {"name": name, "file": spec.filename, "used_by": entry.used_by, "url": spec.url or entry.page,
           "direct_download": bool(spec.url), "sha256": spec.sha256 or "unknown",
           "size": entry.size if entry.size is not None else "unknown", "licence": entry.licence,
           "cached": path.is_file(), "verified": None, "package": None}  # fmt: skip
    for package, relpath in spec.packages:
        if package_file(package, relpath) is not None:
            row["package"] = package  # found without the cache (checked against package_sha256 when used)
            break
    if row["cached"] and verify:
        recorded = path.parent / f"{path.name}.sha256"
        expected = spec.sha256 or (recorded.read_text().strip() if recorded.is_file() else None)
        if expected is None:
            row["verified"] = "no known digest"
        else:
            try:
                check_sha256(path, expected)
                row["verified"] = True if spec.sha256 else "matches the digest recorded when added (none known)"
            except ValueError:
                row["verified"] = False
    return row


def add(file: str | Path, name: str | None = None) -> dict[str, Any]:
    """Check ``file`` against the registry (by sha256, else by ``name`` / file name) and copy it into the cache."""
    file = Path(file)
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found")
    digest = sha256_file(file)
    reg = registry()
    by_digest = [k for k, e in reg.items() if e.spec.sha256 and digest.startswith(e.spec.sha256.lower())]
    if name is not None:
        entry = get_entry(name)
        if entry.spec.sha256 and name not in by_digest:
            raise ValueError(f"{file}: sha256 {digest} is not {name}'s ({entry.spec.sha256}); refusing to cache it")
        key = name
    elif by_digest:
        key = by_digest[0]
    else:
        named = [k for k, e in reg.items() if e.spec.filename == file.name]
        if not named:
            raise ValueError(f"{file}: sha256 {digest} and its name match no known weights; pass --name "
                             "(see `gan3dkit weights list`)")  # fmt: skip
        key = named[0]
        if reg[key].spec.sha256:
            raise ValueError(f"{file}: named like {key} but its sha256 {digest} is not {reg[key].spec.sha256}")
    entry = reg[key]
    dest = _cached(entry)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not entry.spec.sha256:  # unpinned: record the digest (before the file lands) so later loads are checked
        atomic_write_bytes(dest.parent / f"{dest.name}.sha256", (digest + "\n").encode())
    with atomic_output(dest) as tmp:  # the project's temp naming: a killed copy is removed by the next write
        shutil.copyfile(file, tmp)
    verified = "sha256 matches the registry" if entry.spec.sha256 else "no known digest: recorded, not verified"
    return {"name": key, "cached": str(dest), "sha256": digest, "verified": verified}


def fetch_entry(name: str) -> dict[str, Any]:
    """Download (or find in a package or the cache) and verify one registered file."""
    entry = get_entry(name)
    path = fetch(entry.spec)
    return {"name": name, "path": str(path), "sha256": sha256_file(path), **status(name, entry)}
