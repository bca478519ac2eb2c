"""What a page would fetch from beyond this machine: the scripts, stylesheets and fonts it loads.

Links a reader may follow (<a href>) are not loads; a page that loads nothing remote draws the
same with no network.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Relations whose href the browser fetches as it draws the page.
_LOADED_LINKS = {"stylesheet", "preload", "modulepreload", "icon", "prefetch"}
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)['"]""")


def is_remote(url: str, base: str = "") -> bool:
    """Whether `url` (relative to `base`) names a host other than this machine."""
    parts = urlsplit(urljoin(base, url))
    return bool(parts.netloc) and parts.hostname not in LOOPBACK


class _Loads(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads: list[tuple[str, str]] = []
        self._style: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in ("script", "img", "iframe", "audio", "video", "source", "embed") and values.get("src"):
            self.loads.append((f"<{tag} src>", values["src"]))
        elif tag == "link" and _LOADED_LINKS & set(values.get("rel", "").lower().split()) and values.get("href"):
            self.loads.append((f"<link rel={values['rel']}>", values["href"]))
        elif tag == "style":
            self._style = []
        if values.get("style"):
            self.loads += [("style attribute", url) for url in css_urls(values["style"])]

    def handle_data(self, data: str) -> None:
        if self._style is not None:
            self._style.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style" and self._style is not None:
            self.loads += [("<style>", url) for url in css_urls("".join(self._style))]
            self._style = None


def css_urls(css: str) -> list[str]:
    """The URLs a stylesheet loads: url(...) (fonts, images) and @import."""
    return [first or second for first, second in _CSS_URL.findall(css)]


def page_loads(html: str) -> list[tuple[str, str]]:
    """(what, URL) for everything a page loads as it is drawn."""
    parser = _Loads()
    parser.feed(html)
    parser.close()
    return parser.loads


def remote_loads(html: str, base: str = "") -> list[str]:
    return [f"{what} {url}" for what, url in page_loads(html) if is_remote(url, base)]
