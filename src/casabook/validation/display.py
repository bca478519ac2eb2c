"""The matrix's progress display: a line that names what each job is running, on casabook.progress."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from rich.console import Console
from rich.markup import escape

from casabook.progress import progress_bar
from casabook.validation.plan import Run

_STATUS_WIDTH = 120


@contextmanager
def matrix_progress(console: Console | None, total: int, done: int) -> Iterator[Callable[[str, Run, str], None]]:
    """An `event(kind, run, detail)` for the pool's "start", "cell" and "done" (detail: the status)."""
    active: dict[str, str] = {}
    with progress_bar(console, "validate", total, done=done) as bar:
        def event(kind: str, run: Run, detail: str) -> None:
            name = f"{Path(run.notebook).name} on {run.facility.name}"
            if kind == "done":
                active.pop(name, None)
                bar.advance()
                style = "green" if detail == "passed" else "red"
                bar.print(f"[{style}]{detail}[/] {escape(run.notebook)} on {run.facility.name}")
            else:
                active[name] = detail
            bar.status("; ".join(f"{n}{' ' + d if d else ''}" for n, d in active.items())[:_STATUS_WIDTH])

        yield event
