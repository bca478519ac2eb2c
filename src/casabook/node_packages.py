"""Where the npm packages of package.json are installed (`npm ci`): found by Node's own rule.

Node looks for `node_modules/<name>` in a folder and then in each of its parents. casabook looks
from the workshop's root first, then from casabook's own source folder, so a workshop kept outside
casabook's checkout still finds the packages installed beside casabook.
"""

from __future__ import annotations

from pathlib import Path

import casabook
from casabook.errors import CasabookError

PACKAGE_FILE = "package.json"


def _searched(*starts: Path) -> list[Path]:
    folders: list[Path] = []
    for start in (*starts, Path(casabook.__file__).parent):
        for folder in (start.resolve(), *start.resolve().parents):
            if folder not in folders:
                folders.append(folder)
    return folders


def find_node_package(name: str, *starts: Path) -> Path | None:
    """The folder of the installed npm package `name` (e.g. "mathjax"), or None when it is not installed."""
    return next((folder / "node_modules" / name for folder in _searched(*starts)
                 if (folder / "node_modules" / name / PACKAGE_FILE).is_file()), None)


def node_package(name: str, root: Path) -> Path:
    """The folder of the installed npm package `name`; a CasabookError saying how to install it if it is not."""
    found = find_node_package(name, root)
    if found is None:
        raise CasabookError("no-node-package", f"the npm package {name} is not installed: run `npm ci` in "
                            f"{root} (package.json locks it)", file=PACKAGE_FILE)
    return found
