"""`casabook check`: everything that can be known about the workshop without running a notebook.

The loader's checks (files, keys, cross-references) report every mistake in the files with exit 2;
the checks here look at every notebook and facility and report all findings in one table (or JSON).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import nbformat
from rich.console import Console
from rich.table import Table

from casabook.atomic import replacing
from casabook.errors import CasabookError
from casabook.links import check_links, checked_against, track_links
from casabook.validation.requirements import image_findings
from casabook.model import Facility, Track, Workshop
from casabook.notebook_lint import lint_workshop

Status = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    check: str
    subject: str
    status: Status
    detail: str


def _read_notebook(path: Path) -> tuple[nbformat.NotebookNode | None, str]:
    try:
        notebook = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        nbformat.validate(notebook)
    except (nbformat.ValidationError, ValueError, OSError) as error:
        return None, str(error).splitlines()[0]
    return notebook, ""


def write_notebook_atomically(notebook: nbformat.NotebookNode, path: Path) -> None:
    """Replace the notebook whole, so an interrupted write never leaves half a notebook."""
    with replacing(path) as stream:
        nbformat.write(notebook, stream)


def _kernel_display_name(kernel: str) -> str:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return KernelSpecManager().get_kernel_spec(kernel).display_name
    except NoSuchKernel:
        return kernel


def check_notebook(workshop: Workshop, track: Track, path: str, *, fix: bool = False) -> list[Finding]:
    facility = workshop.facility_of(track)
    notebook, problem = _read_notebook(workshop.root / path)
    if notebook is None:
        return [Finding("nbformat", path, "error", f"not a valid notebook: {problem}")]
    findings = [Finding("nbformat", path, "ok", f"nbformat {notebook.nbformat}.{notebook.nbformat_minor}")]

    declared = notebook.metadata.get("kernelspec", {}).get("name")
    if declared == facility.kernel:
        findings.append(Finding("kernel", path, "ok", f"{declared} ({facility.name})"))
    elif fix:
        notebook.metadata["kernelspec"] = {"name": facility.kernel, "display_name": _kernel_display_name(facility.kernel),
                                           "language": "python"}
        write_notebook_atomically(notebook, workshop.root / path)
        findings.append(Finding("kernel", path, "ok", f"fixed: {declared!r} -> {facility.kernel!r}"))
    else:
        findings.append(Finding("kernel", path, "error",
                                f"declares kernel {declared!r}; facility {facility.name!r} runs {facility.kernel!r} "
                                "(casabook check --fix rewrites it)"))
    return findings


def check_capacity(facility: Facility, participants: int | None = None, label: str = "") -> list[Finding]:
    """Cores and memory for `participants` (default: the cap) against what the facility gives."""
    resources = facility.resources
    count = facility.caps.participants if participants is None else participants
    findings = []
    for what, per_user, total, unit in (
        ("cores", resources.cores_per_user, resources.total_cores, ""),
        ("memory", resources.memory_gib_per_user, resources.total_memory_gib, " GiB"),
    ):
        needed = count * per_user
        detail = f"{count} participants x {per_user:g}{unit} = {needed:g}{unit} of {total:g}{unit}"
        findings.append(Finding("capacity", f"{facility.name} {what}{label}", "ok" if needed <= total else "error",
                                detail))
    return findings


def check_registration(workshop: Workshop, facility: Facility,
                       environ: Mapping[str, str] = os.environ) -> list[Finding]:
    """The registration list against the cap and the facility's capacity: how many places are left."""
    from casabook.hub.registration import read, row_problems

    if facility.registration is None:
        return []
    subject = f"{facility.name} registration"
    try:
        found = read(facility, workshop.root, environ, workshop.tracks.values())
    except CasabookError as error:
        status: Status = "warning" if error.code == "registration-unset" else "error"
        return [Finding("registration", subject, status, "; ".join(m.render() for m in error.mistakes))]
    assert found is not None
    findings = [Finding("registration", f"{row.file}:{row.line}", "warning" if row.line in one.duplicate_rows
                        else "error", row.message) for one in found.each for row in row_problems(one)]
    for name, one in found.tracks.items():
        track_cap = workshop.tracks[name].participant_cap
        findings.append(Finding("registration", f"track {name}", "ok" if len(one) <= track_cap else "error",
                                f"{len(one)} registered for the track, of its participant_cap {track_cap} "
                                f"(tracks/{name}.yml)"))
    registered, cap = len(found), facility.caps.participants
    walk_ins = facility.registration.walk_ins
    if registered > cap:
        findings.append(Finding("registration", subject, "error",
                                f"{registered} registered, above the cap of {cap} (hub-config/{facility.name}.yml "
                                "caps.participants): registrants always get in, so the hub would hold "
                                f"{registered}"))
    else:
        left = cap - registered
        detail = (f"{registered} registered of {cap} places: {left} left for walk-ins" if walk_ins == "up-to-cap"
                  else f"{registered} registered of {cap} places: {left} unused (walk_ins: none)")
        findings.append(Finding("registration", subject, "ok", detail))
    if registered > cap:  # within the cap, the capacity check of the cap covers them
        findings.extend(check_capacity(facility, registered, " (registered)"))
    return findings


def orphan_notebooks(workshop: Workshop) -> list[Finding]:
    listed = {entry.path for track in workshop.tracks.values() for entry in track.notebooks}
    on_disk = sorted(str(p.relative_to(workshop.root)) for p in (workshop.root / "notebooks").rglob("*.ipynb")
                     if ".ipynb_checkpoints" not in p.parts and "output" not in p.parts)
    return [Finding("tracks", path, "warning", "not listed in any track: attendees will not see it")
            for path in on_disk if path not in listed]


def check_track_links(workshop: Workshop, track: Track) -> list[Finding]:
    """The track's launch links as published, checked where its hub clones from (casabook.links)."""
    try:
        links = track_links(workshop, track)
    except CasabookError as error:
        return [Finding("links", track.name, "error", error.render())]
    problems = check_links(workshop.root, links)
    findings = [Finding("links", track.name if problem.whole_source else problem.link.notebook, problem.status,
                        problem.reason)
                for problem in {(p.status, p.reason): p for p in problems}.values()]
    if not any(finding.status == "error" for finding in findings):
        source = links[0].source
        findings.append(Finding("links", track.name, "ok",
                                f"{len(links)} link(s) into {links[0].hub_url} pull {source.repo} branch "
                                f"{source.branch!r}, checked against {checked_against(workshop.root, source)}"))
    return findings


def run_checks(workshop: Workshop, *, fix: bool = False) -> list[Finding]:
    findings: list[Finding] = []
    for track in workshop.tracks.values():
        for entry in track.notebooks:
            findings.extend(check_notebook(workshop, track, entry.path, fix=fix))
    findings.extend(Finding(*row) for row in image_findings(workshop))
    for track in workshop.tracks.values():
        findings.extend(check_track_links(workshop, track))
    for name in sorted({track.facility for track in workshop.tracks.values()}):
        findings.extend(check_capacity(workshop.facilities[name]))
        findings.extend(check_registration(workshop, workshop.facilities[name]))
    findings.extend(orphan_notebooks(workshop))
    # What a strict book build would refuse in the markdown, found without building.
    findings.extend(Finding("markdown", f"{p.notebook} {p.place}", "error", f"{p.message} [{p.rule}]")
                    for p in lint_workshop(workshop))
    return findings


STYLE = {"ok": "green", "warning": "yellow", "error": "bold red"}


def render(findings: list[Finding], console: Console, fmt: str = "table") -> None:
    """The findings as a table with a verdict (for people) or as JSON (for tools)."""
    errors = sum(f.status == "error" for f in findings)
    warnings = sum(f.status == "warning" for f in findings)
    if fmt == "json":
        print(json.dumps({"clean": not errors, "errors": errors, "warnings": warnings,
                          "findings": [asdict(finding) for finding in findings]}, indent=2))
        return
    table = Table(title="casabook check", show_lines=False)
    for column in ("check", "subject", "status", "detail"):
        table.add_column(column, overflow="fold")
    for finding in findings:
        table.add_row(finding.check, finding.subject, f"[{STYLE[finding.status]}]{finding.status}[/]", finding.detail)
    console.print(table)
    verdict = "[bold red]not clean[/]" if errors else "[green]clean[/]"
    console.print(f"{verdict}: {errors} error(s), {warnings} warning(s), {len(findings)} check(s)")
