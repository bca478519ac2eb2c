"""casabook.notebook_lint: what a strict book build would refuse in the notebooks' markdown, found
without building; and casabook.notebook_places: a place in a notebook said as its cell."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from casabook.model import load_workshop
from casabook.notebook_lint import lint_cells, lint_notebook, lint_workshop
from casabook.notebook_places import name_notebook_cells

REPO = Path(__file__).resolve().parents[1]

M, C = "markdown", "code"


@pytest.mark.parametrize("cells, expected", [
    pytest.param([(M, "# Title\n\n## Section\n\n### Sub")], [], id="clean-headings"),
    pytest.param([(M, "# Title"), (C, "x = 1"), (M, "Words first\n\n#### Too deep")],
                 ["cell 3 (“Words first”), line 3: h4 “Too deep” follows h1 “Title”: h2 skipped [heading-jump]"],
                 id="jump-across-cells-named-by-cell-and-first-words"),
    pytest.param([(M, "# Title\n\n## A\n\n### B\n\n## C\n\n#### D")],
                 ["cell 1 (“# Title”), line 9: h4 “D” follows h2 “C”: h3 skipped [heading-jump]"],
                 id="jump-after-going-back-up"),
    pytest.param([(M, "# Title\n\n## A\n\n### B\n\n# Next\n\n## C")], [], id="going-up-any-number-of-levels"),
    pytest.param([(M, "## Not a title\n\n### Below it")],
                 ["cell 1 (“## Not a title”), line 1: the first heading is h2 “Not a title”: a page starts at h1, "
                  "its title [heading-jump]"], id="first-heading-not-h1"),
    pytest.param([(M, "# Title"), (C, "# a comment, not a heading\n### nor this"),
                  (M, "```\n### code\n```\n\n$$\n# math\n$$")], [], id="code-and-math-are-not-headings"),
    pytest.param([(M, "# Title\n\nSee ![](plot.png) and ![the dimuon mass](plot.png).")],
                 ["cell 1 (“# Title”), line 3: the image plot.png has no alt text: write it between the brackets, "
                  "![what it shows](...) [image-alt]"], id="markdown-image-without-alt"),
    pytest.param([(M, "# Title\n\n<img src=\"plot.png\">\n\n<img src=\"plot.png\" alt=\"a plot\"/>")],
                 ["cell 1 (“# Title”), line 3: the image plot.png has no alt text: add alt=\"what it shows\" "
                  "[image-alt]"], id="html-image-without-alt"),
    pytest.param([(M, "# Title\n\n```{figure} plot.png\nThe caption\n```\n\n:::{image} plot.png\n:alt: a plot\n:::")],
                 ["cell 1 (“# Title”), line 3: the figure plot.png has no alt text: add an :alt: option [image-alt]"],
                 id="figure-directive-without-alt"),
    pytest.param([(M, "# Title\n\n![a plot](gone.png) ![remote](https://example.org/x.png)")],
                 ["cell 1 (“# Title”), line 3: the image gone.png does not exist (looked for gone.png beside the "
                  "notebook) [image-missing]"], id="missing-local-image"),
])
def test_markdown_problems(tmp_path: Path, cells, expected):
    (tmp_path / "plot.png").write_bytes(b"\x89PNG")
    found = lint_cells(cells, tmp_path, "notebooks/cms/01-nanoevents.ipynb")
    assert [problem.render().removeprefix("notebooks/cms/01-nanoevents.ipynb: ") for problem in found] == expected


def test_notebook_read_without_nbformat_and_problems_carry_their_place(tmp_path: Path):
    path = tmp_path / "old.ipynb"  # nbformat 4.5 without cell ids
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Title\n", "\n", "### Deep"]}]}))
    [problem] = lint_notebook(path, "notebooks/old.ipynb")
    assert (problem.notebook, problem.cell, problem.line, problem.rule) == ("notebooks/old.ipynb", 1, 3, "heading-jump")
    assert lint_notebook(tmp_path / "missing.ipynb", "missing.ipynb") == []


def test_repository_notebooks_are_clean():
    workshop = load_workshop(REPO)
    assert len({entry.path for track in workshop.tracks.values() for entry in track.notebooks}) > 5
    assert [problem.render() for problem in lint_workshop(workshop)] == []


def test_lint_workshop_reads_the_notebooks_the_tracks_list(tmp_path: Path):
    from casabook.testing.workshops import make_workshop

    root = make_workshop(tmp_path / "workshop", commit=False)
    name = "notebooks/cms/01-nanoevents.ipynb"
    for path in (name, "notebooks/cms/99-not-in-a-track.ipynb"):
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("## Starts at h2")])
        nbformat.write(notebook, root / path)
    assert [(p.notebook, p.rule) for p in lint_workshop(load_workshop(root))] == [(name, "heading-jump")]


NOTEBOOK = [{"cell_type": "markdown", "source": "# Title"},
            {"cell_type": "code", "source": "  \n\nimport awkward as ak"},
            {"cell_type": "markdown", "source": ["A long first line that goes on well past forty characters\n",
                                                 "![the plot](gone.png)"]}]


@pytest.mark.parametrize("line, expected", [
    pytest.param("nb.ipynb:20002: WARNING: No lexer", "nb.ipynb: cell 2 (“import awkward as ak”), line 1: No lexer",
                 id="encoded-line-named-as-cell-and-first-words"),
    pytest.param("nb.ipynb:30003: WARNING: x", "nb.ipynb: cell 3 (“A long first line that goes on well pas…”), "
                 "line 2: x", id="first-words-cut"),
    pytest.param("nb.ipynb:: WARNING: image file not readable: notebooks/gone.png",
                 "nb.ipynb: cell 3 (“A long first line that goes on well pas…”), line 2: image file not readable: "
                 "notebooks/gone.png", id="unreadable-image-placed-at-the-cell-naming-it"),
    pytest.param("nb.ipynb:: WARNING: image file not readable: notebooks/other.png",
                 "nb.ipynb: image file not readable: notebooks/other.png", id="no-line-and-no-cell-naming-it"),
    pytest.param("nb.ipynb:990002: WARNING: x", "nb.ipynb: line 990002: x", id="line-beyond-the-cells"),
    pytest.param("book/intro.md:12: WARNING: x", "book/intro.md:12: WARNING: x", id="not-a-notebook"),
])
def test_warning_places_in_notebooks_are_said_as_cells(tmp_path: Path, line, expected):
    (tmp_path / "nb.ipynb").write_text(json.dumps({"cells": NOTEBOOK}))
    assert name_notebook_cells(line, tmp_path) == expected
