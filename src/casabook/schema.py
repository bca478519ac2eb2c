"""The JSON Schema of track and facility files, made from the models that check them, for editors.

An editor with a YAML language server (VS Code's YAML extension, for one) completes keys, shows
each key's description and marks mistakes as they are typed, from these schemas.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from casabook.atomic import write_text
from casabook.model import FACILITIES_DIR, TRACKS_DIR, Facility, Strict, Track

SCHEMAS: dict[str, tuple[type[Strict], str]] = {
    "track": (Track, f"{TRACKS_DIR}/*.yml"),
    "facility": (Facility, f"{FACILITIES_DIR}/*.yml"),
}


def schema_of(model: type[Strict], files: str) -> dict[str, Any]:
    """The JSON Schema a file of `model` must follow (draft 2020-12, as pydantic writes it)."""
    schema = model.model_json_schema(mode="validation")
    # `name` comes from the file name; the loader refuses it as a key.
    schema["properties"].pop("name", None)
    schema["required"] = [key for key in schema.get("required", []) if key != "name"]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "description": f"casabook {model.__name__.lower()} file ({files}). {schema.pop('description', '')}".strip(),
            **schema}


def default_folder(root: Path) -> Path:
    return root / ".casabook" / "schema"


def write_schemas(folder: Path) -> list[Path]:
    """Write <kind>.schema.json for each kind of file into `folder`; return the paths written."""
    return [write_text(folder / f"{kind}.schema.json", json.dumps(schema_of(model, files), indent=2) + "\n")
            for kind, (model, files) in SCHEMAS.items()]
