"""What `gan3dkit view` shows: a generator checkpoint, a training run, an `encode` tri-plane file or an `invert` folder.

Everything is read and checked here, before any server starts, so a wrong SOURCE is one line naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from torch import Tensor

from ..cameras import LABEL_DIM
from ..generate.loading import load_generator
from ..train.checkpoint import CheckpointError, read_header
from ..utils.errors import DataError, UsageError

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator
    from ..render import ImportanceRenderer, RenderingConfig

RUN_CHECKPOINT = "checkpoint.safetensors"
SOURCE_KINDS = ("generator", "run", "triplane", "inversion")


@dataclass
class PlaneRenderer:
    """The second half of rendering: volume renderer + decoder + super-resolution, and the SR's w when none is given
    (LP3D's learned constant)."""

    renderer: ImportanceRenderer
    decoder: torch.nn.Module
    superresolution: torch.nn.Module
    const_w: Tensor | None = None


@dataclass
class ViewSource:
    """A loaded SOURCE. `G` is the generator (for a tri-plane file: the one whose cameras and renderer apply);
    `planes` (tri-plane file) and `ws` (tri-plane file, inversion) are fixed ones that replace seeds."""

    kind: str
    path: Path
    render: PlaneRenderer
    G: TriPlaneGenerator
    nrr: int
    img_resolution: int
    rendering: RenderingConfig  # of the model: pivot, radius, focal, samples per ray
    planes: Tensor | None = None  # [1, 3, C, R, R] (tri-plane file)
    ws: Tensor | None = None  # [1, num_ws, w_dim] (tri-plane file, inversion)
    camera: Tensor | None = None  # [1, 25] estimated camera (tri-plane file, inversion)
    tuned: TriPlaneGenerator | None = None  # inversion: the tuned generator (PTI), None when not tuned
    photo: np.ndarray | None = None  # inversion: the input photo [H, W, 3]
    checkpoint: Path | None = None  # the file a run is followed through
    progress: dict = field(default_factory=dict)  # checkpoint progress (kimg, step) for the page

    @property
    def pivot(self) -> tuple[float, float, float]:
        return cast("tuple[float, float, float]", tuple(self.rendering.avg_camera_pivot))


def generator_renderer(G: TriPlaneGenerator) -> PlaneRenderer:
    return PlaneRenderer(G.renderer, G.decoder, G.superresolution)


def _trained_nrr(header: dict, cfg) -> int:
    return int(header.get("progress", {}).get("nrr") or cfg.loss.nrr_initial)  # where the NRR fade stopped


def from_generator(path: Path, device: torch.device, kind: str = "generator") -> ViewSource:
    header = read_header(path)
    if "generator_config" in (header.get("extra") or {}):
        raise UsageError(f"{path} is an encoder checkpoint: view what it encodes (`gan3dkit encode ... --outputs "
                         "triplane`, then `gan3dkit view X_triplane.safetensors --ckpt` this file)")
    G, cfg = load_generator(path, device=device)
    return ViewSource(kind, path, generator_renderer(G), G, _trained_nrr(header, cfg), G.img_resolution,
                      G.config.rendering, checkpoint=path, progress=dict(header.get("progress", {})))  # fmt: skip


def renderer_from_ckpt(ckpt: Path, device: torch.device) -> tuple[PlaneRenderer, TriPlaneGenerator, int]:
    """(renderer, the generator whose config it follows, nrr) from a generator or a distill-encoder checkpoint."""
    header = read_header(ckpt)
    if "generator_config" in (header.get("extra") or {}):
        from ..encoders.models import load_encoder

        st, _, _ = load_encoder(ckpt, device)
        G = cast("TriPlaneGenerator", st.teacher.G)
        if st.renderer is None:
            return generator_renderer(G), G, st.teacher.nrr
        r = st.renderer
        # the encoder's renderer holds copies of G's parts; its SR latent is the learned const_w
        # (sr_latent=learned) or LP3D's constant 1 (sr_latent=one, as encoders.render.PlaneRenderer feeds it)
        const_w = (cast(Tensor, r.const_w).detach() if r.const_w is not None
                   else torch.ones(1, 1, G.w_dim, device=device))
        plane_renderer = PlaneRenderer(cast("ImportanceRenderer", r.renderer), cast(torch.nn.Module, r.decoder),
                                       cast(torch.nn.Module, r.superresolution), const_w)
        return plane_renderer, G, st.teacher.nrr
    G, cfg = load_generator(ckpt, device=device)
    return generator_renderer(G), G, _trained_nrr(header, cfg)


def from_triplane(path: Path, ckpt: Path | None, device: torch.device) -> ViewSource:
    from safetensors import safe_open
    from safetensors.torch import load_file

    from ..invert.delta import DELTA_FORMAT

    try:
        with safe_open(str(path), framework="pt") as f:
            is_delta = DELTA_FORMAT in (f.metadata() or {})
        tensors = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is bad data
        raise DataError(f"{path} is not a readable safetensors file ({exc})") from None
    if is_delta:
        raise UsageError(f"{path} is a tuned-generator delta: view the `invert` folder that holds it")
    if "planes" not in tensors or tensors["planes"].ndim != 5:
        raise DataError(f"{path} holds no tri-planes [1, 3, C, R, R] (keys: {sorted(tensors)[:5]})")
    if ckpt is None:
        raise UsageError(f"{path} is a tri-plane file: pass the generator (or encoder) it belongs to with --ckpt")
    render, G, nrr = renderer_from_ckpt(ckpt, device)
    planes = tensors["planes"][:1].float().to(device)
    want = (3, G.config.triplane_channels, G.config.triplane_resolution, G.config.triplane_resolution)
    if tuple(planes.shape[1:]) != want:
        raise DataError(
            f"{path}: planes {tuple(planes.shape)} do not fit {ckpt} (expects [1, {', '.join(map(str, want))}])"
        )
    ws = tensors["ws"][:1].float().to(device) if "ws" in tensors else None
    if ws is None and render.const_w is None:
        raise UsageError(f"{path} has no ws (an LP3D encoding): pass the encoder checkpoint that made it with --ckpt")
    cam = tensors["camera"][:1].float() if "camera" in tensors else None
    return ViewSource("triplane", path, render, G, nrr, G.img_resolution, G.config.rendering, planes=planes,
                      ws=ws, camera=cam)  # fmt: skip


def _first_tile(path: Path) -> np.ndarray | None:
    """The input photo: the first (square) tile of `invert`'s reconstruction.png (input | projected | tuned)."""
    if not path.is_file():
        return None
    from PIL import Image

    img = np.asarray(Image.open(path).convert("RGB"))
    return img[:, : img.shape[0]].copy()


def from_inversion(folder: Path, ckpt: Path | None, device: torch.device) -> ViewSource:
    from ..edit.edits import load_latent
    from ..invert.delta import load_delta, read_delta_header

    delta = folder / "generator_delta.safetensors"
    tuned = None
    if delta.is_file():
        base = Path(ckpt or read_delta_header(delta)["base"])
        tuned, _ = load_delta(delta, base, device=device)
        tuned.eval().requires_grad_(False)
    elif ckpt is None:
        raise UsageError(
            f"{folder} has no generator_delta.safetensors: pass the generator it was inverted with (--ckpt)"
        )
    else:
        base = ckpt
    src = from_generator(base, device, kind="inversion")
    G = src.G
    wplus = folder / "wplus.npy"
    ws = load_latent(wplus if wplus.is_file() else folder / "w.npy", G.num_ws, G.w_dim).to(device)
    try:
        doc = json.loads((folder / "camera.json").read_text())
        cam = torch.tensor(doc["camera"], dtype=torch.float32).reshape(1, LABEL_DIM)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise DataError(f"{folder / 'camera.json'}: no 25-float 'camera' label ({exc})") from None
    src.path, src.ws, src.camera, src.tuned = folder, ws, cam, tuned
    src.photo = _first_tile(folder / "reconstruction.png")
    src.checkpoint = None
    return src


def open_source(path: str | Path, ckpt: str | Path | None = None, device: str | torch.device = "cpu") -> ViewSource:
    """Load SOURCE (kind detected from what it holds); raises a one-line UsageError/DataError/CheckpointError."""
    path, device = Path(path), torch.device(device)
    ckpt = Path(ckpt) if ckpt is not None else None
    if ckpt is not None and not ckpt.is_file():
        raise UsageError(f"--ckpt {ckpt} not found")
    if not path.exists():
        raise UsageError(
            f"{path} not found (SOURCE is a checkpoint, a run folder, a tri-plane file or an invert folder)"
        )
    if path.is_dir():
        if (path / "w.npy").is_file() and (path / "camera.json").is_file():
            return from_inversion(path, ckpt, device)
        if (path / RUN_CHECKPOINT).is_file():
            return from_generator(path / RUN_CHECKPOINT, device, kind="run")
        if (path / "config.json").is_file():
            raise UsageError(f"{path} has no {RUN_CHECKPOINT} yet; `gan3dkit view` it once the run wrote one (or "
                             "train with --view)")
        raise UsageError(
            f"{path} is neither a training run ({RUN_CHECKPOINT}) nor an invert output (w.npy, camera.json)"
        )
    try:
        with open(path, "rb") as f:
            f.read(8)
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror})") from None
    if path.suffix != ".safetensors":
        raise UsageError(f"{path}: SOURCE must be a .safetensors checkpoint or tri-plane file, a run folder or an "
                         "invert folder")
    try:
        read_header(path)
    except CheckpointError:
        return from_triplane(path, ckpt, device)  # no gan3dkit header: an `encode` tri-plane file (or not readable)
    return from_generator(path, device)
