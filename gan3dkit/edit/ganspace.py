"""GANSpace on W (Härkönen et al. 2020, EG3D port of Ko et al.): PCA of mapped w's at a fixed conditioning camera."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import safe_open

from ..generate.views import view_cameras
from ..utils.errors import DataError, UsageError
from ..utils.files import atomic_write_safetensors

if TYPE_CHECKING:
    from ..networks.generator import TriPlaneGenerator

GANSPACE_FORMAT = "gan3dkit-ganspace"
GANSPACE_VERSION = 1


@dataclass
class GanSpaceConfig:
    """How the components are estimated.

    Defaults follow Ko et al.'s EG3D port (methods.md §4.6): 1e5 w's from ``mapping(z, frontal camera)``, a full
    (exact) PCA keeping every component. GANSpace itself uses 3e5 samples and 80 components with incremental PCA.
    """

    num_samples: int = 100_000
    """Number of z ~ N(0, I) mapped to W."""
    num_components: int | None = None
    """Components kept (None = all, i.e. w_dim)."""
    cond_yaw: float = 0.0
    """Conditioning camera yaw (radians from frontal) fed to the mapping network."""
    cond_pitch: float = 0.0
    """Conditioning camera pitch (radians)."""
    truncation_psi: float = 1.0
    """Truncation applied to the sampled w's (1 = none, as GANSpace and Ko et al.)."""
    seed: int = 0
    batch: int = 4096


@dataclass
class GanSpace:
    """Principal directions of W: ``components [K, w_dim]`` (unit rows, by decreasing variance), ``stdev [K]`` (σ of
    the projections), ``mean [w_dim]``, ``var_ratio [K]`` (share of the total variance), plus provenance."""

    components: torch.Tensor
    stdev: torch.Tensor
    mean: torch.Tensor
    var_ratio: torch.Tensor
    generator_sha256: str
    camera: list[float]
    config: GanSpaceConfig

    @property
    def num_components(self) -> int:
        return int(self.components.shape[0])


def generator_hash(G: torch.nn.Module) -> str:
    """sha256 over the generator's state dict (sorted keys, names, shapes and bytes): identifies the weights."""
    h = hashlib.sha256()
    for key, value in sorted(G.state_dict().items()):
        t = value.detach().cpu().contiguous()
        h.update(f"{key}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def conditioning_camera(G: TriPlaneGenerator, yaw: float = 0.0, pitch: float = 0.0) -> torch.Tensor:
    """[1, 25] label at (yaw, pitch) around the generator's pivot and radius (frontal by default)."""
    return view_cameras(G, [yaw], pitch, next(G.parameters()).device).to_label()


@torch.no_grad()
def sample_w(G: TriPlaneGenerator, n: int, cam: torch.Tensor, psi: float, seed: int, batch: int,
             progress: Callable[[int, int], None] | None = None) -> torch.Tensor:  # fmt: skip
    """[n, w_dim] w's of z ~ N(0, I) (seeded) mapped at the conditioning camera ``cam [1, 25]``."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n, batch):
        b = min(batch, n - start)
        z = torch.randn(b, G.z_dim, generator=gen).to(cam.device)
        out.append(G.mapping(z, cam.expand(b, -1), truncation_psi=psi)[:, 0].double().cpu())
        if progress is not None:
            progress(start + b, n)
    return torch.cat(out)


def pca(w: torch.Tensor, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact PCA of ``w [N, D]``: (components [K, D], stdev [K], mean [D], var_ratio [K]).

    Eigen-decomposition of the sample covariance (N - 1 denominator, as sklearn); components sorted by decreasing
    variance; the sign of each is fixed so that its largest-magnitude entry is positive (PCA leaves it arbitrary).
    """
    if w.ndim != 2 or w.shape[0] < 2:
        raise UsageError(f"PCA needs at least 2 samples, got {tuple(w.shape)}")
    w = w.double()
    mean = w.mean(0)
    x = w - mean
    cov = x.T @ x / (w.shape[0] - 1)
    evals, evecs = torch.linalg.eigh(cov)  # ascending
    order = torch.argsort(evals, descending=True)
    evals, comps = evals[order].clamp_min(0), evecs[:, order].T
    idx = comps.abs().argmax(1)
    comps = comps * torch.sign(comps[torch.arange(len(comps)), idx]).unsqueeze(1)
    k = comps.shape[0] if k is None else min(k, comps.shape[0])
    ratio = evals / evals.sum().clamp_min(1e-30)
    return comps[:k].float(), evals[:k].sqrt().float(), mean.float(), ratio[:k].float()


def compute_ganspace(G: TriPlaneGenerator, cfg: GanSpaceConfig,
                     progress: Callable[[int, int], None] | None = None) -> GanSpace:  # fmt: skip
    """Sample, map and decompose; the result carries the generator hash and the conditioning camera."""
    if cfg.num_samples < 2:
        raise UsageError(f"--samples must be >= 2, got {cfg.num_samples}")
    cam = conditioning_camera(G, cfg.cond_yaw, cfg.cond_pitch)
    w = sample_w(G, cfg.num_samples, cam, cfg.truncation_psi, cfg.seed, cfg.batch, progress)
    comps, std, mean, ratio = pca(w, cfg.num_components)
    return GanSpace(comps, std, mean, ratio, generator_hash(G), cam[0].cpu().tolist(), cfg)


def save_ganspace(gs: GanSpace, path: str | Path) -> Path:
    """One safetensors file: components, stdev, mean, var_ratio + a JSON header (hash, camera, sample count)."""
    path = Path(path)
    header = {
        "format": GANSPACE_FORMAT,
        "version": GANSPACE_VERSION,
        "generator_sha256": gs.generator_sha256,
        "conditioning_camera": gs.camera,
        "num_samples": gs.config.num_samples,
        "config": asdict(gs.config),
        "variance_explained": [round(float(v), 6) for v in gs.var_ratio[:20]],
    }
    tensors = {"components": gs.components, "stdev": gs.stdev, "mean": gs.mean, "var_ratio": gs.var_ratio}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_safetensors(
        path, {k: v.contiguous().cpu() for k, v in tensors.items()}, {"gan3dkit": json.dumps(header)}
    )
    return path


def load_ganspace(path: str | Path, G: torch.nn.Module | None = None, check_hash: bool = True) -> GanSpace:
    """Read a components file; with ``G`` its hash must match (components belong to one generator's W)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"components file {path} not found (compute it with gan3dkit edit --list)")
    try:
        with safe_open(str(path), framework="pt") as f:
            header: dict[str, Any] = json.loads((f.metadata() or {}).get("gan3dkit", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    except Exception as exc:  # noqa: BLE001 - any parse failure is bad data
        raise DataError(f"{path} is not a safetensors components file ({exc})") from None
    if header.get("format") != GANSPACE_FORMAT or header.get("version") != GANSPACE_VERSION:
        raise DataError(f"{path}: not a gan3dkit GANSpace file (format {header.get('format')!r})")
    bad = sorted(k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if bad:
        raise DataError(f"{path}: {', '.join(bad)} hold NaN/inf; recompute the components (delete the file)")
    gs = GanSpace(tensors["components"], tensors["stdev"], tensors["mean"], tensors["var_ratio"],
                  header["generator_sha256"], header["conditioning_camera"], GanSpaceConfig(**header["config"]))
    if G is not None:
        if gs.components.shape[1] != G.w_dim:
            raise DataError(f"{path}: components have w_dim {gs.components.shape[1]}, the generator {G.w_dim}")
        if check_hash and gs.generator_sha256 != generator_hash(G):
            raise DataError(f"{path} was computed for another generator (hash {gs.generator_sha256[:12]}); "
                            "recompute it (delete the file) or pass --no-check-hash")
    return gs
