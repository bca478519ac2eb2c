"""Fixes to every page of the book, loaded with the launch-button extension.

- Plots get an alt text (accessibility): myst-nb leaves notebook output images without one.
- Link URLs are unescaped where myst-parser escapes them (its issue 760), which breaks query strings.
- When the navigation changes (the table of contents or a page title), every page is rewritten,
  not only the re-read ones: each page carries the whole sidebar and its neighbours' titles.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

from casabook import __version__


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


@lru_cache(1)
def myst_escapes_link_urls() -> bool:
    """Whether this myst-parser HTML-escapes link URLs in the doctree (MyST-Parser issue 760).

    The HTML writer escapes them again, so [x](https://hub/?a=1&b=2) gets href "...&amp;amp;b=2"
    and the browser sends "amp;b=2": every query after the first is lost, which breaks launch
    links. Probed rather than assumed, so a fixed myst-parser is left alone.
    """
    import docutils.core
    from myst_parser.parsers.docutils_ import Parser

    doctree = docutils.core.publish_doctree("[x](https://hub.invalid/?a=1&b=2)", parser=Parser(),
                                            settings_overrides={"report_level": 5})
    return any("&amp;" in ref.get("refuri", "") for ref in doctree.findall(nodes.reference))


_ESCAPED = re.compile(r"&(amp|lt|gt|quot);")
_UNESCAPE = {"amp": "&", "lt": "<", "gt": ">", "quot": '"'}


def unescape_link_urls(app: Sphinx, doctree: nodes.document) -> None:
    """Undo myst-parser's escaping of link URLs (exactly: markdown-it's escapeHtml), where it happens."""
    if not str(app.env.doc2path(app.env.docname)).endswith((".md", ".ipynb")) or not myst_escapes_link_urls():
        return
    for reference in doctree.findall(nodes.reference):
        if "&" in reference.get("refuri", ""):
            reference["refuri"] = _ESCAPED.sub(lambda m: _UNESCAPE[m.group(1)], reference["refuri"])


def rewrite_all_when_navigation_changes(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Sphinx rewrites only the pages it re-read; the others would keep a stale sidebar or prev/next title."""
    site_map = getattr(env, "external_site_map", None)
    navigation = {
        "toc": site_map.as_json() if site_map is not None else None,
        "titles": sorted((doc, env.titles[doc].astext()) for doc in env.found_docs if doc in env.titles),
    }
    digest = hashlib.sha256(json.dumps(navigation, sort_keys=True, default=str).encode()).hexdigest()
    previous = getattr(env, "casabook_navigation", None)
    env.casabook_navigation = digest
    return sorted(env.found_docs) if previous is not None and previous != digest else []


def skip_parent_rewrites(app: Sphinx, builder) -> None:
    """Do not rewrite a changed page's toctree parents along with it.

    Sphinx rewrites them because a visible toctree shows its children's titles. The book's
    toctrees are hidden (the sidebar shows them), and a title change rewrites every page anyway
    (above), so those rewrites are redundant: after editing one notebook, its track page. The
    environment is already saved when writing starts, so this affects the current write only.
    """
    builder.env.files_to_rebuild = {}


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-read", unescape_link_urls)
    app.connect("doctree-read", fill_image_alt)
    app.connect("env-get-updated", rewrite_all_when_navigation_changes)
    app.connect("write-started", skip_parent_rewrites)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
