"""Which files of the repository are the materials an attendee's session pulls (as nbgitpuller would)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def is_session_file(relative: Path) -> bool:
    """Notebook outputs and editor leftovers are not part of the materials an attendee pulls."""
    return not any(part in ("output", ".ipynb_checkpoints", "__pycache__") or part.startswith(".")
                   for part in relative.parts)


def material_files(root: Path, folders: list[str]) -> list[Path]:
    """The files nbgitpuller would bring for these folders: tracked or committable, in their current state."""
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                             "--", *folders], capture_output=True, check=False)
    if listed.returncode == 0:
        paths = [Path(p) for p in listed.stdout.decode().split("\0") if p]
    else:  # not a git repository: everything but outputs and editor leftovers
        paths = [p.relative_to(root) for folder in folders for p in (root / folder).rglob("*") if p.is_file()]
    return sorted({p for p in paths if (root / p).is_file() and is_session_file(p)})
