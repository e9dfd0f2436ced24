"""What a training run prints on stderr: the resume notice, a progress bar and one line per tick (main process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Report:
    """Prints nothing unless asked: `bar` shows the progress bar and notices, `ticks` one line per tick."""

    def __init__(self, label: str, bar: bool, ticks: bool) -> None:
        self.label, self.show_bar, self.show_ticks = label, bar, ticks
        self._console = None
        if bar or ticks:
            from rich.console import Console

            self._console = Console(stderr=True)
        self._progress: Any = None

    def resumed(self, step: int, nimg: int, tick: int, ckpt: Path) -> None:
        """Say where a resumed run continues from."""
        if self._console is not None and self.show_bar:
            self._console.print(f"resuming from step {step} (kimg {nimg / 1000:.3f}, tick {tick}) in {ckpt} "
                                "(--restart starts over)", highlight=False)

    def tick(self, line: str) -> None:
        if self._console is not None and self.show_ticks:
            target = self._progress.console if self._progress is not None else self._console
            target.print(line, highlight=False)

    @contextmanager
    def bar(self, done: int, total: int) -> Iterator[Callable[[int], None]]:
        """A rich progress bar from `done` to `total`; yields `advance(done)`."""
        if not self.show_bar:
            yield lambda done: None
            return
        from rich import progress as rp

        columns = [rp.TextColumn(f"[bold]{self.label}[/]"), rp.BarColumn(), rp.MofNCompleteColumn(),
                   rp.TimeElapsedColumn(), rp.TextColumn("eta"), rp.TimeRemainingColumn()]
        with rp.Progress(*columns, console=self._console) as progress:
            self._progress = progress
            task = progress.add_task(self.label, total=total, completed=done)
            try:
                yield lambda n: progress.update(task, completed=min(n, total))
            finally:
                self._progress = None
