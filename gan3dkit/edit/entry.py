"""`edit` as one call: options -> GANSpace components (loaded or computed), component sheet, edit grids, orbits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..utils.progress import Bars, no_bars


@dataclass
class EditOptions:
    """What `gan3dkit edit` was asked (one field per option; see its --help)."""

    ckpt: Path
    out: Path
    components: Path | None = None
    recompute: bool = False
    samples: int = 100_000
    cond_yaw: float = 0.0
    cond_pitch: float = 0.0
    list_: bool = False
    top: int = 8
    sigma: float = 1.0
    edits: list[str] = field(default_factory=list)
    mode: str = "additive"
    seeds: str = "0"
    latent: Path | None = None
    delta_planes: Path | None = None
    trunc: float = 1.0
    yaws: str = "0.4,0,-0.4"
    pitch: float = -0.2
    video: bool = False
    frames: int = 24
    check_hash: bool = True
    device: str = "cpu"


def _check(opts: EditOptions) -> tuple[list, tuple[float, ...]]:
    """Usage errors before anything loads; returns the parsed edits and view yaws."""
    from ..utils.errors import UsageError, check_number
    from ..utils.items import check_out_folder
    from .edits import EDIT_MODES, parse_edit

    if opts.mode not in EDIT_MODES:
        raise UsageError(f"--mode must be one of {', '.join(EDIT_MODES)}, got {opts.mode!r}")
    edit_list = [parse_edit(e, opts.mode) for e in opts.edits]
    if not opts.list_ and not edit_list:
        raise UsageError("nothing to do: pass --list and/or --edit COMPONENT:STRENGTH (see --help)")
    try:
        yaw_list = tuple(float(y) for y in opts.yaws.split(",") if y.strip())
    except ValueError:
        raise UsageError(f"--yaws must be comma-separated radians, got {opts.yaws!r}") from None
    if opts.top < 1 or opts.frames < 1 or opts.sigma <= 0 or not yaw_list:
        raise UsageError("--top and --frames must be >= 1, --sigma > 0, --yaws non-empty")
    for name, value in (("--sigma", opts.sigma), ("--trunc", opts.trunc), ("--pitch", opts.pitch),
                        ("--cond-yaw", opts.cond_yaw), ("--cond-pitch", opts.cond_pitch),
                        *(("--yaws", y) for y in yaw_list)):  # fmt: skip
        check_number(name, value)
    check_number("--samples", opts.samples, ge=2, integer=True)
    check_out_folder(opts.out)
    for path, option in ((opts.components, "--components"), (opts.latent, "--latent"),
                         (opts.delta_planes, "--delta-planes")):  # fmt: skip
        if path is not None and not path.is_file() and (option != "--components" or path.exists()):
            raise UsageError(f"{option} {path} " + ("is a folder, not a file" if path.is_dir() else "not found"))
    return edit_list, yaw_list


def run_edit(opts: EditOptions, progress: Bars = no_bars) -> dict[str, Any]:
    """Check the options, load the generator, load or compute the GANSpace components, write the component sheet
    (--list), an edit grid per latent and optional orbit GIFs. Returns the report (`gan3dkit edit --json`)."""
    import numpy as np
    import torch

    from ..generate import load_generator, parse_seeds
    from ..train.checkpoint import read_header
    from ..utils.device import resolve_device
    from ..utils.files import atomic_save_png
    from .edits import apply_edit, check_edit, load_delta_planes, load_latent, triplane_offset_edit
    from .ganspace import GanSpaceConfig, compute_ganspace, load_ganspace, save_ganspace
    from .pictures import component_sheet, edit_grid, edit_orbit

    edit_list, yaw_list = _check(opts)
    out, latent = opts.out, opts.latent
    device = resolve_device(opts.device)
    seed_list = parse_seeds(opts.seeds) if latent is None else []
    G, cfg = load_generator(opts.ckpt, device=device)
    nrr = read_header(opts.ckpt)["progress"].get("nrr", cfg.loss.nrr_initial)
    latent_ws = load_latent(latent, G.num_ws, G.w_dim).to(device) if latent is not None else None  # read first
    delta = load_delta_planes(opts.delta_planes).to(device) if opts.delta_planes is not None else None
    comp_path = opts.components or out / "components.safetensors"
    files: dict[str, list[str] | str] = {"grids": [], "videos": []}
    if comp_path.exists() and not opts.recompute:
        gs = load_ganspace(comp_path, G, check_hash=opts.check_hash)
    else:
        gcfg = GanSpaceConfig(num_samples=opts.samples, cond_yaw=opts.cond_yaw, cond_pitch=opts.cond_pitch)
        with progress("sampling W", opts.samples) as update:
            gs = compute_ganspace(G, gcfg, update)
        save_ganspace(gs, comp_path)
    files["components"] = str(comp_path)
    for e in edit_list:
        check_edit(e, gs, G.num_ws)
    cond = torch.tensor(gs.camera, device=device).view(1, -1)
    named: list[tuple[str, torch.Tensor]] = []
    if latent is not None and latent_ws is not None:
        named.append((latent.stem, latent_ws))
    for s in seed_list:  # (none with --latent)
        z = torch.from_numpy(np.random.RandomState(s).randn(1, G.z_dim)).float().to(device)
        named.append((f"seed{s:04d}", G.mapping(z, cond, truncation_psi=opts.trunc)))
    if opts.list_:
        with progress("components", min(opts.top, gs.num_components)) as update:
            sheet = component_sheet(G, [w for _, w in named[:3]], gs, opts.top, opts.sigma, nrr, update)
        files["list"] = str(atomic_save_png(out / "components.png", sheet))
    if edit_list:
        with progress("edits", len(named)) as update:
            for i, (name, ws) in enumerate(named):
                grid, _ = edit_grid(G, ws, gs, edit_list, yaw_list, opts.pitch, nrr, delta)
                files["grids"].append(str(atomic_save_png(out / f"edit_{name}.png", grid)))  # type: ignore[union-attr]
                for k, e in enumerate(edit_list if opts.video else []):
                    ws_e = apply_edit(ws, gs, e)
                    planes = None
                    if delta is not None:
                        planes = (triplane_offset_edit(G, ws, ws, delta), triplane_offset_edit(G, ws, ws_e, delta))
                    gif = edit_orbit(G, ws, ws_e, out / f"edit_{name}_{k}", frames=opts.frames, nrr=nrr,
                                     planes=planes)
                    files["videos"].append(str(gif))  # type: ignore[union-attr]
                update(i + 1, len(named))
    explained = [round(float(v), 4) for v in gs.var_ratio[:10]]
    return {"out": str(out), "generator_sha256": gs.generator_sha256, "num_samples": gs.config.num_samples,
            "variance_explained": explained, "edits": [e.label() for e in edit_list], **files}
