"""What a strict book build would refuse, or a reader would miss, in the notebooks' markdown, found without building.

    lint_notebook(path, name) -> [Problem]    lint_workshop(workshop) -> [Problem]

- heading-jump: a heading more than one level below the one it follows (h2 then h4), or a
  notebook whose first heading is not h1. myst-parser warns about both and the strict build fails.
- image-alt: an image without alt text (`![](plot.png)`, `<img src=...>`, an image or figure
  directive without :alt:): a screen reader says only its file name.
- image-missing: a local image file that does not exist: the strict build fails on it.

The markdown is read with myst-parser's own parser, so what it takes as code, math or a directive
is not mistaken for a heading or an image.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from casabook.model import Workshop
from casabook.notebook_places import first_words, place

# The extensions of book/_config.yml that change what is a heading or an image.
MYST_EXTENSIONS = {"colon_fence", "dollarmath", "amsmath"}
_IMAGE_DIRECTIVE = re.compile(r"^\{(image|figure)\}\s*(\S*)")


@dataclass(frozen=True)
class Problem:
    notebook: str  # as the track files name it: notebooks/cms/01-nanoevents.ipynb
    cell: int  # counted from 1, markdown and code cells alike
    cell_start: str  # the cell's first words, to find it by
    line: int  # within the cell, from 1
    rule: str
    message: str

    @property
    def place(self) -> str:
        return place(self.cell, self.cell_start, self.line)

    def render(self) -> str:
        return f"{self.notebook}: {self.place}: {self.message} [{self.rule}]"


@dataclass(frozen=True)
class _Heading:
    level: int
    text: str


class _Images(HTMLParser):
    """The <img> elements of raw HTML in markdown, with their attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append({name: value or "" for name, value in attrs})

    handle_startendtag = handle_starttag


def _parser():
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    return create_md_parser(MdParserConfig(enable_extensions=MYST_EXTENSIONS), RendererHTML)


def _html_images(html: str) -> list[dict[str, str]]:
    parser = _Images()
    parser.feed(html)
    parser.close()
    return parser.images


def _is_local(src: str) -> bool:
    return bool(src) and "://" not in src and not src.startswith(("data:", "attachment:", "#", "/"))


class _Cell:
    """The problems found in one markdown cell, each placed at the line of the token it is in."""

    def __init__(self, name: str, index: int, source: str, problems: list[Problem]) -> None:
        self.name, self.index, self.source, self.problems = name, index, source, problems

    def report(self, token, rule: str, message: str) -> None:
        line = token.map[0] + 1 if token.map else 1
        self.problems.append(Problem(self.name, self.index + 1, first_words(self.source), line, rule, message))


def _heading_jump(open_headings: list[_Heading], heading: _Heading) -> str | None:
    """myst-parser's rule: a heading nests in the deepest open one above its level, at most one below it."""
    parent = max((h for h in open_headings if h.level < heading.level), key=lambda h: h.level, default=None)
    if heading.level <= (parent.level if parent else 0) + 1:
        return None
    if parent is None:
        return f"the first heading is h{heading.level} “{heading.text}”: a page starts at h1, its title"
    return f"h{heading.level} “{heading.text}” follows h{parent.level} “{parent.text}”: h{parent.level + 1} skipped"


def lint_cells(sources: list[tuple[str, str]], folder: Path, name: str) -> list[Problem]:
    """Problems in a notebook's cells, given as (cell type, source); images are looked for in `folder`."""
    parser = _parser()
    problems: list[Problem] = []
    open_headings: list[_Heading] = []  # myst-nb reads a notebook as one document: headings span cells
    for index, (cell_type, source) in enumerate(sources):
        if cell_type != "markdown":
            continue
        cell = _Cell(name, index, source, problems)
        tokens = parser.parse(source, {})
        for position, token in enumerate(tokens):
            report = functools.partial(cell.report, token)
            if token.type == "heading_open":
                heading = _Heading(int(token.tag[1:]), first_words(tokens[position + 1].content))
                if jump := _heading_jump(open_headings, heading):
                    report("heading-jump", jump)
                open_headings = [h for h in open_headings if h.level < heading.level] + [heading]
            elif token.type == "inline":
                for child in token.children or []:
                    if child.type == "image":
                        src = str(child.attrs.get("src", ""))
                        if not child.content.strip():
                            report("image-alt", f"the image {src} has no alt text: write it between the "
                                   "brackets, ![what it shows](...)")
                        _check_file(folder, src, report)
                    elif child.type == "html_inline":
                        _check_html(child.content, folder, report)
            elif token.type == "html_block":
                _check_html(token.content, folder, report)
            elif token.type in ("fence", "colon_fence") and (directive := _IMAGE_DIRECTIVE.match(token.info)):
                kind, src = directive.groups()
                if not re.search(r"^\s*:alt:\s*\S", token.content, re.MULTILINE):
                    report("image-alt", f"the {kind} {src} has no alt text: add an :alt: option")
                _check_file(folder, src, report)
    return problems


def _check_file(folder: Path, src: str, report) -> None:
    path = src.split("#")[0].split("?")[0]
    if _is_local(path) and not (folder / path).is_file():
        report("image-missing", f"the image {src} does not exist (looked for {path} beside the notebook)")


def _check_html(html: str, folder: Path, report) -> None:
    for image in _html_images(html):
        src = image.get("src", "")
        if not image.get("alt", "").strip():
            report("image-alt", f"the image {src} has no alt text: add alt=\"what it shows\"")
        _check_file(folder, src, report)


def lint_notebook(path: Path, name: str) -> list[Problem]:
    """Problems in the markdown cells of the notebook at `path` (`name`: how the track files name it).

    Read as JSON, not through nbformat: its validation warnings are no business of this check, and
    a notebook nbformat refuses is reported by `casabook check`'s nbformat check.
    """
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        sources = [(cell.get("cell_type", ""), "".join(cell.get("source", ""))) for cell in cells]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
    return lint_cells(sources, path.parent, name)


def lint_workshop(workshop: Workshop) -> list[Problem]:
    """Problems in every notebook the tracks list, in the tracks' order."""
    return [problem for track in workshop.tracks.values() for entry in track.notebooks
            for problem in lint_notebook(workshop.root / entry.path, entry.path)]
