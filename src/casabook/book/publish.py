"""Publish a finished build: copy it beside the output folder, then swap it in.

Sphinx keeps rebuilding in its own work folder (that is what makes rebuilds incremental), so a
failed or interrupted build never touches the published book. Files come from the work folder as
real copies, never hard links to it: Sphinx rewrites its files in place, which would change a
hard-linked published file too. A file unchanged since the last publish (same size and time,
which the copy keeps) is hard-linked from the published book instead: published files are never
written in place, so sharing them between the old and the new folder is safe, and a rebuild
after one edit copies a few files instead of the whole book.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from casabook.errors import CasabookError

MARKER = ".casabook-book"


def check_output(output: Path) -> None:
    """Refuse an output folder that holds something other than a casabook book: it would be replaced."""
    if output.exists() and not output.is_dir():
        raise CasabookError("output-not-folder", f"{output} is a file; --output takes a folder", key="--output")
    if output.is_dir() and not (output / MARKER).exists() and any(output.iterdir()):
        raise CasabookError("output-not-book",
                            f"{output} is not empty and holds no casabook book; it would be replaced: "
                            "choose a new or empty folder", key="--output")


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns


def _assemble(built: Path, previous: Path | None, staged: Path) -> None:
    """Lay the built book out in `staged`, sharing unchanged files with the previous published book."""
    for folder, subfolders, files in os.walk(built):
        relative = Path(folder).relative_to(built)
        (staged / relative).mkdir(parents=True, exist_ok=True)
        subfolders.sort()
        for name in files:
            if relative == Path(".") and name == ".buildinfo":
                continue
            source, target = Path(folder) / name, staged / relative / name
            old = previous / relative / name if previous else None
            if old is not None and old.is_file() and _same_file(old.stat(), source.stat()):
                try:
                    os.link(old, target)
                    continue
                except OSError:
                    pass  # another file system, or no hard links there: copy instead
            shutil.copy2(source, target)


def publish(built: Path, output: Path) -> None:
    check_output(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staged = output.parent / f".{output.name}.new-{os.getpid()}"
    retired = output.parent / f".{output.name}.old-{os.getpid()}"
    for leftover in (staged, retired):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        _assemble(built, output if output.is_dir() else None, staged)
        (staged / MARKER).write_text("A book built by casabook; `casabook book` replaces this folder whole.\n")
        if output.exists():
            output.rename(retired)
            try:
                staged.rename(output)
            except OSError:
                retired.rename(output)
                raise
        else:
            staged.rename(output)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)
