"""User-facing error classes: library code raises these, the CLI maps them to one-line messages and exit codes.

Exit codes (see `gan3dkit.cli.common.handle_errors`): 0 success, 1 bad data or a failed run (the input or the
state on disk is wrong, or training diverged), 2 usage (an option, a path or a combination of options is wrong).
Every message names the culprit (file, sample index, option) and says what to do.
"""

from __future__ import annotations

import math


class Gan3dkitError(Exception):
    """Base of the errors meant for people; `exit_code` is what the CLI exits with."""

    exit_code = 1


class UsageError(Gan3dkitError, ValueError):
    """An option, a path or a combination of options that cannot work (exit 2)."""

    exit_code = 2


class DataError(Gan3dkitError, ValueError):
    """Input data or files on disk that are wrong: corrupt, truncated, empty, invalid labels (exit 1)."""

    exit_code = 1


class RunError(Gan3dkitError, RuntimeError):
    """A run that cannot go on: training diverged, a device is missing, a state is not finite (exit 1)."""

    exit_code = 1


def check_number(name: str, value: float | None, *, gt: float | None = None, ge: float | None = None,
                 le: float | None = None, lt: float | None = None, allow_none: bool = False,
                 integer: bool = False) -> None:
    """Raise UsageError unless `value` is a finite number in the given range (`name` is the option or field)."""
    if value is None:
        if allow_none:
            return
        raise UsageError(f"{name} needs a value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise UsageError(f"{name} must be a finite number, got {value}")
    if integer and float(value) != int(value):
        raise UsageError(f"{name} must be an integer, got {value}")
    for bound, ok, text in ((gt, lambda b: value > b, ">"), (ge, lambda b: value >= b, ">="),
                            (lt, lambda b: value < b, "<"), (le, lambda b: value <= b, "<=")):
        if bound is not None and not ok(bound):
            raise UsageError(f"{name} must be {text} {bound:g}, got {value:g}")
