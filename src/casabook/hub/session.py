"""An attendee's server on the embedded hub: jupyterhub-singleuser, minus start-up work nobody uses.

    python -m casabook.hub.session [jupyterhub-singleuser arguments]

Measured (benchmarks/bench_hub.py, jupyter_server 2.17, JupyterLab 4.6): a stock server start
costs about 3 CPU-seconds, mostly in two things an attendee never uses: jsonschema compiling an
IRI grammar (about 1.1 CPU-s; jupyter_events pulls jsonschema in for its event schemas) and
JupyterLab running `node yarn config` (about 0.35 CPU-s). And one wait: nbgitpuller's pull
handler looks at git's progress every 0.5 s, so every launch-link click waits 0.5 to 1 s after
git is done. The workarounds are in casabook.upstream, each guarded by the versions needing it.

JupyterLab, nbgitpuller and every other session feature stay as they are.
"""

import sys

from casabook.upstream.jsonschema import import_without_iri_grammar
from casabook.upstream.jupyterlab import skip_yarn_config
from casabook.upstream.nbgitpuller import quicker_pull_polling


def prepare() -> None:
    """The workarounds, before the server is imported: here, and in the fork server of
    casabook.hub.forkserver, which imports the server once for every attendee."""
    import_without_iri_grammar()  # before jupyter_events brings it in with the grammar
    skip_yarn_config()
    quicker_pull_polling()


def main() -> int:
    prepare()
    from jupyterhub.singleuser import main as singleuser_main

    return singleuser_main() or 0


if __name__ == "__main__":
    sys.exit(main())
