"""CLI plumbing shared by commands: consoles, JSON output, progress bars, and clean errors for bad input."""

from __future__ import annotations

import contextlib
import functools
import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

F = TypeVar("F", bound=Callable[..., Any])

RESUME_HELP = "Continue an interrupted run (<out>.partial with the same settings); --restart discards it."
# Options shared by the dataset-building commands (declared once, used as parameter annotations).
OverwriteOpt = Annotated[bool, typer.Option(help="Replace an existing dataset at --out.")]
ResumeOpt = Annotated[bool, typer.Option("--resume/--restart", help=RESUME_HELP)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DatasetOutOpt = Annotated[Path, typer.Option("--out", help="Output dataset directory (LMDB), e.g. heads.lmdb.")]

#: Human output; goes to stderr when --json is given so stdout stays machine-readable.
err_console = Console(stderr=True)


def console(json_mode: bool = False) -> Console:
    return err_console if json_mode else Console()


def emit_json(obj: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def command_line() -> str:
    """The command as typed (for provenance records)."""
    return " ".join(shlex.quote(a) for a in ["gan3dkit", *sys.argv[1:]])


@contextlib.contextmanager
def progress_bar(
    description: str, total: int | None = None, json_mode: bool = False
) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr; yields `update(done, total)`."""
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err_console, transient=json_mode) as bar:
        task = bar.add_task(description, total=total)

        def update(done: int, total_: int) -> None:
            bar.update(task, completed=done, total=total_)

        yield update


def handle_errors(fn: F) -> F:
    """Turn bad-input exceptions (ValueError family, missing/existing files) into a red message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, KeyError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            err_console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]
