"""Throw-away workshops for tests: the repository's real track and facility files, with small notebooks.

Tests that break a file on purpose work on a copy, so a mistake can never reach the real repository.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nbformat
import yaml

REPO = Path(__file__).resolve().parents[1]


def tiny_notebook(source: str = "print('hello')", kernel: str = "python3") -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3 (ipykernel)", "language": "python"}
    notebook.cells = [nbformat.v4.new_markdown_cell("# A notebook"), nbformat.v4.new_code_cell(source)]
    return notebook


def make_workshop(root: Path, *, commit: bool = True) -> Path:
    """Copy tracks/ and hub-config/ into `root` and write a tiny notebook for every listed path."""
    for folder in ("tracks", "hub-config"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    for track_file in (root / "tracks").glob("*.yml"):
        for entry in yaml.safe_load(track_file.read_text())["notebooks"]:
            path = root / entry["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(tiny_notebook(), path)
    if commit:
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "materials")
    return root


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=casabook tests", "-c", "user.email=tests@casabook.invalid", *args],
        check=True, capture_output=True, text=True,
    ).stdout


def edit_yaml(path: Path, change) -> None:
    """Load, let `change(data)` edit it in place, write back."""
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
