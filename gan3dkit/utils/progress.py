"""Progress-bar factories: the CLI passes one into a library entry point, which opens a bar per long stage."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

#: `update(done, total)`.
Update = Callable[[int, int], None]
#: `bars(description, total)` -> a context yielding `update` (total None: unknown).
Bars = Callable[[str, "int | None"], AbstractContextManager[Update]]


@contextlib.contextmanager
def no_bars(description: str, total: int | None = None) -> Iterator[Update]:
    """The silent `Bars`: library callers that want no progress display."""
    yield lambda done, total_: None
