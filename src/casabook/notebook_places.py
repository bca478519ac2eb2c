"""A place in a notebook said as a person finds it: the cell's number and its first words.

Used for what `casabook check` finds in the markdown and for the strict book build's warnings.

myst-nb parses a notebook as one document and numbers its lines (cell index + 1) * 10000 + 1 +
the line in the cell, counted from 0; docutils adds one more. So
`02-vector-hist-mplhep.ipynb:360002` is the first line of the 36th cell.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

CELL_STRIDE = 10_000  # myst_nb.core.nb_to_tokens: the pseudo line base of each cell
FIRST_WORDS = 40

_NOTEBOOK_LINE = re.compile(r"^(?P<file>[^:\s][^:]*\.ipynb):(?P<line>\d*):\s*(?:WARNING:\s*)?")


def cell_sources(notebook: Path) -> list[str] | None:
    """Each cell's source, read as JSON: nbformat's validation would warn about the notebook itself."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        return ["".join(cell.get("source", "")) for cell in cells]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def first_words(source: str) -> str:
    line = next((line.strip() for line in source.splitlines() if line.strip()), "")
    words = " ".join(line.split())
    return words if len(words) <= FIRST_WORDS else words[:FIRST_WORDS - 1].rstrip() + "…"


def place(cell: int, source: str, line: int) -> str:
    """'cell 36 (“## Fitting the peak”), line 1': cell and line counted from 1."""
    return f"cell {cell} (“{first_words(source)}”), line {line}"


def cell_place(sources: list[str], line: int) -> str | None:
    """The place a myst-nb line number names, or None if it names no cell."""
    index, within = divmod(line, CELL_STRIDE)
    index -= 1
    if not 0 <= index < len(sources) or within < 2:
        return None
    return place(index + 1, sources[index], within - 1)


def name_notebook_cells(line: str, root: Path) -> str:
    """A warning line with a notebook's encoded line number (or none) said as a place a person finds."""
    found = _NOTEBOOK_LINE.match(line)
    if not found:
        return line
    message, file, number = line[found.end():], found.group("file"), found.group("line")
    sources = cell_sources(root / file)
    if not sources:
        place = None
    elif number:
        place = cell_place(sources, int(number))
    else:
        place = _image_place(sources, message)
    if place is None and number:
        place = f"line {number}"
    return f"{file}: {place}: {message}" if place else f"{file}: {message}"


_UNREADABLE_IMAGE = re.compile(r"image file not readable: (\S+)")


def _image_place(sources: list[str], message: str) -> str | None:
    """Sphinx names an unreadable image without a line: the one cell that mentions its file, if any."""
    image = _UNREADABLE_IMAGE.search(message)
    if not image:
        return None
    name = Path(image.group(1)).name
    cells = [(index, source) for index, source in enumerate(sources) if name in source]
    if len(cells) != 1:
        return None
    index, source = cells[0]
    line = next(number for number, text in enumerate(source.splitlines(), 1) if name in text)
    return place(index + 1, source, line)
