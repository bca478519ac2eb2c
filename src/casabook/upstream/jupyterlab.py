"""JupyterLab: no `node yarn config` subprocess at every server start.

JupyterLab's app handler, built at every server start, reads the default of AppOptions.registry,
which runs `node yarn.js config --json` in a subprocess (about 0.35 CPU-s) to learn which npm
registry lab extensions would be installed from. Attendees install no extensions, and the default
registry is what JupyterLab falls back to anyway.
"""

from __future__ import annotations

from casabook.upstream import applies

DISTRIBUTION = "jupyterlab"
# The registry default has come from `yarn config` since JupyterLab 2 (jupyterlab PR 7109);
# checked on 4.6.6.
VERSIONS = ">=4.0,<4.7"


def _no_yarn_config(logger: object) -> dict:
    return {"yarn config": {}, "npm config": {}}


def skip_yarn_config() -> None:
    """Make JupyterLab's private `jupyterlab.commands._yarn_config` answer "no configuration"
    without running node.

    Upstream: the registry default (AppOptions._default_registry) runs yarn on every start, not
    only when an extension is installed. Not reported as such; a maintainer notes in
    jupyterlab/jupyterlab issue 8760 that "JupyterLab should not need to check yarn configuration
    on startup". Applies to JupyterLab 4.0 to 4.6.
    """
    if not applies("skip_yarn_config", DISTRIBUTION, VERSIONS):
        return
    import jupyterlab.commands

    jupyterlab.commands._yarn_config = _no_yarn_config
