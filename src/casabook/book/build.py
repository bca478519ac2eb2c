"""Build the workshop book: stage sources, run Sphinx strictly and incrementally, check, publish.

    build_book(workshop, hub_override=None, execute="off", output=None) -> the HTML folder

Sphinx keeps its environment, doctrees and HTML in book/_build/.work between runs, so a rebuild
re-reads only changed pages. Warnings are errors (-W -n --keep-going); a failed build raises
BookBuildError (exit 1) naming each page and problem, and leaves the published book as it was.
"""

from __future__ import annotations

import fcntl
import io
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console
from rich.markup import escape

from casabook.book import pages
from casabook.book.checks import check_html
from casabook.book.launch import CONFIG_KEY
from casabook.book.publish import check_output, publish
from casabook.book.staging import plan_links, stage
from casabook.errors import CasabookError
from casabook.links import LaunchLink, broken_links, track_links
from casabook.model import Workshop

EXECUTE_MODES = ("off", "cache", "force")
BOOK_DIR = "book"


class BookBuildError(CasabookError):
    """The book did not build: a page has a problem (not a mistake in the command line)."""

    exit_code = 1


@dataclass(frozen=True)
class BookPaths:
    root: Path

    @property
    def book(self) -> Path:
        return self.root / BOOK_DIR

    @property
    def config(self) -> Path:
        return self.book / "_config.yml"

    @property
    def work(self) -> Path:
        return self.book / "_build" / ".work"

    @property
    def source(self) -> Path:
        return self.work / "source"

    @property
    def html(self) -> Path:
        return self.work / "html"

    @property
    def doctrees(self) -> Path:
        return self.work / "doctrees"

    @property
    def jupyter_cache(self) -> Path:
        return self.work / "jupyter_cache"

    @property
    def default_output(self) -> Path:
        return self.book / "_build" / "html"


@dataclass(frozen=True)
class Plan:
    """Everything the build writes, computed before Sphinx starts."""

    links: dict[str, list[LaunchLink]]
    hubs: dict[str, pages.Hub]
    generated: dict[str, str]

    @property
    def buttons(self) -> dict[str, dict[str, str]]:
        """docname -> the launch button of that notebook page (the Sphinx extension's input)."""
        return {pages.docname(link.notebook): {"url": link.url, "label": pages.launch_label(self.hubs[track].title)}
                for track, links in self.links.items() for link in links}


def _check_hub_override(url: str | None) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise CasabookError("bad-hub-url", f"{url!r} is not a hub URL; expected http(s)://host[:port][/prefix]",
                            key="--hub-override")


def _hub_for(workshop: Workshop, track_name: str, hub_override: str | None, hub_title: str | None) -> pages.Hub:
    facility = workshop.facility_of(workshop.tracks[track_name])
    if hub_override is None:
        return pages.Hub(title=facility.title, url=facility.hub.url)
    url = hub_override.rstrip("/")
    named = next((f for f in workshop.facilities.values() if f.hub.url == url), None)
    return pages.Hub(title=hub_title or (named.title if named else urlsplit(url).netloc), url=url)


def plan_book(workshop: Workshop, hub_override: str | None = None, hub_title: str | None = None) -> Plan:
    _check_hub_override(hub_override)
    links = {name: track_links(workshop, track, hub_url=hub_override) for name, track in workshop.tracks.items()}
    hubs = {name: _hub_for(workshop, name, hub_override, hub_title) for name in workshop.tracks}
    generated = {"_toc.yml": pages.table_of_contents(workshop), pages.TRACK_LIST: pages.track_list(workshop, hubs)}
    for name, track in workshop.tracks.items():
        generated[pages.track_docname(track) + ".md"] = pages.track_page(
            workshop, track, links[name], hubs[name], overridden=hub_override is not None)
    return Plan(links=links, hubs=hubs, generated=generated)


@contextmanager
def _exclusive(work: Path) -> Iterator[None]:
    """One build at a time per repository: two Sphinx runs in one work folder would corrupt it."""
    work.mkdir(parents=True, exist_ok=True)
    with open(work / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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


def _import_jsonschema_lean() -> None:
    """Import jsonschema without rfc3987_syntax, which compiles ~40 grammars on import (about 1 s).

    jupyter-book imports jsonschema only to validate _config.yml, whose schema uses no IRI formats;
    rfc3987_syntax is there for jsonschema's optional IRI format checks (jupyter-events asks for
    them). If jsonschema is already imported, nothing changes.
    """
    if "jsonschema" in sys.modules:
        return
    blocked = "rfc3987_syntax" not in sys.modules
    if blocked:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # makes its import raise ImportError
    try:
        import jsonschema  # noqa: F401
    finally:
        if blocked:
            del sys.modules["rfc3987_syntax"]


def _sphinx_config(paths: BookPaths, plan: Plan, execute: str) -> dict:
    _import_jsonschema_lean()
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
                CONFIG_KEY: plan.buttons,
            },
            sourcedir=paths.source,
            raise_on_invalid=True,
        )
    except (yaml.YAMLError, jsonschema.ValidationError) as error:
        message = " ".join(str(error).split())
        raise CasabookError("bad-book-config", message, file=f"{BOOK_DIR}/_config.yml") from None
    if "casabook.book.launch" not in config["extensions"]:
        config["extensions"] = [*config["extensions"], "casabook.book.launch"]
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


def _describe(paths: BookPaths, workshop: Workshop, warnings: str) -> list[str]:
    """Sphinx's warnings with staging paths turned back into the files a user edits."""
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
        lines.append(line)
    return lines


def _run_sphinx(paths: BookPaths, config: dict, console: Console) -> tuple[int, str]:
    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    warnings = io.StringIO()
    with console.status("book: starting Sphinx") as status, patch_docutils(None), docutils_namespace():
        try:
            app = Sphinx(
                srcdir=paths.source,
                confdir=None,
                outdir=paths.html,
                doctreedir=paths.doctrees,
                buildername="html",
                confoverrides=config,
                status=_StatusLine(status),
                warning=warnings,
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
            raise BookBuildError("book-crashed", _failure(
                [f"{where}Sphinx stopped: {type(error).__name__}: {' '.join(str(error).split())}"])) from error
        return app.statuscode, warnings.getvalue()


def _failure(problems) -> str:
    problems = list(problems)
    return (f"the book was not built ({len(problems)} problem{'s' if len(problems) != 1 else ''}; "
            "the published book is unchanged):\n  " + "\n  ".join(problems))


def _forget_environment(paths: BookPaths) -> None:
    # Sphinx reports a page's warnings only when it re-reads the page; after a failed build the
    # next one must re-read everything, or it would pass on pages it still holds as read.
    (paths.doctrees / "environment.pickle").unlink(missing_ok=True)
    (paths.html / ".buildinfo").unlink(missing_ok=True)


def build_book(workshop: Workshop, *, hub_override: str | None = None, hub_title: str | None = None,
               execute: str = "off", output: Path | None = None, console: Console | None = None) -> Path:
    """Build the book and publish it to `output` (default book/_build/html); returns that folder.

    hub_override: point every launch link at this hub (e.g. the local one `casabook up` runs).
    hub_title: how the buttons name that hub ("Launch on <hub_title>"); by default the title of
    the facility with that URL, else its host and port.
    execute: "off" uses the notebooks' committed outputs; "cache" runs changed notebooks through
    jupyter-cache; "force" runs them all. Raises CasabookError (exit 2) for a user mistake and
    BookBuildError (exit 1) when a page fails; the published book is then left as it was.
    """
    console = console or Console(stderr=True)
    if execute not in EXECUTE_MODES:
        raise CasabookError("bad-execute", f"{execute!r}: expected one of {', '.join(EXECUTE_MODES)}", key="--execute")
    paths = BookPaths(workshop.root)
    output = (output or paths.default_output).absolute()
    check_output(output)
    plan = plan_book(workshop, hub_override, hub_title)

    all_links = [link for links in plan.links.values() for link in links]
    broken = broken_links(workshop.root, all_links)
    if broken:
        raise BookBuildError("book-broken-link", _failure(
            f"{reason if reason.startswith(link.notebook) else f'{link.notebook}: {reason}'} (its launch button "
            f"on {pages.docname(link.notebook)}.html, its launch table on "
            f"{pages.track_docname(workshop.tracks[link.track])}.html)" for link, reason in broken))

    config = _sphinx_config(paths, plan, execute)
    notebook_paths = [link.notebook for link in all_links]
    with _exclusive(paths.work):
        # myst-nb writes a failed notebook's traceback here; it belongs to that failed build only.
        shutil.rmtree(paths.html / "reports", ignore_errors=True)
        stage(paths.source, plan_links(workshop.root, paths.book, notebook_paths, plan.generated), plan.generated)
        try:
            code, warnings = _run_sphinx(paths, config, console)
            problems = _describe(paths, workshop, warnings)
            if code != 0 or problems:
                raise BookBuildError("book-failed", _failure(problems or [f"Sphinx exited with status {code}"]))
        except BaseException as error:
            # A configuration Sphinx refused never touched the environment; anything later may have.
            if isinstance(error, BookBuildError) or not isinstance(error, CasabookError):
                _forget_environment(paths)
            raise
        page_buttons = {f"{docname}.html": button["url"] for docname, button in plan.buttons.items()}
        problems = check_html(workshop.root, paths.html, page_buttons)
        if problems:
            raise BookBuildError("book-launch-links", _failure(problems))
        publish(paths.html, output)
    return output
