"""`gan3dkit weights list|add|fetch`: the registry of pretrained files, the cache, and sha256 checks."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import console, emit_json, handle_errors

app = typer.Typer(
    help="Pretrained files gan3dkit knows (backbones, LPIPS, ArcFace, Inception, released checkpoints): what uses "
    "them, where they come from, whether they are cached and verified.\n\nExample: gan3dkit weights add "
    "resnet34-b627a593.pth",
    no_args_is_help=True,
)


@app.command("list")
@handle_errors
def list_(
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Hash cached files (slow for large files)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Every registered file: name, used by, URL or page, sha256 (or unknown), size, licence, cached, verified.

    Example: gan3dkit weights list --json
    """
    from ..metrics.weight_registry import registry, status

    rows = [status(k, e, verify) for k, e in registry().items()]
    if json_out:
        emit_json({"weights": rows})
        return
    c = console()
    for r in rows:
        if r["package"] and not r["cached"]:
            state = f"in package {r['package']}"
        elif not r["cached"]:
            state = "not cached"
        else:
            state = {True: "cached, verified", False: "cached, SHA256 MISMATCH",
                     None: "cached"}.get(r["verified"], f"cached ({r['verified']})")
        sha = r["sha256"] if r["sha256"] == "unknown" else r["sha256"][:16]
        c.print(f"[bold]{r['name']}[/] ({r['file']}): {state}; used by {r['used_by']}; sha256 {sha}; size "
                f"{r['size']}; licence {r['licence']}; {r['url'] or 'no URL (supply the file)'}", soft_wrap=True)


@app.command("add")
@handle_errors
def add(
    file: Path = typer.Argument(..., help="A weight file you downloaded (checked against the registry)."),
    name: str | None = typer.Option(None, help="Registry name, when neither the digest nor the file name tells."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Check a file against the registry (sha256) and copy it into the cache, where every command finds it.

    Example: gan3dkit weights add ~/Downloads/model_ir_se50.pth
    """
    from ..metrics.weight_registry import add as add_file

    res = add_file(file, name)
    if json_out:
        emit_json(res)
        return
    console().print(f"[green]added[/] {res['name']} -> {res['cached']} ({res['verified']})", soft_wrap=True)


@app.command("fetch")
@handle_errors
def fetch(
    name: str = typer.Argument(..., help="Registry name (see `gan3dkit weights list`)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Download a registered file into the cache and verify it (files without a direct URL say where to get them).

    Example: gan3dkit weights fetch alexnet
    """
    from ..metrics.weight_registry import fetch_entry

    res = fetch_entry(name)
    if json_out:
        emit_json(res)
        return
    console().print(f"[green]ok[/] {name}: {res['path']} (sha256 {res['sha256'][:16]}…)", soft_wrap=True)
