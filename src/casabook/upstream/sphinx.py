"""Sphinx: incremental HTML builds rewrite the pages a navigation change touches, and no others.

Each page of the book carries the whole sidebar and its neighbours' titles, so a change to the
table of contents or to a page title must rewrite every page, which Sphinx does not do; and the
toctree parents Sphinx does rewrite along with a changed page show nothing of it (the book's
toctrees are hidden).
"""

from __future__ import annotations

import hashlib
import json

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

from casabook.upstream import applies

DISTRIBUTION = "sphinx"
# jupyter-book 1.x runs Sphinx 5 to 7; checked on 7.4.7.
VERSIONS = ">=5,<8"


def rewrite_all_when_navigation_changes(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """An env-get-updated handler: every page is rewritten when the navigation changed.

    Upstream: Sphinx rewrites only the pages it re-read (and their toctree parents); the others keep
    a stale sidebar or prev/next title. Reported as sphinx-doc/sphinx issue 5506 (open) and 1360.
    Applies to Sphinx 5 to 7.
    """
    if not applies("rewrite_all_when_navigation_changes", DISTRIBUTION, VERSIONS):
        return []
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
    """A write-started handler: a changed page's toctree parents are not rewritten along with it.

    Upstream: Sphinx rewrites them (through the environment's `files_to_rebuild`, an internal)
    because a visible toctree shows its children's titles. The book's toctrees are hidden (the
    sidebar shows them), and a title change rewrites every page anyway (above), so those rewrites
    are redundant: after editing one notebook, its track page. Sphinx's design for visible
    toctrees, so not reported. Applies to Sphinx 5 to 7. The environment is already saved when
    writing starts, so this affects the current write only.
    """
    if not applies("skip_parent_rewrites", DISTRIBUTION, VERSIONS):
        return
    builder.env.files_to_rebuild = {}
