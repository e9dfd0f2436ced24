"""CLI plumbing shared by commands: consoles, JSON output, progress bars, and clean errors for bad input."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

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



@contextlib.contextmanager
def items_progress(json_mode: bool = False) -> Iterator[tuple[Callable[[int, int, dict], None],
                                                              Callable[[str, int, int], None]]]:
    """Two bars on stderr, items and the current item's stage; yields `(on_item(done, total, report),
    on_stage(name, done, total))`."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err_console, transient=json_mode) as bar:
        items_task = bar.add_task("items", total=None)
        stage_task = bar.add_task("stage", total=None)

        def on_item(done: int, total: int, rep: dict) -> None:
            bar.update(items_task, completed=done, total=total)

        def on_stage(name: str, done: int, total: int) -> None:
            bar.update(stage_task, description=name, completed=done, total=total)

        yield on_item, on_stage

#: Exceptions that are a person's usage mistake in legacy code paths (library code raises UsageError instead).
_LEGACY_USAGE = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, KeyError)


def debug_enabled() -> bool:
    """True with the global `gan3dkit --debug` flag (read from the click context) or GAN3DKIT_DEBUG=1."""
    if os.environ.get("GAN3DKIT_DEBUG", "") not in ("", "0"):
        return True
    from typer.main import get_current_context  # typer's own click (it vendors one)

    ctx = get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().params.get("debug"))


def _click_errors() -> tuple[type, ...]:
    """Usage errors click/typer print themselves: typer 0.29 vendors its own click (``typer._click``) and does not
    install click; older typers use click itself. Whichever of the two is importable counts."""
    kinds: list[type] = []
    try:
        from typer._click.exceptions import ClickException as TyperClickException

        kinds.append(TyperClickException)
    except ImportError:
        pass
    try:
        import click

        kinds.append(click.ClickException)
    except ImportError:
        pass
    return tuple(kinds)


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code for a user-facing error (1 bad data / failed run, 2 usage), None for an unexpected one."""
    from ..utils.errors import Gan3dkitError

    if isinstance(exc, Gan3dkitError):
        return exc.exit_code
    data_like: list[type] = [UnicodeError, json.JSONDecodeError, zipfile.BadZipFile, EOFError, MemoryError]
    for module, name in (("gan3dkit.cameras.camera", "CameraError"), ("lmdb", "Error"),
                         ("gan3dkit.train.checkpoint", "CheckpointError"), ("torch.cuda", "OutOfMemoryError")):
        mod = sys.modules.get(module)  # a class from a module never imported cannot have been raised
        if mod is not None and hasattr(mod, name):
            data_like.append(getattr(mod, name))
    if isinstance(exc, tuple(data_like)):
        return 1
    if isinstance(exc, _LEGACY_USAGE):
        return 2
    if isinstance(exc, OSError):  # disk full, permission denied, I/O error: the message names the file
        return 1
    return None


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (a DataLoader worker's wrapped traceback reduced to its last line)."""
    msg = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    if "Original Traceback" in msg:  # torch re-raises worker errors with the worker's traceback in the message
        last = [line for line in msg.splitlines() if line.strip()][-1]
        head, sep, rest = last.partition(": ")
        msg = rest if sep and " " not in head else last
    if isinstance(exc, MemoryError) and not msg:
        msg = "out of memory; use smaller batches/resolution or fewer --workers"
    return " ".join(part.strip() for part in msg.splitlines() if part.strip()) or type(exc).__name__


def report_error(exc: BaseException) -> int:
    """Print the one-line message for `exc` on stderr and return the exit code to use."""
    code = exit_code_for(exc)
    if code is None:
        err_console.print(f"[bold red]error:[/] unexpected {type(exc).__name__}: {one_line(exc)} (a bug in gan3dkit? "
                          "rerun with `gan3dkit --debug ...` for the traceback and report it)",
                          highlight=False, soft_wrap=True)
        return 1
    err_console.print(f"[bold red]error:[/] {one_line(exc)}", highlight=False, soft_wrap=True)
    return code


def handle_errors(fn: F) -> F:
    """Decorator for every command: errors become ONE red line on stderr and an exit code, never a traceback.

    Exit codes: 1 for bad data or a failed run (`DataError`, `RunError`, camera/checkpoint/LMDB/zip errors, I/O
    errors), 2 for usage errors (`UsageError` and, in older code paths, ValueError / missing or existing files),
    130 for Ctrl-C (rerun the command to resume). Anything else is reported as an unexpected error (exit 1).
    `gan3dkit --debug ...` (or GAN3DKIT_DEBUG=1) re-raises instead, with the full traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            if debug_enabled():
                raise
            err_console.print("[bold red]interrupted[/]: rerun the same command to resume", highlight=False)
            raise typer.Exit(code=130) from None
        except Exception as exc:
            if isinstance(exc, _click_errors()) or debug_enabled():
                raise
            raise typer.Exit(code=report_error(exc)) from None

    return wrapper  # type: ignore[return-value]


def number_option(*, gt: float | None = None, ge: float | None = None, le: float | None = None,
                  lt: float | None = None, integer: bool = False) -> Callable[[Any], Any]:
    """A typer option callback: the value (when given) must be finite and in range, else a usage error (exit 2).

    Example: `kimg: float | None = typer.Option(None, callback=number_option(gt=0))`.
    """
    from ..utils.errors import UsageError, check_number

    def callback(value: Any) -> Any:
        if value is None:
            return value
        try:
            check_number("the value", value, gt=gt, ge=ge, le=le, lt=lt, integer=integer)
        except UsageError as exc:
            raise typer.BadParameter(str(exc)) from None
        return value

    return callback


def resume_notice(out: Path, resume: bool, json_mode: bool = False) -> None:
    """Say 'resuming from N' when a dataset build will continue an interrupted `<out>.partial`."""
    if not resume:
        return
    from ..data.writer import partial_progress

    done = partial_progress(out)
    if done is not None:
        console(json_mode).print(f"resuming from {done} samples already in {out}.partial "
                                 "(--restart discards them)", highlight=False)
