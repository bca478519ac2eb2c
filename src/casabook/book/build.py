"""Build the workshop book: stage sources, run Sphinx strictly and incrementally, check, publish.

    build_book(workshop, hub_override=None, hub_title=None, execute="off", output=None) -> the HTML folder

Sphinx keeps its environment, doctrees and HTML in book/_build/.work between runs (workdir), so a
rebuild re-reads only changed pages. Warnings are errors (-W -n --keep-going); a failed build raises
BookBuildError (exit 1) naming each page and problem, and leaves the published book as it was.
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console

from casabook.book import pages
from casabook.book.checks import check_html
from casabook.book.publish import check_output, publish
from casabook.book.sphinx_run import describe_warnings, forget_environment, run_sphinx, sphinx_config
from casabook.book.staging import plan_links, stage
from casabook.book.workdir import BookBuildError, BookPaths, failure_message
from casabook.errors import CasabookError
from casabook.links import LaunchLink, broken_links, track_links
from casabook.model import Workshop

EXECUTE_MODES = ("off", "cache", "force")


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


def plan_book(workshop: Workshop, hub_override: str | None = None, hub_title: str | None = None,
              repo: str | None = None) -> Plan:
    _check_hub_override(hub_override)
    links = {name: track_links(workshop, track, hub_url=hub_override, repo=repo)
             for name, track in workshop.tracks.items()}
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


def build_book(workshop: Workshop, *, hub_override: str | None = None, hub_title: str | None = None,
               execute: str = "off", output: Path | None = None, console: Console | None = None,
               repo: str | None = None) -> Path:
    """Build the book and publish it to `output` (default book/_build/html); returns that folder.

    hub_override: point every launch link at this hub (e.g. the local one `casabook up` runs).
    repo: the git URL the launch links pull from (default: each track's materials, else origin);
    `casabook up` passes this repository's file:// URL, which the local hub can clone.
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
    plan = plan_book(workshop, hub_override, hub_title, repo)

    all_links = [link for links in plan.links.values() for link in links]
    broken = broken_links(workshop.root, all_links)
    if broken:
        raise BookBuildError("book-broken-link", failure_message(
            f"{reason if reason.startswith(link.notebook) else f'{link.notebook}: {reason}'} (its launch button "
            f"on {pages.docname(link.notebook)}.html, its launch table on "
            f"{pages.track_docname(workshop.tracks[link.track])}.html)" for link, reason in broken))

    config = sphinx_config(paths, plan.buttons, execute)
    notebook_paths = [link.notebook for link in all_links]
    with _exclusive(paths.work):
        # myst-nb writes a failed notebook's traceback here; it belongs to that failed build only.
        shutil.rmtree(paths.html / "reports", ignore_errors=True)
        stage(paths.source, plan_links(workshop.root, paths.book, notebook_paths, plan.generated), plan.generated)
        try:
            code, warnings = run_sphinx(paths, config, console)
            problems = describe_warnings(paths, workshop, warnings)
            if code != 0 or problems:
                raise BookBuildError("book-failed", failure_message(problems or [f"Sphinx exited with status {code}"]))
        except BaseException as error:
            # A configuration Sphinx refused never touched the environment; anything later may have.
            if isinstance(error, BookBuildError) or not isinstance(error, CasabookError):
                forget_environment(paths)
            raise
        page_buttons = {f"{docname}.html": button["url"] for docname, button in plan.buttons.items()}
        problems = check_html(workshop.root, paths.html, page_buttons)
        if problems:
            raise BookBuildError("book-launch-links", failure_message(problems))
        publish(paths.html, output)
    return output
