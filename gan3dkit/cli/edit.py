"""`gan3dkit edit`: GANSpace components of a generator's W, component sheets, and multi-view grids of edits."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import console, emit_json, handle_errors, progress_bar


@handle_errors
def edit(
    ckpt: Path = typer.Option(..., "--ckpt", help="Generator checkpoint (.safetensors; train or convert output)."),
    out: Path = typer.Option(..., "--out", help="Output folder (pictures, videos, components file)."),
    components: Path | None = typer.Option(None, help="Components file; default <out>/components.safetensors "
                                           "(computed when missing)."),
    recompute: bool = typer.Option(False, help="Recompute the components even if the file exists."),
    samples: int = typer.Option(100_000, help="w samples for the PCA (Ko et al.'s EG3D port: 1e5)."),
    cond_yaw: float = typer.Option(0.0, help="Conditioning camera yaw for the mapping (radians; 0 = frontal)."),
    cond_pitch: float = typer.Option(0.0, help="Conditioning camera pitch (radians)."),
    list_: bool = typer.Option(False, "--list", help="Picture of the top components, each at -σ, 0, +σ."),
    top: int = typer.Option(8, help="Components shown by --list."),
    sigma: float = typer.Option(1.0, help="Multiple of σ shown by --list (GANSpace's viewer uses 2)."),
    edits: list[str] = typer.Option([], "--edit", help="COMPONENT:STRENGTH[@START-END] in σ, END exclusive, "
                                    "e.g. 0:2 or 3:-1.5@0-5 (repeatable)."),
    mode: str = typer.Option("additive", help="additive: w += s·σ·v; set: the coordinate becomes s σ (e4e/PTI)."),
    seeds: str = typer.Option("0", help="Seeds of the latents to edit, e.g. 0-3."),
    latent: Path | None = typer.Option(None, help="Edit this latent instead (w.npy / wplus.npy from invert)."),
    delta_planes: Path | None = typer.Option(None, help="Tri-plane offsets ΔT of an encoder (safetensors key "
                                             "delta_planes or .npy): edits become (G(w)+ΔT)+G(w_edit)-G(w)."),
    trunc: float = typer.Option(1.0, help="Truncation psi of the seeds' latents."),
    yaws: str = typer.Option("0.4,0,-0.4", help="View yaws (radians) of the edit grids."),
    pitch: float = typer.Option(-0.2, help="View pitch (radians) of the edit grids."),
    video: bool = typer.Option(False, help="Also an orbit GIF per edit (original | edited)."),
    frames: int = typer.Option(24, help="Video frames."),
    check_hash: bool = typer.Option(True, "--check-hash/--no-check-hash", help="Components must match the weights."),
    device: str = typer.Option("cpu", help="cpu | cuda."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Find interpretable directions in W with GANSpace (PCA) and apply them by component and layer range.

    Example: gan3dkit edit --ckpt runs/heads/checkpoint.safetensors --out edits --list --edit 0:2 --edit 1:-2@0-4
    """
    import numpy as np
    import torch

    from ..edit import (
        GanSpaceConfig,
        apply_edit,
        component_sheet,
        compute_ganspace,
        edit_grid,
        edit_orbit,
        load_delta_planes,
        load_ganspace,
        load_latent,
        parse_edit,
        save_ganspace,
        triplane_offset_edit,
    )
    from ..edit.edits import EDIT_MODES, check_edit
    from ..generate import load_generator, parse_seeds
    from ..train.checkpoint import read_header
    from ..utils.device import resolve_device
    from ..utils.errors import UsageError, check_number
    from ..utils.files import atomic_save_png
    from ..utils.items import check_out_folder

    if mode not in EDIT_MODES:
        raise UsageError(f"--mode must be one of {', '.join(EDIT_MODES)}, got {mode!r}")
    edit_list = [parse_edit(e, mode) for e in edits]
    if not list_ and not edit_list:
        raise UsageError("nothing to do: pass --list and/or --edit COMPONENT:STRENGTH (see --help)")
    try:
        yaw_list = tuple(float(y) for y in yaws.split(",") if y.strip())
    except ValueError:
        raise UsageError(f"--yaws must be comma-separated radians, got {yaws!r}") from None
    if top < 1 or frames < 1 or sigma <= 0 or not yaw_list:
        raise UsageError("--top and --frames must be >= 1, --sigma > 0, --yaws non-empty")
    for name, value in (("--sigma", sigma), ("--trunc", trunc), ("--pitch", pitch), ("--cond-yaw", cond_yaw),
                        ("--cond-pitch", cond_pitch), *(("--yaws", y) for y in yaw_list)):  # fmt: skip
        check_number(name, value)
    check_number("--samples", samples, ge=2, integer=True)
    check_out_folder(out)
    device = resolve_device(device)
    for path, option in ((components, "--components"), (latent, "--latent"), (delta_planes, "--delta-planes")):
        if path is not None and not path.is_file() and (option != "--components" or path.exists()):
            raise UsageError(f"{option} {path} " + ("is a folder, not a file" if path.is_dir() else "not found"))
    seed_list = parse_seeds(seeds) if latent is None else []
    G, cfg = load_generator(ckpt, device=device)
    nrr = read_header(ckpt)["progress"].get("nrr", cfg.loss.nrr_initial)
    latent_ws = load_latent(latent, G.num_ws, G.w_dim).to(device) if latent is not None else None  # read first
    delta = load_delta_planes(delta_planes).to(device) if delta_planes is not None else None
    comp_path = components or out / "components.safetensors"
    files: dict[str, list[str] | str] = {"grids": [], "videos": []}
    if comp_path.exists() and not recompute:
        gs = load_ganspace(comp_path, G, check_hash=check_hash)
    else:
        gcfg = GanSpaceConfig(num_samples=samples, cond_yaw=cond_yaw, cond_pitch=cond_pitch)
        with progress_bar("sampling W", total=samples, json_mode=json_out) as update:
            gs = compute_ganspace(G, gcfg, update)
        save_ganspace(gs, comp_path)
    files["components"] = str(comp_path)
    for e in edit_list:
        check_edit(e, gs, G.num_ws)
    cond = torch.tensor(gs.camera, device=device).view(1, -1)
    if latent is not None:
        named = [(latent.stem, latent_ws)]
    else:
        named = []
        for s in seed_list:
            z = torch.from_numpy(np.random.RandomState(s).randn(1, G.z_dim)).float().to(device)
            named.append((f"seed{s:04d}", G.mapping(z, cond, truncation_psi=trunc)))
    if list_:
        with progress_bar("components", total=min(top, gs.num_components), json_mode=json_out) as update:
            sheet = component_sheet(G, [w for _, w in named[:3]], gs, top, sigma, nrr, update)
        files["list"] = str(atomic_save_png(out / "components.png", sheet))
    if edit_list:
        with progress_bar("edits", total=len(named), json_mode=json_out) as update:
            for i, (name, ws) in enumerate(named):
                grid, _ = edit_grid(G, ws, gs, edit_list, yaw_list, pitch, nrr, delta)
                files["grids"].append(str(atomic_save_png(out / f"edit_{name}.png", grid)))  # type: ignore[union-attr]
                for k, e in enumerate(edit_list if video else []):
                    ws_e = apply_edit(ws, gs, e)
                    planes = None
                    if delta is not None:
                        planes = (triplane_offset_edit(G, ws, ws, delta), triplane_offset_edit(G, ws, ws_e, delta))
                    gif = edit_orbit(G, ws, ws_e, out / f"edit_{name}_{k}", frames=frames, nrr=nrr, planes=planes)
                    files["videos"].append(str(gif))  # type: ignore[union-attr]
                update(i + 1, len(named))
    explained = [round(float(v), 4) for v in gs.var_ratio[:10]]
    if json_out:
        emit_json({"out": str(out), "generator_sha256": gs.generator_sha256, "num_samples": gs.config.num_samples,
                   "variance_explained": explained, "edits": [e.label() for e in edit_list], **files})
        return
    c = console()
    c.print(f"components: {comp_path} ({gs.config.num_samples:,} samples; variance explained by pc0-9: "
            + ", ".join(f"{100 * v:.1f}%" for v in explained) + ")", soft_wrap=True)
    if "list" in files:
        c.print(f"top components (-{sigma:g}σ, 0, +{sigma:g}σ per latent): {files['list']}", soft_wrap=True)
    for key in ("grids", "videos"):
        if files[key]:
            c.print(f"{key} (rows: original, " + ", ".join(e.label() for e in edit_list) + "): "
                    + ", ".join(files[key]), soft_wrap=True)  # type: ignore[arg-type]
