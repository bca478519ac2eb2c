"""An attendee's server on the embedded hub: jupyterhub-singleuser, minus start-up work nobody uses.

    python -m casabook.hub.session [jupyterhub-singleuser arguments]

Measured (benchmarks/bench_hub.py, jupyter_server 2.17, JupyterLab 4.6): a stock server start
costs about 3 CPU-seconds, mostly in two things an attendee never uses:

- jsonschema checks the "iri" string format with rfc3987_syntax whenever that package is
  importable, and importing it compiles a grammar (about 1.1 CPU-s). jupyter_events pulls
  jsonschema in for its event schemas, none of which holds an IRI an attendee could get wrong.
- JupyterLab, on import, runs `node yarn config` in a subprocess (about 0.35 CPU-s) to learn which
  npm registry to install lab extensions from; attendees install no extensions, and the default
  registry is what it falls back to anyway.

And one wait: nbgitpuller's pull handler looks at its git thread's output every 0.5 s, so every
launch-link click waits 0.5 to 1 s after git is done; it looks every 0.05 s here.

JupyterLab, nbgitpuller and every other session feature stay as they are.
"""

import sys
import types

from casabook.lean import import_jsonschema_without_iri_grammar

PULL_POLL_SECONDS = 0.05


def _no_yarn_config(logger: object) -> dict:
    return {"yarn config": {}, "npm config": {}}


def trim_startup() -> None:
    import_jsonschema_without_iri_grammar()  # before jupyter_events brings it in with the grammar
    try:
        import jupyterlab.commands
    except ImportError:
        return
    if hasattr(jupyterlab.commands, "_yarn_config"):
        jupyterlab.commands._yarn_config = _no_yarn_config


def quicker_pull_polling() -> None:
    try:
        import nbgitpuller.handlers as handlers
    except ImportError:
        return
    gen = handlers.gen

    def sleep(seconds: float):
        return gen.sleep(min(seconds, PULL_POLL_SECONDS))

    # Only the handler module's view of tornado.gen changes; tornado itself is left alone.
    handlers.gen = types.SimpleNamespace(**{name: getattr(gen, name) for name in dir(gen) if not name.startswith("__")})
    handlers.gen.sleep = sleep


def prepare() -> None:
    """Everything above, before the server is imported: here, and in the fork server of
    casabook.hub.forkserver, which imports the server once for every attendee."""
    trim_startup()
    quicker_pull_polling()


def main() -> int:
    prepare()
    from jupyterhub.singleuser import main as singleuser_main

    return singleuser_main() or 0


if __name__ == "__main__":
    sys.exit(main())
