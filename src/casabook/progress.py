"""The one progress display for long work (rich), and its silent twin when there is no console.

Commands that run for more than a moment (fetching data, the validation matrix, a rehearsal crowd)
open a :func:`progress_bar`; code under it calls ``advance``, ``status`` and ``print`` and never
touches rich itself. With ``console=None`` (library use, tests) every call does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

Units = Literal["items", "bytes"]


class Bar:
    """One line of a progress display: a count (or bytes) done of a total, and a status text."""

    def __init__(self, progress: Progress | None, task: TaskID | None, total: float | None = None) -> None:
        self._progress, self._task, self._total = progress, task, total

    def advance(self, amount: float = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, amount)

    def status(self, text: str) -> None:
        """The text at the end of the line (what is running now); plain text, not markup."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, status=escape(text))

    def total(self, total: float) -> None:
        """The line's size, once known (work whose size a first step finds out)."""
        self._total = total
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total)

    def finish(self, total: float | None = None) -> None:
        """Mark the line complete (with its real total, for work whose size was unknown)."""
        if self._progress is not None and self._task is not None:
            final = total if total is not None else (self._total if self._total is not None else 1)
            self._progress.update(self._task, total=final, completed=final)

    def print(self, markup: str) -> None:
        """A line above the display that stays when the display goes (rich markup)."""
        if self._progress is not None:
            self._progress.console.print(markup, highlight=False, soft_wrap=True)

    def line(self, label: str, total: float | None = None) -> Bar:
        """Another line in the same display (one per download, say)."""
        if self._progress is None:
            return Bar(None, None)
        return Bar(self._progress, self._progress.add_task(escape(label), total=total, status=""), total)

    def remove(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.remove_task(self._task)


@contextmanager
def progress_bar(console: Console | None, label: str, total: float | None = None, *, done: float = 0,
                 units: Units = "items", transient: bool = True) -> Iterator[Bar]:
    """A progress display on `console` with one line, `label`, of `total` steps (None: unknown).

    ``transient`` removes the display when the work ends (what was printed above it stays).
    """
    if console is None:
        yield Bar(None, None)
        return
    count: Any = DownloadColumn() if units == "bytes" else MofNCompleteColumn()
    progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}[/]"), BarColumn(), count,
                        TimeElapsedColumn(), TextColumn("{task.fields[status]}"), console=console,
                        transient=transient)
    with progress:
        task = progress.add_task(escape(label), total=total, completed=done, status="")
        yield Bar(progress, task, total)
