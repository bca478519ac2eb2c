"""A Sphinx extension: one launch button per notebook page, into that notebook's own track hub.

jupyter-book 1.x takes a single ``jupyterhub_url`` for the whole book, but a casabook workshop has
one hub per track (CMS AF, Open Data AF, ATLAS AF). casabook computes every link itself
(casabook.links) and hands them to this extension as ``casabook_launch_buttons``:
``{docname: {"url": ..., "label": ...}}``. Pages not in that mapping get no button.

The button is a plain ``<a href>`` with its label as text, placed under the page title, so it is
read by screen readers, reachable with the keyboard and works without JavaScript.
"""

from __future__ import annotations

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


def _add_static(app: Sphinx, config: Config) -> None:
    config.html_static_path = [*config.html_static_path, str(STATIC_DIR)]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value(CONFIG_KEY, {}, "html", types=[dict])
    app.connect("config-inited", _add_static)
    app.setup_extension("casabook.book.pagefixes")
    app.connect("doctree-resolved", add_launch_button)
    app.add_css_file("casabook.css")
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
