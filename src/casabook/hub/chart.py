"""zero-to-jupyterhub's chart as Helm sees it: its defaults, its schema, and values merged over them.

The chart's files are vendored in charts/z2jh (see SOURCE.md there): the release whose hub image runs
JupyterHub 5.5.0. Helm merges a values file over the chart's values.yaml (maps merged key by key,
lists and scalars replaced, a null deleting the key) and validates the result against the schema
before it renders anything, so that is what is checked here.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

CHART_DIR = Path(__file__).resolve().parent / "charts" / "z2jh"


@functools.cache
def _load(name: str) -> Any:
    return yaml.safe_load((CHART_DIR / name).read_text(encoding="utf-8"))


def defaults() -> dict[str, Any]:
    """The chart's values.yaml (a fresh copy: merging never changes the vendored defaults)."""
    return helm_merge({}, _load("values.yaml"))


def schema() -> dict[str, Any]:
    return _load("values.schema.yaml")


def helm_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` over `base` as Helm coalesces values: maps deep-merged, anything else replaced,
    None deleting the key."""
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        elif isinstance(value, dict):
            merged[key] = helm_merge({}, value)
        else:
            merged[key] = value
    return merged


def schema_errors(values: dict[str, Any]) -> list[str]:
    """Every way `values`, merged over the chart's defaults, breaks the chart's schema
    ("hub.config: ..."), in a stable order; empty when Helm would accept them."""
    from casabook.upstream.jsonschema import import_without_iri_grammar

    import_without_iri_grammar()  # no format is checked: the IRI grammar costs a second
    import jsonschema

    validator_class = jsonschema.validators.validator_for(schema())
    validator = validator_class(schema())
    errors = sorted(validator.iter_errors(helm_merge(defaults(), values)), key=lambda e: list(map(str, e.path)))
    return [f"{'.'.join(map(str, error.path)) or '(top level)'}: {error.message}" for error in errors]
