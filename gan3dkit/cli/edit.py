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
    from ..edit.entry import EditOptions, run_edit

    opts = EditOptions(ckpt=ckpt, out=out, components=components, recompute=recompute, samples=samples,
                       cond_yaw=cond_yaw, cond_pitch=cond_pitch, list_=list_, top=top, sigma=sigma, edits=edits,
                       mode=mode, seeds=seeds, latent=latent, delta_planes=delta_planes, trunc=trunc, yaws=yaws,
                       pitch=pitch, video=video, frames=frames, check_hash=check_hash, device=device)
    report = run_edit(opts, lambda what, total: progress_bar(what, total=total, json_mode=json_out))
    if json_out:
        emit_json(report)
        return
    c = console()
    c.print(f"components: {report['components']} ({report['num_samples']:,} samples; variance explained by pc0-9: "
            + ", ".join(f"{100 * v:.1f}%" for v in report["variance_explained"]) + ")", soft_wrap=True)
    if "list" in report:
        c.print(f"top components (-{sigma:g}σ, 0, +{sigma:g}σ per latent): {report['list']}", soft_wrap=True)
    for key in ("grids", "videos"):
        if report[key]:
            c.print(f"{key} (rows: original, " + ", ".join(report["edits"]) + "): " + ", ".join(report[key]),
                    soft_wrap=True)
