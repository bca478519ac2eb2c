"""Start-up work casabook's processes skip because nobody uses it.

jsonschema checks the "iri" string format with rfc3987_syntax whenever that package is importable,
and importing it compiles about 40 grammars (1 to 2 CPU-seconds). Notebook, book-config and
Jupyter event schemas hold no IRI anyone could get wrong, so `casabook check`, the book build and
an attendee's server import jsonschema without it.
"""

from __future__ import annotations

import sys

IRI_GRAMMAR = "rfc3987_syntax"


def import_jsonschema_without_iri_grammar() -> None:
    """Import jsonschema now, with its optional IRI format checks off. If jsonschema is already
    imported, nothing changes; other imports of rfc3987_syntax afterwards work as usual."""
    if "jsonschema" in sys.modules:
        return
    blocked = IRI_GRAMMAR not in sys.modules
    if blocked:
        sys.modules[IRI_GRAMMAR] = None  # type: ignore[assignment]  # makes its import raise ImportError
    try:
        import jsonschema  # noqa: F401
    finally:
        if blocked:
            del sys.modules[IRI_GRAMMAR]
