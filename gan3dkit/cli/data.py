"""`gan3dkit data info|validate|export`: inspect, check and convert gan3dkit LMDB datasets."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import command_line, console, emit_json, err_console, handle_errors, progress_bar

app = typer.Typer(help="Inspect, validate and export gan3dkit LMDB datasets.", no_args_is_help=True)


@app.command()
@handle_errors
def info(
    path: Path = typer.Argument(..., help="Dataset directory (LMDB)."),
    grid: Path | None = typer.Option(None, help="Write a contact sheet PNG (images, masks, depth) here."),
    num: int = typer.Option(16, min=1, help="Samples in the contact sheet."),
    max_samples: int = typer.Option(10000, min=1, help="Samples used for camera statistics (evenly spaced)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Show a dataset's meta record, camera statistics and (with --grid) a picture of its first samples.

    Example: gan3dkit data info heads.lmdb --grid heads.png
    """
    from ..data.summary import contact_sheet, summarize
    from ..utils.files import atomic_save_png

    summary = summarize(path, max_samples=max_samples)
    if json_out:
        for warning in summary["warnings"]:
            err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if grid is not None:
        atomic_save_png(grid, contact_sheet(path, num))
        summary["grid"] = str(grid)
    if json_out:
        emit_json(summary)
        return
    _print_summary(path, summary, grid)


def _print_summary(path: Path, summary: dict, grid: Path | None) -> None:
    from rich.table import Table

    meta, stats = summary["meta"], summary["stats"]
    out = console()
    out.print(f"[bold]{path}[/]  {meta['format']} v{meta['format_version']}")
    out.print(
        f"{meta['count']} samples, {meta['resolution']}x{meta['resolution']}x{meta['channels']}, "
        f"fields: {', '.join(meta['fields'])}"
    )
    prior = meta.get("pose_prior")
    out.print(f"pose prior: {prior['name'] if prior else 'none recorded'}; cameras: "
              f"{meta.get('camera_source', 'unknown (format 1.0)')}")
    prov = meta["provenance"]
    out.print(f"made by gan3dkit {prov['gan3dkit_version']} at {prov['created']} from {prov['source'] or '?'}")
    if prov.get("command"):
        out.print(f"command: {prov['command']}", highlight=False, soft_wrap=True)
    if "yaw_deg" in stats:
        table = Table(title=f"cameras ({stats['sampled']} samples)")
        for col in ("", "mean", "std", "min", "max"):
            table.add_column(col, justify="right")
        for key in ("yaw_deg", "pitch_deg", "roll_deg", "radius", "focal"):
            s = stats[key]
            table.add_row(key, *(f"{s[k]:.4g}" for k in ("mean", "std", "min", "max")))
        out.print(table)
    if grid is not None:
        out.print(f"contact sheet: {grid}")
    for warning in summary["warnings"]:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


@app.command()
@handle_errors
def validate(
    path: Path = typer.Argument(..., help="Dataset directory (LMDB)."),
    show: int = typer.Option(20, min=0, help="Bad samples to list in the human output."),
    json_out: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
) -> None:
    """Decode every sample and check every camera; list bad indices. Exit code 1 if anything is wrong.

    Example: gan3dkit data validate heads.lmdb --json > report.json
    """
    from ..data.validate import validate_dataset

    with progress_bar("validating", json_mode=json_out) as update:
        report = validate_dataset(path, progress=update)
    if json_out:
        emit_json(report.to_dict())
    else:
        out = console()
        for err in report.errors:
            out.print(f"[red]error:[/] {err}", highlight=False, soft_wrap=True)
        for warn in report.warnings:
            out.print(f"[yellow]warning:[/] {warn}", highlight=False, soft_wrap=True)
        for bad in report.bad[:show]:
            out.print(f"[red]sample {bad['index']}:[/] " + "; ".join(bad["problems"]), highlight=False, soft_wrap=True)
        if len(report.bad) > show:
            out.print(f"... and {len(report.bad) - show} more bad samples (use --json for all)")
        verdict = "[green]valid[/]" if report.ok else "[red]INVALID[/]"
        out.print(f"{path}: {verdict} ({report.checked}/{report.count} samples checked, {len(report.bad)} bad)")
    if not report.ok:
        raise typer.Exit(code=1)


@app.command()
@handle_errors
def export(
    path: Path = typer.Argument(..., help="Dataset directory (LMDB)."),
    out: Path = typer.Option(..., "--out", help="EG3D dataset: a .zip (uncompressed) or a folder."),
    overwrite: bool = typer.Option(False, help="Replace an existing output."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Export to EG3D's format: PNG images + dataset.json with the 25-float labels (train with NVIDIA's code).

    Example: gan3dkit data export heads.lmdb --out heads_eg3d.zip
    """
    from ..data.eg3d_zip import export_eg3d

    with progress_bar("exporting", json_mode=json_out) as update:
        result = export_eg3d(path, out, overwrite=overwrite, progress=update)
    if json_out:
        emit_json({"out": str(result), "command": command_line()})
    else:
        console().print(f"wrote {result}")
