"""Checks on the built HTML, before it replaces the published book.

Every launch link on every page is read back from the HTML and checked against git, so a link
written by hand in a page is held to the same rule as the generated ones: no broken launch link
is ever published.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from casabook.book.launch import BUTTON_CLASS
from casabook.links import LAUNCH_PATH, LaunchLink, broken_links, parse_launch_url


@dataclass(frozen=True)
class Anchor:
    href: str
    text: str
    is_button: bool


class _LaunchAnchors(HTMLParser):
    """The <a> elements of a page whose href is an nbgitpuller launch link, with their text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[Anchor] = []
        self._open: tuple[str, bool] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        values = dict(attrs)
        href = values.get("href") or ""
        if LAUNCH_PATH in href:
            self._open = (href, BUTTON_CLASS in (values.get("class") or "").split())
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._open:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open:
            href, is_button = self._open
            self.anchors.append(Anchor(href, " ".join("".join(self._text).split()), is_button))
            self._open = None


def launch_anchors(page: Path) -> list[Anchor]:
    """The launch links of a page. Only the <a> elements around each launch path are parsed: notebook
    pages carry megabytes of outputs, and parsing all of them would dominate a rebuild."""
    text = page.read_text(encoding="utf-8")
    parser = _LaunchAnchors()
    end = 0
    while (found := text.find(LAUNCH_PATH, end)) != -1:
        start = text.rfind("<a ", 0, found)
        close = text.find("</a>", found)
        if start == -1 or close == -1 or start < end:
            end = found + len(LAUNCH_PATH)  # a launch path in plain text, not in a link
            continue
        end = close + len("</a>")
        parser.feed(text[start:end])
    parser.close()
    return parser.anchors


def pages(html_dir: Path) -> dict[str, Path]:
    """Every HTML page by its path in the site ('notebooks/cms/01-nanoevents.html')."""
    return {path.relative_to(html_dir).as_posix(): path for path in sorted(html_dir.rglob("*.html"))
            if not path.relative_to(html_dir).parts[0].startswith("_")}


def check_html(root: Path, html_dir: Path, buttons: dict[str, str]) -> list[str]:
    """Problems with the launch links of the built site; `buttons` maps page -> the one expected button URL."""
    problems: list[str] = []
    first_seen: dict[LaunchLink, str] = {}
    for page, path in pages(html_dir).items():
        anchors = launch_anchors(path)
        found = [anchor.href for anchor in anchors if anchor.is_button]
        expected = buttons.get(page)
        if expected is None and found:
            problems.append(f"{page}: has a launch button, but it is not a notebook page")
        elif expected is not None and found != [expected]:
            problems.append(f"{page}: expected one launch button to its track's hub, found {len(found)}")
        for anchor in anchors:
            if not anchor.text:
                problems.append(f"{page}: a launch link without text ({anchor.href})")
            try:
                hub_url, source, notebook = parse_launch_url(anchor.href)
            except (ValueError, KeyError) as error:
                problems.append(f"{page}: malformed launch link {anchor.href!r} ({error})")
                continue
            link = LaunchLink(track="", notebook=notebook, title=anchor.text, facility="", hub_url=hub_url, source=source)
            first_seen.setdefault(link, page)
    missing_pages = sorted(set(buttons) - set(pages(html_dir)))
    problems += [f"{page}: notebook page missing from the built book" for page in missing_pages]
    for link, reason in broken_links(root, list(first_seen)):
        problems.append(f"{link.notebook}: broken launch link on page {first_seen[link]}: {reason}")
    return problems
