"""Throw-away workshops for tests and benchmarks: the repository's real track and facility files, with small notebooks.

Tests that break a file on purpose work on a copy, so a mistake can never reach the real repository.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nbformat
import yaml

# The checkout this package runs from (casabook is installed editable for its tests): src/casabook/testing/.
REPO = Path(__file__).resolve().parents[3]


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


def runnable_workshop(root: Path) -> Path:
    """make_workshop, plus what running the local hub from it takes: the repository's JupyterHub
    config and its configurable-http-proxy (node_modules, linked)."""
    make_workshop(root)
    shutil.copy(REPO / "hub-config" / "jupyterhub_config.py", root / "hub-config")
    (root / "node_modules").symlink_to(REPO / "node_modules")
    return root


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=casabook tests", "-c", "user.email=tests@casabook.invalid", *args],
        check=True, capture_output=True, text=True,
    ).stdout


WORKSHOP_FOLDERS = ("tracks", "hub-config", "book", "notebooks")


def copy_workshop(target: Path) -> Path:
    """The repository's tracks, facilities, book and notebooks (as git sees them, edits included),
    committed in a new repository at `target`, with the sample data and node_modules linked in.

    A copy, so launch links point at a repository the local hub can pull over file:// and the
    developer's own build folders are left alone.
    """
    listed = git(REPO, "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *WORKSHOP_FOLDERS)
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    # What `make` installs and `casabook data fetch` fetches, shared rather than installed again.
    for installed in (".casabook/data", "node_modules"):
        if (REPO / installed).is_dir():
            (target / installed).parent.mkdir(parents=True, exist_ok=True)
            (target / installed).symlink_to(REPO / installed)
    (target / ".gitignore").write_text(".casabook/\nnode_modules\n")
    git(target, "init", "-q", "-b", "main")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "The workshop materials")
    return target


def edit_yaml(path: Path, change) -> None:
    """Load, let `change(data)` edit it in place, write back."""
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
