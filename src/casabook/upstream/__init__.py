"""Workarounds for bugs and costs in the projects casabook builds on, one module per project.

Each workaround is a function that applies only to the versions of its project known to need it
(`applies`), and does nothing, saying why at debug level, for any other. tests/test_upstream.py
holds, for each, a test that the upstream behaviour is still there on the installed version (it
fails, naming the workaround to remove, once upstream fixes it) and a test that the workaround
does its job.

    jsonschema    import it without compiling the IRI grammar nobody here checks
    jupyterlab    no `node yarn config` subprocess at every server start
    nbgitpuller   the pull handler looks at git's progress every 0.05 s, not 0.5 s
    myst_parser   link URLs it escapes twice (its issue 760) are unescaped once
    sphinx        every page rewritten when the navigation changes; no redundant parent rewrites
    oidc_provider_mock  the identity provider's pages styled from npm's Pico CSS, not a CDN
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from packaging.specifiers import SpecifierSet
from packaging.version import Version

log = logging.getLogger(__name__)


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


@cache  # the installed versions do not change while casabook runs
def applies(workaround: str, distribution: str, versions: str) -> bool:
    """Whether the installed `distribution` is one of the `versions` (a PEP 440 specifier set)
    known to need `workaround`; if not, logs at debug level why the workaround is skipped."""
    installed = installed_version(distribution)
    if installed is None:
        log.debug("%s skipped: %s is not installed", workaround, distribution)
        return False
    if Version(installed) not in SpecifierSet(versions):
        log.debug("%s skipped: %s %s is outside %s, the versions known to need it",
                  workaround, distribution, installed, versions)
        return False
    return True
