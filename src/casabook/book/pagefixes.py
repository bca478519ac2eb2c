"""Fixes to every page of the book, loaded with the launch-button extension.

- Plots get an alt text (accessibility): myst-nb leaves notebook output images without one.
- Link URLs are unescaped where myst-parser escapes them (its issue 760), which breaks query strings.
- When the navigation changes (the table of contents or a page title), every page is rewritten,
  not only the re-read ones: each page carries the whole sidebar and its neighbours' titles.

The last two, and skipping Sphinx's redundant rewrites of toctree parents, work around upstream
behaviour: they live in casabook.upstream, each guarded by the versions known to need it.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.application import Sphinx

from casabook import __version__
from casabook.upstream.myst_parser import unescape_link_urls
from casabook.upstream.sphinx import rewrite_all_when_navigation_changes, skip_parent_rewrites


def _enclosing(node: nodes.Node, predicate) -> nodes.Node | None:
    while node is not None and not predicate(node):
        node = node.parent
    return node


def fill_image_alt(app: Sphinx, doctree: nodes.document) -> None:
    """Give notebook output images (plots) an alt text naming the page, section and cell.

    myst-nb leaves alt empty unless a cell sets it, and the HTML writer then falls back to the
    image's file name, which tells a screen-reader user nothing. A cell's own alt is kept.
    """
    page_title = next((title.astext() for title in doctree.findall(nodes.title)), app.env.docname)
    for image in doctree.findall(nodes.image):
        if image.get("alt"):
            continue
        cell = _enclosing(image, lambda n: isinstance(n, nodes.container) and n.get("nb_element") == "cell_code")
        section = _enclosing(image, lambda n: isinstance(n, nodes.section))
        where = f"“{page_title}”"
        if section is not None and isinstance(section[0], nodes.title) and section[0].astext() != page_title:
            where = f"section “{section[0].astext()}” of {where}"
        if cell is not None:
            image["alt"] = f"Output of code cell {cell['cell_index'] + 1} in {where}"
        else:
            image["alt"] = f"Figure in {where}"


def unescape_myst_link_urls(app: Sphinx, doctree: nodes.document) -> None:
    """Link URLs in the pages myst-parser reads (Markdown, notebooks) keep their query strings."""
    if str(app.env.doc2path(app.env.docname)).endswith((".md", ".ipynb")):
        unescape_link_urls(doctree)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-read", unescape_myst_link_urls)
    app.connect("doctree-read", fill_image_alt)
    app.connect("env-get-updated", rewrite_all_when_navigation_changes)
    app.connect("write-started", skip_parent_rewrites)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
