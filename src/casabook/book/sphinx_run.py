"""Run Sphinx (jupyter-book's configuration) strictly on the staged sources, and explain its warnings.

Warnings are errors (-W -n --keep-going); each one comes back as a line naming the file a user
edits (a notebook, book/intro.md, or the track file a page is generated from).
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from casabook.book import mathjax, pages
from casabook.book.launch import CONFIG_KEY
from casabook.book.workdir import BOOK_DIR, BookBuildError, BookPaths, failure_message
from casabook.errors import CasabookError
from casabook.model import Workshop
from casabook.notebook_places import name_notebook_cells
from casabook.upstream.jsonschema import import_without_iri_grammar

log = logging.getLogger(__name__)
EXTENSIONS = ("casabook.book.launch", "casabook.book.mathjax")


class _StatusLine(io.TextIOBase):
    """Sphinx's progress lines, shown one at a time on a rich status spinner."""

    def __init__(self, status) -> None:
        self._status = status
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        from sphinx.util.console import strip_colors

        self._pending += text
        *lines, self._pending = re.split(r"[\r\n]", self._pending)
        shown = [strip_colors(line).strip() for line in lines if line.strip()]
        if shown and self._status is not None:
            self._status.update(f"book: {escape(shown[-1][:100])}")
        return len(text)


def sphinx_config(paths: BookPaths, buttons: dict[str, dict[str, str]], execute: str) -> dict:
    import_without_iri_grammar()  # jupyter-book validates _config.yml with it
    import jsonschema
    import yaml
    from jupyter_book.config import get_final_config

    if not paths.config.is_file():
        raise CasabookError("no-book-config", "missing: the book's configuration (jupyter-book _config.yml)",
                            file=f"{BOOK_DIR}/_config.yml")
    if not (paths.book / f"{pages.ROOT_DOC}.md").is_file():
        raise CasabookError("no-landing-page", "missing: the landing page of the book",
                            file=f"{BOOK_DIR}/{pages.ROOT_DOC}.md")
    try:
        user_yaml = yaml.safe_load(paths.config.read_text(encoding="utf-8")) or {}
        config, _meta = get_final_config(
            user_yaml=user_yaml,
            cli_config={
                "latex_individualpages": False,
                "external_toc_path": str(paths.source / "_toc.yml"),
                # Pages come from the tracks; anything else in the linked folders is not part of the book.
                "external_toc_exclude_missing": True,
                "nitpicky": True,
                # The themes append to templates_path in place; Sphinx's default list is one object per
                # process, so without a fresh list each build in one process sees a longer list and
                # rewrites every page (`casabook up` builds more than once in a process).
                "templates_path": [],
                "nb_execution_mode": execute,
                "nb_execution_cache_path": str(paths.jupyter_cache),
                CONFIG_KEY: buttons,
                mathjax.CONFIG_KEY: str(mathjax.mathjax_folder(paths.root)),
            },
            sourcedir=paths.source,
            raise_on_invalid=True,
        )
    except (yaml.YAMLError, jsonschema.ValidationError) as error:
        message = " ".join(str(error).split())
        raise CasabookError("bad-book-config", message, file=f"{BOOK_DIR}/_config.yml") from None
    config["extensions"] = [*config["extensions"], *(extension for extension in EXTENSIONS
                                                     if extension not in config["extensions"])]
    return config


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TRACEBACK_SAVED = re.compile(r"Notebook exception traceback saved in: (\S+)")


def _exception_line(report: Path) -> str:
    """The last line of a saved notebook traceback: the exception and its message."""
    try:
        lines = [line.strip() for line in _ANSI.sub("", report.read_text(encoding="utf-8")).splitlines()]
    except OSError:
        return "the notebook raised an exception"
    return next((line for line in reversed(lines) if line), "the notebook raised an exception")


def describe_warnings(paths: BookPaths, workshop: Workshop, warnings: str) -> list[str]:
    """Sphinx's warnings with staging paths turned back into the files a user edits, and places in a
    notebook said as its cell (number and first words)."""
    generated = {f"{pages.track_docname(t)}.md": f"the page generated from tracks/{t.name}.yml"
                 for t in workshop.tracks.values()}
    lines = []
    for line in _ANSI.sub("", warnings).splitlines():
        line = line.strip()
        if not line:
            continue
        saved = _TRACEBACK_SAVED.search(line)
        if saved:
            report = Path(saved.group(1))
            line = line[:saved.start()] + f"{_exception_line(report)} (traceback: {report})"
        for prefix in (str(paths.source.resolve()) + "/", str(paths.source) + "/", str(workshop.root) + "/"):
            line = line.replace(prefix, "")
        head = line.split(":", 1)[0]
        if head in generated:
            line = generated[head] + line[len(head):]
        elif (paths.book / head).exists() and not (workshop.root / head).exists():
            line = f"{BOOK_DIR}/{line}"
        lines.append(name_notebook_cells(line, workshop.root))
    return lines


@contextmanager
def _library_warnings_logged() -> Iterator[None]:
    """Python warnings the libraries raise while Sphinx runs (nbformat's MissingIDFieldWarning, a
    deprecation) go to the debug log: they are not problems of the book, and printed as they come
    they would break into the list of those that are."""
    with warnings.catch_warnings(record=True) as caught:
        try:
            yield
        finally:
            for warning in caught:
                log.debug("%s:%s: %s: %s", warning.filename, warning.lineno, warning.category.__name__,
                          warning.message)


def run_sphinx(paths: BookPaths, config: dict, console: Console) -> tuple[int, str]:
    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    warning_stream = io.StringIO()
    with console.status("book: starting Sphinx") as status, patch_docutils(None), docutils_namespace(), \
            _library_warnings_logged():
        try:
            app = Sphinx(
                srcdir=paths.source,
                confdir=None,
                outdir=paths.html,
                doctreedir=paths.doctrees,
                buildername="html",
                confoverrides=config,
                status=_StatusLine(status),
                warning=warning_stream,
                freshenv=False,
                warningiserror=True,
                keep_going=True,
                parallel=1,
            )
        except Exception as error:  # an unknown extension, a bad theme option: the book's configuration
            raise CasabookError("bad-book-config", f"Sphinx cannot start: {type(error).__name__}: "
                                f"{' '.join(str(error).split())}", file=f"{BOOK_DIR}/_config.yml") from error
        try:
            app.build(force_all=False)
        except Exception as error:  # Sphinx and its extensions raise many kinds; all mean "no book".
            docname = app.env.temp_data.get("docname") or getattr(app.builder, "current_docname", None)
            where = f"{Path(app.env.doc2path(docname)).relative_to(paths.source)}: " if docname else ""
            raise BookBuildError("book-crashed", failure_message(
                [f"{where}Sphinx stopped: {type(error).__name__}: {' '.join(str(error).split())}"])) from error
        return app.statuscode, warning_stream.getvalue()


def forget_environment(paths: BookPaths) -> None:
    # Sphinx reports a page's warnings only when it re-reads the page; after a failed build the
    # next one must re-read everything, or it would pass on pages it still holds as read.
    (paths.doctrees / "environment.pickle").unlink(missing_ok=True)
    (paths.html / ".buildinfo").unlink(missing_ok=True)
