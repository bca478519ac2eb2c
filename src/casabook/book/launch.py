"""A Sphinx extension: one launch button per notebook page, into that notebook's own track hub.

jupyter-book 1.x takes a single ``jupyterhub_url`` for the whole book, but a casabook workshop has
one hub per track (CMS AF, Open Data AF, ATLAS AF). casabook computes every link itself
(casabook.links) and hands them to this extension as ``casabook_launch_buttons``:
``{docname: {"url": ..., "label": ...}}``. Pages not in that mapping get no button.

The button is a plain ``<a href>`` with its label as text, placed under the page title, so it is
read by screen readers, reachable with the keyboard and works without JavaScript.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.config import Config

from casabook import __version__

CONFIG_KEY = "casabook_launch_buttons"
BUTTON_CLASS = "casabook-launch-button"
BOX_CLASS = "casabook-launch"
STATIC_DIR = Path(__file__).parent / "static"


def launch_box(url: str, label: str) -> nodes.container:
    reference = nodes.reference("", "", nodes.Text(label), refuri=url, classes=[BUTTON_CLASS])
    hint = nodes.inline("", " — log in, get the materials and open this notebook in JupyterLab",
                        classes=["casabook-launch-hint"])
    return nodes.container("", nodes.paragraph("", "", reference, hint), classes=[BOX_CLASS])


def add_launch_button(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    # At write time (doctree-resolved), so a new hub URL rewrites pages without re-reading notebooks.
    button = app.config[CONFIG_KEY].get(docname)
    if not button:
        return
    box = launch_box(button["url"], button["label"])
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is not None and section.children and isinstance(section[0], nodes.title):
        section.insert(1, box)
    else:
        doctree.insert(0, box)


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


def _add_static(app: Sphinx, config: Config) -> None:
    config.html_static_path = [*config.html_static_path, str(STATIC_DIR)]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value(CONFIG_KEY, {}, "html", types=[dict])
    app.connect("config-inited", _add_static)
    app.connect("doctree-read", unescape_link_urls)
    app.connect("doctree-read", fill_image_alt)
    app.connect("doctree-resolved", add_launch_button)
    app.add_css_file("casabook.css")
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
