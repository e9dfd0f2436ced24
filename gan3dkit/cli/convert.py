"""`gan3dkit convert`: EG3D/PoF3D pickles, EG3D-fork state dicts, released encoders -> gan3dkit checkpoints."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import typer

from .common import console, emit_json, handle_errors, progress_bar

app = typer.Typer(
    help="Import models trained elsewhere into gan3dkit checkpoints (safetensors + JSON); no code is unpickled.\n\n"
    "Example: gan3dkit convert eg3d-pkl ffhq512-128.pkl --out ffhq512-128.safetensors",
    no_args_is_help=True,
)


def _report(summary: dict, json_out: bool) -> None:
    if json_out:
        emit_json(summary)
        return
    c = console()
    params = ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in summary["parameters"].items())
    c.print(f"[green]converted[/] {summary['source']['file']} -> {summary['out']} ({params})", soft_wrap=True)
    c.print(
        f"{summary['img_resolution']}² output, rendering {summary['neural_rendering_resolution']}², plane_axes "
        f"{summary['plane_axes']}; config {summary['config']}",
        soft_wrap=True,
    )
    for note in summary["notes"]:
        c.print(f"note: {note}", soft_wrap=True)
    learned = " --pose learned" if summary["source"].get("kind") == "pof3d-pkl" else ""
    c.print(f"use it: gan3dkit generate --ckpt {summary['out']}{learned} --out gen", soft_wrap=True)
    if summary["resumable"]:
        c.print(
            "fine-tune: copy it to <run>/checkpoint.safetensors and run gan3dkit train --config "
            f"{summary['config']} --data <data> --out <run> (weights only: the optimiser starts afresh; blur and "
            "GPC fades off, as EG3D's --resume)",
            soft_wrap=True,
        )


PKL_OUT = typer.Option(..., "--out", help="Output checkpoint (.safetensors); <stem>.config.json is written too.")
FOCAL = typer.Option(None, help="Normalised focal of the cameras (default 4.2647, ShapeNet 1.7074).")
AUDIT = typer.Option(True, "--audit-source/--no-audit-source",
                     help="Refuse records whose (never run) source would run code.")  # fmt: skip
JSON_OUT = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _convert_pickle(pkl: Path, out: Path, focal: float | None, audit_source: bool, json_out: bool, kind: str) -> None:
    """One snapshot pickle (`kind` eg3d or pof3d) through the refusing reader into a generator checkpoint."""
    from ..convert import convert_eg3d_pickle, write_converted
    from ..convert.pof3d import convert_pof3d_pickle
    from ..utils.errors import UsageError, check_number

    check_number("--focal", focal, gt=0, allow_none=True)
    if _starts_like_zip(pkl):
        hint = "; convert it with `gan3dkit convert state-dict`" if kind == "eg3d" else ""
        what = "an EG3D" if kind == "eg3d" else "a PoF3D"
        raise UsageError(f"{pkl} is a torch.save (zip) file, not {what} pickle{hint}")
    reader = convert_eg3d_pickle if kind == "eg3d" else convert_pof3d_pickle
    with progress_bar("converting", total=2, json_mode=json_out) as update, naming_source(pkl):
        conv = reader(pkl, focal=focal, audit_source=audit_source)
        update(1, 2)
        summary = write_converted(conv, out, pkl)
        update(2, 2)
    _report(summary, json_out)


@app.command("eg3d-pkl")
@handle_errors
def eg3d_pkl(
    pkl: Path = typer.Argument(..., help="NVIDIA EG3D pickle (ffhq512-128.pkl, network-snapshot-*.pkl, ...)."),
    out: Path = PKL_OUT,
    focal: float | None = FOCAL,
    audit_source: bool = AUDIT,
    json_out: bool = JSON_OUT,
) -> None:
    """Read an EG3D pickle with a refusing unpickler (tensors, containers and persistence records only) and write
    G, G_ema and D as a gan3dkit checkpoint for generate, evaluate, invert and train --resume.

    Example: gan3dkit convert eg3d-pkl ffhq512-128.pkl --out ffhq512-128.safetensors
    """
    _convert_pickle(pkl, out, focal, audit_source, json_out, "eg3d")


@app.command("pof3d")
@handle_errors
def pof3d(
    pkl: Path = typer.Argument(..., help="VivianSZF/pof3d snapshot (network-snapshot-*.pkl: G, G_ema, D)."),
    out: Path = PKL_OUT,
    focal: float | None = FOCAL,
    audit_source: bool = AUDIT,
    json_out: bool = JSON_OUT,
) -> None:
    """Read a PoF3D snapshot (EG3D's pickle format with the learned pose mapping and D's camera head) with the
    refusing unpickler and write it for the pof3d method: generate --pose learned, evaluate, train --resume.

    Example: gan3dkit convert pof3d ffhq256-pof3d.pkl --out pof3d.safetensors
    """
    _convert_pickle(pkl, out, focal, audit_source, json_out, "pof3d")


def _starts_like_zip(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(2) == b"PK"


@contextlib.contextmanager
def naming_source(src: Path) -> Iterator[None]:
    """Errors about the source file's contents name the file."""
    from ..utils.errors import Gan3dkitError, UsageError

    try:
        yield
    except Gan3dkitError as exc:
        if str(src) in str(exc) or isinstance(exc, UsageError):
            raise
        raise type(exc)(f"{src}: {exc}") from None


@app.command("state-dict")
@handle_errors
def state_dict(
    pt: Path = typer.Argument(..., help="torch.save'd state dict (.pt/.pth): flat G or {G, G_ema, D}."),
    out: Path = typer.Option(..., "--out", help="Output checkpoint (.safetensors)."),
    preset: str = typer.Option("ffhq512", help="Architecture of the weights: a train preset (ffhq512, ...)."),
    config: Path | None = typer.Option(None, help="Or a gan3dkit config.json describing the architecture."),
    nrr: int | None = typer.Option(None, help="Neural rendering resolution the weights were trained at."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Convert a plain state dict written by an EG3D fork (read through the same refusing unpickler; the zip's
    storages are read directly). A state dict has no constructor arguments, so name the architecture.

    Example: gan3dkit convert state-dict G_tuned.pt --preset ffhq512 --nrr 128 --out tuned.safetensors
    """
    import json

    from ..convert import convert_state_dict, write_converted
    from ..train.config import TrainConfig, train_preset
    from ..utils.errors import DataError, UsageError, check_number

    check_number("--nrr", nrr, ge=1, integer=True, allow_none=True)

    if config is not None and not config.is_file():
        raise UsageError(f"--config {config} not found")
    try:
        cfg = TrainConfig.from_dict(json.loads(config.read_text())) if config else train_preset(preset)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"--config {config}: not valid JSON ({exc})") from None
    except ValueError as exc:
        raise UsageError(f"--config {config}: {exc}" if config else f"--preset {preset!r}: {exc}") from None
    with progress_bar("converting", total=2, json_mode=json_out) as update, naming_source(pt):
        conv = convert_state_dict(pt, cfg, nrr=nrr)
        update(1, 2)
        summary = write_converted(conv, out, pt)
        update(2, 2)
    _report(summary, json_out)


def _report_encoder(summary: dict, json_out: bool, use: str) -> None:
    if json_out:
        emit_json(summary)
        return
    c = console()
    params = ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in summary["parameters"].items())
    c.print(f"[green]converted[/] {summary['source']['file']} ({summary['kind']}) -> {summary['out']} ({params})",
            soft_wrap=True)  # fmt: skip
    for note in summary["notes"]:
        c.print(f"note: {note}", soft_wrap=True)
    c.print(f"use it: {use.format(out=summary['out'])}", soft_wrap=True)


@app.command("triplanenet")
@handle_errors
def triplanenet(
    pt: Path = typer.Argument(..., help="anantarb/triplanenet checkpoint (v1 or v2 best_model.pt)."),
    out: Path = typer.Option(..., "--out", help="Output encoder checkpoint (.safetensors)."),
    preset: str = typer.Option("ffhq512", help="Architecture of the EG3D decoder inside the file (a train preset)."),
    nrr: int = typer.Option(128, help="Neural rendering resolution (the public code fixes 128)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Convert a released TriPlaneNet (psp_encoder, triplanenet_encoder, the EG3D decoder) into one self-contained
    encoder checkpoint that encode loads and distill-encoder fine-tunes; nothing in the file is run.

    Example: gan3dkit convert triplanenet triplanenet_v2.pt --out tpn2.safetensors
    """
    from ..convert.encoders import write_encoder
    from ..convert.triplanenet import convert_triplanenet

    with progress_bar("converting", total=2, json_mode=json_out) as update:
        conv = convert_triplanenet(pt, preset=preset, nrr=nrr)
        update(1, 2)
        summary = write_encoder(conv, out, pt)
        update(2, 2)
    _report_encoder(summary, json_out, "gan3dkit encode photo.png --align --ckpt {out}")


KO_USE = "gan3dkit invert photo.png --ckpt G.safetensors --method ko {flag} {{out}}"


@app.command("ko-pose")
@handle_errors
def ko_pose(
    pt: Path = typer.Argument(..., help="Ko et al.'s pose_estimator.pt, pose_estimator_quat.pt or _afhq.pt."),
    out: Path = typer.Option(..., "--out", help="Output pose encoder (.safetensors)."),
    radius: float = typer.Option(2.7, help="Camera radius (Ko et al.: 2.7)."),
    focal: float = typer.Option(4.2647, help="Normalised focal of the predicted cameras (Ko et al.: 4.2647)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Convert a released pose estimator P (euler, quaternion or 6D) for invert --pose-encoder; nothing is run.

    Example: gan3dkit convert ko-pose pose_estimator_quat.pt --out P.safetensors
    """
    from ..convert.ko import convert_ko_pose

    _report_encoder(convert_ko_pose(pt, out, radius, focal), json_out, KO_USE.format(flag="--pose-encoder"))


@app.command("e4e")
@handle_errors
def e4e(
    pt: Path = typer.Argument(..., help="Ko et al.'s e4e_ffhq.pt / e4e_afhq.pt (or an e4e checkpoint)."),
    out: Path = typer.Option(..., "--out", help="Output latent encoder (.safetensors)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Convert a released e4e encoder (Ko et al.'s latent encoder E) for invert --latent-encoder; nothing is run.

    Example: gan3dkit convert e4e e4e_ffhq.pt --out E.safetensors
    """
    from ..convert.ko import convert_e4e

    _report_encoder(convert_e4e(pt, out), json_out, KO_USE.format(flag="--latent-encoder"))


@app.command("lp3d")
@handle_errors
def lp3d(
    pt: Path = typer.Argument(..., help="Live3DPortrait checkpoint (encoder_state_dict + renderer_state_dict)."),
    generator: Path = typer.Option(..., "--generator", help="The EG3D generator it was trained on, as a gan3dkit "
                                   "checkpoint (`gan3dkit convert eg3d-pkl ffhq512-128.pkl`)."),
    out: Path = typer.Option(..., "--out", help="Output encoder checkpoint (.safetensors)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Convert a released LP3D or LP3D-LT (Dong142857/Live3DPortrait; mode read from the shapes) into an encoder
    checkpoint that encode loads and distill-encoder fine-tunes; nothing in the file is run.

    Example: gan3dkit convert lp3d encoder_render.pt --generator ffhq512-128.safetensors --out lp3d.safetensors
    """
    from ..convert.encoders import write_encoder
    from ..convert.lp3d import convert_lp3d

    with progress_bar("converting", total=2, json_mode=json_out) as update, naming_source(pt):
        conv = convert_lp3d(pt, generator)
        update(1, 2)
        summary = write_encoder(conv, out, pt)
        update(2, 2)
    _report_encoder(summary, json_out, "gan3dkit encode photo.png --align --ckpt {out}")
