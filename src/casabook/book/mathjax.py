"""A Sphinx extension: MathJax served from the book itself, so math is typeset with no network.

Sphinx's default `mathjax_path` is MathJax 3's tex-mml-chtml.js on a CDN: in a room whose network
is down or filtered, every formula of the notebooks shows as raw TeX. The book carries npm's
`mathjax` package instead (package.json locks 3.2.2, the release Sphinx 7's default points at;
MathJax 4 fetches its fonts from a CDN unless each font package is installed and configured too).
Its CHTML output loads the woff fonts, and the TeX input its extensions, relative to the script,
so the whole es5 folder goes into the book's _static/mathjax.

A `mathjax_path` set in book/_config.yml is kept: that is the book's own choice.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.ext.mathjax import MATHJAX_URL
from sphinx.util.fileutil import copy_asset

from casabook import __version__
from casabook.atomic import write_text
from casabook.node_packages import node_package

CONFIG_KEY = "casabook_mathjax_folder"
PACKAGE = "mathjax"
STATIC_FOLDER = "mathjax"
SCRIPT = "tex-mml-chtml.js"  # what Sphinx's default loads: TeX and MathML in, CHTML out
VERSION_STAMP = "casabook-mathjax"  # which package folder and version the copy in _static is


def mathjax_folder(root: Path) -> Path:
    """The es5 folder of the installed mathjax package (the Sphinx configuration's input)."""
    return node_package(PACKAGE, root) / "es5"


def _use_local_copy(app: Sphinx, config: Config) -> None:
    if config[CONFIG_KEY] and config.mathjax_path == MATHJAX_URL:
        # A relative mathjax_path is a file in _static (Sphinx's add_js_file).
        config.mathjax_path = f"{STATIC_FOLDER}/{SCRIPT}"


def _package_version(folder: Path) -> str:
    return json.loads((folder.parent / "package.json").read_text(encoding="utf-8"))["version"]


def _copy_mathjax(app: Sphinx) -> None:
    folder = app.config[CONFIG_KEY]
    if not folder or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / STATIC_FOLDER
    stamp = Path(app.doctreedir) / VERSION_STAMP  # in the work folder: the published book has no use for it
    version = f"{folder}\n{_package_version(Path(folder))}\n"
    # Comparing the 24 MB of an unchanged copy would cost every rebuild; the stamp says what is there.
    if (target / SCRIPT).is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8") == version:
        return
    # Before pages are written, so each page's script tag gets the file's checksum (?v=...).
    shutil.rmtree(target, ignore_errors=True)  # nothing left of another version
    copy_asset(folder, target)
    write_text(stamp, version)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value(CONFIG_KEY, "", "html", types=[str])
    app.connect("config-inited", _use_local_copy)
    app.connect("builder-inited", _copy_mathjax)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
