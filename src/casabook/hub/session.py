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

JupyterLab, nbgitpuller and every other session feature stay as they are.
"""

import sys

SKIPPED_IMPORTS = ("rfc3987_syntax",)


def _no_yarn_config(logger: object) -> dict:
    return {"yarn config": {}, "npm config": {}}


def trim_startup() -> None:
    for name in SKIPPED_IMPORTS:
        # None in sys.modules makes `import name` raise ImportError, which jsonschema expects.
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    try:
        import jupyterlab.commands
    except ImportError:
        return
    if hasattr(jupyterlab.commands, "_yarn_config"):
        jupyterlab.commands._yarn_config = _no_yarn_config


def main() -> int:
    trim_startup()
    from jupyterhub.singleuser import main as singleuser_main

    return singleuser_main() or 0


if __name__ == "__main__":
    sys.exit(main())
