"""myst-parser: link URLs it escapes in the doctree are unescaped, so the HTML writer escapes them once.

myst-parser HTML-escapes link URLs in the doctree and Sphinx's HTML writer escapes them again, so
[x](https://hub/?a=1&b=2) gets href "...&amp;amp;b=2" and the browser sends "amp;b=2": every query
parameter after the first is lost, which breaks launch links.
"""

from __future__ import annotations

import re
from functools import lru_cache

from docutils import nodes

from casabook.upstream import applies

DISTRIBUTION = "myst-parser"
# Reported against 2.x (issue 760), 4.0.1 (issue 1028) and 5.0.0 (issue 1116); checked on 3.0.1.
VERSIONS = ">=1.0,<5.1"

_ESCAPED = re.compile(r"&(amp|lt|gt|quot);")
_UNESCAPE = {"amp": "&", "lt": "<", "gt": ">", "quot": '"'}


@lru_cache(1)
def escapes_link_urls() -> bool:
    """Whether the installed myst-parser HTML-escapes link URLs in the doctree: probed, not assumed."""
    import docutils.core
    from myst_parser.parsers.docutils_ import Parser

    doctree = docutils.core.publish_doctree("[x](https://hub.invalid/?a=1&b=2)", parser=Parser(),
                                            settings_overrides={"report_level": 5})
    return any("&amp;" in ref.get("refuri", "") for ref in doctree.findall(nodes.reference))


def unescape_link_urls(doctree: nodes.document) -> None:
    """Undo myst-parser's escaping of link URLs in a doctree it parsed (exactly: markdown-it's escapeHtml).

    Upstream: myst-parser passes link URLs through escapeHtml into `refuri`, which the docutils and
    Sphinx HTML writers escape again. Reported as executablebooks/MyST-Parser issue 760 (open; the
    fix in PR 929 was closed unmerged), again as issues 1028 and 1116. Applies to myst-parser 1.0
    to 5.0, and only where the probe finds the escaping.
    """
    if not applies("unescape_link_urls", DISTRIBUTION, VERSIONS) or not escapes_link_urls():
        return
    for reference in doctree.findall(nodes.reference):
        if "&" in reference.get("refuri", ""):
            reference["refuri"] = _ESCAPED.sub(lambda m: _UNESCAPE[m.group(1)], reference["refuri"])
