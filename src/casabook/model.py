"""Typed Track / Facility / Workshop objects, and the one loader."""

from __future__ import annotations

from pathlib import Path

from casabook.errors import CasabookError


def find_root(start: Path | None = None) -> Path:
    """The workshop repository: the nearest folder at or above `start` holding tracks/ and hub-config/."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "tracks").is_dir() and (folder / "hub-config").is_dir():
            return folder
    raise CasabookError(
        "no-workshop",
        f"no workshop repository at or above {here}: expected folders tracks/ and hub-config/ (use --root)",
    )
