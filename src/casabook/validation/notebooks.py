"""Notebooks read as plain JSON, with accessors for the parts of a cell the validator looks at.

Reading JSON rather than nbformat keeps a fully cached run free of nbformat's import cost; the
accessors take a plain dict or an nbformat node alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from casabook.errors import CasabookError


def read_notebook(root: Path, path: str) -> dict[str, Any]:
    """The notebook at `root`/`path` as JSON; a file that is not a notebook is a user mistake."""
    try:
        data = json.loads((root / path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CasabookError("bad-notebook", f"not a readable notebook: {error}", file=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise CasabookError("bad-notebook", "not a notebook: expected a JSON object with a 'cells' list", file=path)
    return data


def cell_source(cell: Mapping[str, Any]) -> str:
    """A cell's source as one string (notebook files may store it as a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def cell_tags(cell: Mapping[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def declared_kernel(nb: Mapping[str, Any]) -> str | None:
    """The kernel the notebook's metadata names, if any."""
    return (nb.get("metadata", {}).get("kernelspec") or {}).get("name")
