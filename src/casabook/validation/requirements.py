"""What each notebook needs of its facility's image (its imports, its declared requirements), checked against it.

A track (`requirements:` in tracks/<name>.yml) or a notebook (`casabook.requirements` in its
metadata) may declare PEP 508 requirements, e.g. `mplhep>=0.3.50`: the lesson of a workshop whose
image had an mplhep too old for its notebooks. Each is checked against the image as built here from
its files (casabook.validation.environments): the version its files pin, else the one their range
resolved to here, which the finding says. Imports are checked against the same set, mapped to
distributions with the image's own module map (a snapshot's) or the built environment's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from casabook.errors import CasabookError
from casabook.image import Image, normalise
from casabook.model import Track, Workshop

# (check, subject, status, detail): the fields of casabook.check.Finding.
Row = tuple[str, str, str, str]


def notebook_requirements(nb: Mapping[str, Any]) -> list[str]:
    """The PEP 508 requirements a notebook's metadata declares (metadata.casabook.requirements)."""
    declared = (nb.get("metadata", {}).get("casabook") or {}).get("requirements") or []
    return [str(item) for item in declared] if isinstance(declared, list) else [str(declared)]


def unmet(requirement: str, image: Image, python: str = "") -> str | None:
    """Why the image does not meet the requirement (None: it does)."""
    try:
        wanted = Requirement(requirement)
    except InvalidRequirement as error:
        return f"{requirement!r} is not a PEP 508 requirement ({error})"
    if wanted.marker is not None and python and not wanted.marker.evaluate({"python_version": ".".join(python.split(".")[:2])}):
        return None
    package = image.get(wanted.name)
    if package is None:
        return f"needs {requirement}; the image has no {normalise(wanted.name)}"
    version = package.version
    if version is None:
        return (f"needs {requirement}; the image's files give {normalise(wanted.name)} {package.spec or 'unpinned'}, "
                "no exact version, and it is not built here (take a casabook facility snapshot, or pin it in the "
                "facility's packages)")
    if not wanted.specifier.contains(version, prereleases=True):
        if package.pinned:
            how = f"pinned by {package.source}"
        elif package.spec:
            how = f"resolved here from {package.source}'s {package.spec}"
        else:
            how = f"resolved here: {package.source} gives no version"
        return f"needs {requirement}; the image has {normalise(wanted.name)} {version} ({how})"
    return None


def image_findings(workshop: Workshop, images: Mapping[str, Image] | None = None) -> list[Row]:
    """For each listed notebook: its imports against its facility's image, then each requirement its track or
    it declares. `images`: each facility's image as built here (default: built, or read from the cache)."""
    from casabook.imports import missing_packages_in
    from casabook.validation.notebooks import read_notebook

    images = dict(images) if images is not None else built_images(workshop)
    rows: list[Row] = []
    for track in workshop.tracks.values():
        facility = workshop.facility_of(track)
        image = images[facility.name]
        for entry in track.notebooks:
            try:
                nb = read_notebook(workshop.root, entry.path)
            except CasabookError:  # check's nbformat finding reports the notebook itself
                continue
            rows.append(_imports_row(entry.path, facility.name, missing_packages_in(nb, image)))
            rows.extend(_requirement_rows(track, entry.path, nb, image))
    return rows


def _imports_row(path: str, facility: str, missing: list[str]) -> Row:
    if missing:
        return ("imports", path, "error", f"imports {', '.join(missing)}, not in facility {facility!r}'s image "
                                          f"(hub-config/{facility}.yml image_files, packages)")
    return ("imports", path, "ok", f"all provided by {facility}")


def _requirement_rows(track: Track, path: str, nb: Mapping[str, Any], image: Image) -> list[Row]:
    rows: list[Row] = []
    declared = [(spec, f"tracks/{track.name}.yml requirements") for spec in track.requirements]
    declared += [(spec, f"{path} metadata.casabook.requirements") for spec in notebook_requirements(nb)]
    for spec, where in declared:
        reason = unmet(spec, image, image.python)
        if reason is None:
            rows.append(("requirements", path, "ok", f"{spec} met on {track.facility} ({where})"))
        else:
            rows.append(("requirements", path, "error",
                         f"track {track.name!r} on facility {track.facility!r}: {reason} ({where})"))
    return rows


def built_images(workshop: Workshop, *, console: Any = None) -> dict[str, Image]:
    """Each facility's image as built here: its environment is built first where it is not yet (a cold build
    shows progress on `console`, or on stderr when that is a terminal)."""
    import sys

    from casabook.progress import progress_bar
    from casabook.validation.environments import facility_environment

    used = {workshop.facility_of(track).name: workshop.facility_of(track) for track in workshop.tracks.values()}
    if console is None and sys.stderr.isatty():
        from rich.console import Console

        console = Console(stderr=True)
    images = {}
    with progress_bar(console, "facility environments", len(used)) as bar:
        for name, facility in used.items():
            images[name] = facility_environment(facility, status=bar.status).image(facility)
            bar.advance()
    return images

