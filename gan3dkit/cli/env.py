"""`gan3dkit env`: versions, device, backend policy, active ops backend (and `--check`: kernel self-checks)."""

from __future__ import annotations

from typing import Any

import typer

from .common import console, emit_json


def env(
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    check: bool = typer.Option(
        False, "--check", help="Run every compiled kernel's self-check against its reference on the CPU and each GPU."
    ),
) -> None:
    """Show versions, device, backend policy, which ops backend is active and which optional models are installed.

    With --check, also run each compiled op against its pure-PyTorch reference (forward, backward and, for the
    discriminator's ops, double backward) on the CPU and every visible GPU, and print the verdicts (re-run, not
    read from the cache). Needs the compiled core: build it first with `python3 -m gan3dkit.ops.build`.

    Example: gan3dkit env --check --json | python -c "import json,sys; print(json.load(sys.stdin)['selfcheck'])"
    """
    from ..ops.environment import environment_report

    info = environment_report(check)
    if json_out:
        emit_json(info)
        return
    _print_env(info)


def _print_env(info: dict[str, Any]) -> None:
    from rich.table import Table

    out = console()
    out.print(f"[bold]gan3dkit {info['gan3dkit']}[/] on Python {info['python']} ({info['platform']})")
    out.print("versions: " + ", ".join(f"{k} {v or '-'}" for k, v in info["versions"].items()))
    dev = info["device"]
    out.print(
        f"device: {'CUDA ' + ', '.join(dev['gpus']) if dev['cuda_available'] else 'CPU only'} "
        f"({dev['cpu_threads']} CPU threads)"
    )
    out.print(f"dataset format: {info['dataset_format']}")
    pol = info["backend_policy"]
    out.print(
        "backend policy (training, scoped): "
        + ", ".join(f"{k}={v}" for k, v in pol["training_policy"].items())
        + f"; pin_memory on cuda={pol['pin_memory']['cuda']}, cpu={pol['pin_memory']['cpu']}"
        + f"; process group cuda={pol['dist_backend']['cuda']}, cpu={pol['dist_backend']['cpu']}"
        + f"; flags now: {', '.join(f'{k}={v}' for k, v in pol['current_flags'].items())}"
    )
    ops = info["ops"]
    table = Table(title="ops backend (what impl='auto' runs per device)", show_lines=False)
    for col in ("op", "cpu", "cuda", "compiled available", "reason"):
        table.add_column(col)
    if "status" in ops:
        table.add_row("-", ops["status"], "", "", "")
    else:
        for name, row in ops.items():
            table.add_row(
                name,
                row.get("cpu", "?"),
                row.get("cuda", "?"),
                str(row.get("compiled_available", False)),
                row.get("reason", ""),
            )
    out.print(table)
    if "selfcheck" in info:
        _print_selfcheck(out, info["selfcheck"])
    opt = Table(title="optional packages")
    for col in ("package", "found", "provides"):
        opt.add_column(col)
    for row in info["optional"].values():
        opt.add_row(row["package"], "[green]yes[/]" if row["found"] else "[dim]no[/]", row["provides"])
    out.print(opt)


def _print_selfcheck(out: Any, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="kernel self-check (compiled vs reference)")
    for col in ("device", "op", "verdict", "max |err|", "seconds", "error"):
        table.add_column(col)
    for r in rows:
        verdict = {True: "[green]pass[/]", False: "[red]FAIL (disabled)[/]", None: "[dim]not run[/]"}[r["ok"]]
        err = max(r["max_abs_err"].values()) if r["max_abs_err"] else None
        table.add_row(f"{r['device']} ({r['capability']})", r["op"], verdict, "-" if err is None else f"{err:.1e}",
                      f"{r['seconds']:.2f}", r["error"])
    out.print(table)
