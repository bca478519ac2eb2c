"""jsonschema: import it without the IRI grammar that casabook's schemas never use.

jsonschema checks the "iri" string format with rfc3987_syntax whenever that package is importable,
and imports it with jsonschema itself, which compiles about 40 grammars (1 to 2 CPU-seconds).
Notebook, book-config and Jupyter event schemas hold no IRI anyone could get wrong, so `casabook
check`, the book build, the validator and an attendee's server import jsonschema without it.
"""

from __future__ import annotations

import sys

from casabook.upstream import applies

DISTRIBUTION = "jsonschema"
# rfc3987_syntax came in with 4.25.0 (python-jsonschema/jsonschema PR 1388); still imported
# eagerly in 4.26.0 and on main.
VERSIONS = ">=4.25,<4.27"
IRI_GRAMMAR = "rfc3987_syntax"


def import_without_iri_grammar() -> None:
    """Import jsonschema now, with its optional IRI format checks off.

    Upstream: jsonschema/_format.py imports rfc3987_syntax at import time, not when an "iri"
    format is first checked. Reported as python-jsonschema/jsonschema issue 1428 ("Lazy import
    `rfc3987_syntax`", closed without a change) and issue 1392 (its slowness). Applies to
    jsonschema 4.25 and 4.26. If jsonschema is already imported, nothing changes; later imports of
    rfc3987_syntax work as usual.
    """
    if "jsonschema" in sys.modules or not applies("import_without_iri_grammar", DISTRIBUTION, VERSIONS):
        return
    blocked = IRI_GRAMMAR not in sys.modules
    if blocked:
        sys.modules[IRI_GRAMMAR] = None  # type: ignore[assignment]  # makes its import raise ImportError
    try:
        import jsonschema  # noqa: F401
    finally:
        if blocked:
            del sys.modules[IRI_GRAMMAR]
