"""Publish a finished build: copy it beside the output folder, then swap it in.

Sphinx keeps rebuilding in its own work folder (that is what makes rebuilds incremental), so a
failed or interrupted build never touches the published book. The copy is a real copy, not hard
links: Sphinx rewrites its files in place, which would change a hard-linked published file too.
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


def publish(built: Path, output: Path) -> None:
    check_output(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staged = output.parent / f".{output.name}.new-{os.getpid()}"
    retired = output.parent / f".{output.name}.old-{os.getpid()}"
    for leftover in (staged, retired):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        shutil.copytree(built, staged, ignore=shutil.ignore_patterns(".buildinfo"))
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
