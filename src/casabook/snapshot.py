"""`casabook facility snapshot`: the image's package set, written from inside a session on the hub.

Run in a terminal of a session on the facility, it records what that session's image has: the Python
version, every installed distribution (what `pip list --format=json` lists), conda's list where
conda is there, the kernelspecs, the module-to-distribution map and the NAMES of the session's
environment variables (never their values: tokens and secrets live there). A facility names the
file in `image_files:`; casabook.image reads it back.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from casabook.atomic import write_text
from casabook.image import SNAPSHOT_FORMAT


def _pip_list() -> list[dict[str, str]]:
    import importlib.metadata

    seen: dict[str, dict[str, str]] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in seen:  # the first on sys.path wins, as for an import
            seen[name.lower()] = {"name": name, "version": dist.version, **_origin(dist)}
    return sorted(seen.values(), key=lambda entry: entry["name"].lower())


def _origin(dist: Any) -> dict[str, str]:
    """Where a distribution installed from a folder or a URL came from, as pip list says it (PEP 610)."""
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        return {}
    if direct.get("dir_info", {}).get("editable"):
        return {"editable_project_location": direct.get("url", "").removeprefix("file://")}
    return {"url": direct["url"]} if direct.get("url") else {}


def _conda_list() -> list[dict[str, Any]] | None:
    """`conda list --json` of the running environment, where a conda (or mamba, micromamba) is on PATH."""
    for tool in ("conda", "mamba", "micromamba"):
        if (found := shutil.which(tool)) is None:
            continue
        prefix = ["--prefix", os.environ["CONDA_PREFIX"]] if os.environ.get("CONDA_PREFIX") else []
        done = subprocess.run([found, "list", "--json", *prefix], capture_output=True, text=True, check=False,
                              timeout=120)
        if done.returncode == 0:
            try:
                return json.loads(done.stdout)
            except ValueError:
                return None
    return None


def _kernelspecs() -> dict[str, dict[str, Any]]:
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError:
        return {}
    specs = KernelSpecManager().get_all_specs()
    return {name: {"argv": spec["spec"].get("argv", []), "language": spec["spec"].get("language", ""),
                   "display_name": spec["spec"].get("display_name", "")} for name, spec in sorted(specs.items())}


def take_snapshot() -> dict[str, Any]:
    """What this session's image has, as the facility file's `image_files:` reads it."""
    from importlib.metadata import packages_distributions

    return {
        "casabook_snapshot": SNAPSHOT_FORMAT,
        "python": platform.python_version(),
        "pip": _pip_list(),
        "conda": _conda_list(),
        "kernelspecs": _kernelspecs(),
        "modules": {module: sorted(set(dists)) for module, dists in sorted(packages_distributions().items())},
        "environment_variables": sorted(os.environ),  # names only: their values may be secrets
    }


def write_snapshot(output: Path | None) -> str:
    """The snapshot as JSON, written whole to `output` (or returned for standard output)."""
    text = json.dumps(take_snapshot(), indent=1) + "\n"
    if output is not None:
        write_text(output, text)
    return text
