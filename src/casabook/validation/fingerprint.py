"""The hashes a run's cache key is made of (a notebook's cells, the files beside it, any JSON value)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from casabook.validation.materials import is_session_file
from casabook.validation.notebooks import cell_source, declared_kernel


def digest(data: Any) -> str:
    """A stable hash of any JSON-like value (keys sorted, so dict order does not matter)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def notebook_fingerprint(nb: dict[str, Any]) -> str:
    """A hash of what the notebook asks a kernel to do: cells without outputs, counts or run metadata."""
    cells = [{"type": cell.get("cell_type"), "source": cell_source(cell),
              "tags": sorted(cell.get("metadata", {}).get("tags", [])), "attachments": cell.get("attachments")}
             for cell in nb["cells"]]
    return digest({"kernelspec": declared_kernel(nb), "cells": cells})


def folder_fingerprint(folder: Path) -> str:
    """Files next to the notebook (helper modules, small inputs) change what it does; other notebooks do not."""
    hashed = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and path.suffix != ".ipynb" and is_session_file(relative):
            hashed.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return hashed.hexdigest()
