"""`gan3dkit quickstart`: the main job end to end on an embedded default (today: data -> validate -> picture)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import console, emit_json, handle_errors, progress_bar


@handle_errors
def quickstart(
    out: Path = typer.Option(Path("gan3dkit-quickstart"), "--out", help="Folder for everything the run makes."),
    num: int = typer.Option(256, min=1, help="Synthetic heads to render."),
    resolution: int = typer.Option(64, min=8, help="Image size."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Build a small synthetic heads dataset with true pose and depth, validate it, and draw its contents.

    Example: gan3dkit quickstart --out demo
    """
    from ..data.summary import contact_sheet, summarize
    from ..data.validate import validate_dataset
    from ..prepare.synthetic import build_synthetic
    from ..utils.files import atomic_save_png

    out.mkdir(parents=True, exist_ok=True)
    data = out / "heads.lmdb"
    with progress_bar("1/3 rendering synthetic heads", total=num, json_mode=json_out) as update:
        build_synthetic(data, family="heads", num=num, resolution=resolution, overwrite=True, resume=False,
                        command=f"gan3dkit quickstart --out {out}", progress=update)
    with progress_bar("2/3 validating", json_mode=json_out) as update:
        report = validate_dataset(data, progress=update)
    if not report.ok:
        raise ValueError(f"quickstart dataset failed validation: {report.bad[:3]} {report.errors}")
    sheet = out / "heads.png"
    atomic_save_png(sheet, contact_sheet(data, num=16))
    stats = summarize(data)["stats"]
    result = {"dataset": str(data), "contact_sheet": str(sheet), "count": report.count,
              "yaw_deg_std": stats["yaw_deg"]["std"], "pitch_deg_std": stats["pitch_deg"]["std"]}
    if json_out:
        emit_json(result)
        return
    c = console()
    c.print("[bold]3/3 done.[/] What the quickstart made:")
    c.print(f"  dataset        {data}  ({report.count} images, {resolution}x{resolution}, image/camera/depth/mask)")
    c.print(f"  contact sheet  {sheet}  (images, masks, depth; near = bright)")
    c.print(f"  camera spread  yaw std {stats['yaw_deg']['std']:.1f} deg, pitch std {stats['pitch_deg']['std']:.1f} deg")
    c.print(f"Next: gan3dkit data info {data} ; gan3dkit data export {data} --out {out / 'heads_eg3d.zip'}")
