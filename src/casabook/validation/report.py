"""The validation report: one JSON file for machines, one self-contained HTML page for people,
and the rich summary table the command prints.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path
from string import Template
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, computed_field

Status = Literal["passed", "failed", "cached"]
FailureKind = Literal[
    "error",             # a cell raised
    "cell-timeout",      # a cell ran past the per-cell limit
    "notebook-timeout",  # the notebook ran past the per-notebook limit
    "kernel-died",       # the kernel process exited while a cell ran
    "kernel-start",      # the kernel did not start or did not answer
    "kernel-mismatch",   # the notebook declares another kernel than the facility runs
    "missing-package",   # it imports a distribution the facility's image lacks
    "parameters",        # it does not declare a parameter the session injects
    "environment",       # it reads a variable the facility does not set, without a default
    "internal",          # the validator itself failed (a bug): the message says where
]
# Failures found before a kernel starts depend on nothing but the cache key's inputs: safe to reuse.
STATIC_KINDS = frozenset({"kernel-mismatch", "missing-package", "parameters", "environment"})

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CellRef(Model):
    index: int | None = Field(description="0-based position among all cells of the notebook as committed; "
                                          "None for the parameters cell papermill injects")
    first_line: str

    def describe(self) -> str:
        where = f"cell {self.index}" if self.index is not None else "the injected parameters cell"
        return f"{where} ({self.first_line})" if self.first_line else where


class Failure(Model):
    kind: FailureKind
    message: str
    cell: CellRef | None = None
    traceback: str = ""

    def describe(self) -> str:
        where = f"{self.cell.describe()}: " if self.cell else ""
        return f"{self.kind}: {where}{self.message}"


class Substitution(Model):
    """A facility service that cannot exist on this machine, and what stood in for it."""

    setting: str
    facility_value: str
    local_value: str | None = Field(description="None when the setting was removed")
    reason: str

    def describe(self) -> str:
        instead = f"-> {self.local_value!r}" if self.local_value is not None else "removed"
        return f"{self.setting}: {self.facility_value} {instead} ({self.reason})"


class RunResult(Model):
    notebook: str
    track: str
    facility: str
    status: Status
    duration_s: float | None = None
    peak_memory_mib: float | None = Field(None, description="peak resident memory of the kernel's process tree")
    cpu_s: float | None = Field(None, description="CPU time (user + system) of the kernel and the processes it reaped")
    substitutions: list[Substitution] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    failures: list[Failure] = Field(default_factory=list)
    executed_notebook: str | None = Field(None, description="relative to the report's folder")
    log: str | None = Field(None, description="the kernel's stdout and stderr, relative to the report's folder")
    results: dict[str, Any] = Field(default_factory=dict, description="the notebook's own results JSON")
    key: str = Field(description="the cache key: notebook, facility, package versions, data")
    from_cache: bool = Field(False, description="reused from an identical earlier run (a pass, or a failure "
                                                "found before the kernel started) instead of run again")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failure(self) -> Failure | None:
        """The first failure: what an attendee would meet first."""
        return self.failures[0] if self.failures else None


class Limits(Model):
    cell_timeout_s: float
    notebook_timeout_s: float


class Report(Model):
    casabook_version: str
    generated_at: str
    jobs: int
    limits: Limits
    facilities: list[str]
    notebooks: list[str]
    runs: list[RunResult]
    _folder: Path | None = PrivateAttr(None)

    @property
    def folder(self) -> Path:
        """Where report.json, report.html and the executed notebooks are (not part of the JSON)."""
        if self._folder is None:
            raise ValueError("this report was not written to a folder")
        return self._folder

    def count(self, status: Status) -> int:
        return sum(run.status == status for run in self.runs)

    @property
    def ok(self) -> bool:
        return all(run.status != "failed" for run in self.runs)

    def run(self, notebook: str, facility: str) -> RunResult | None:
        return next((r for r in self.runs if r.notebook == notebook and r.facility == facility), None)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the report from a web server or a colleague
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_report(report: Report, folder: Path) -> tuple[Path, Path]:
    """report.json and report.html in `folder`; each written whole or not at all."""
    report._folder = folder
    json_path, html_path = folder / REPORT_JSON, folder / REPORT_HTML
    _write_atomically(json_path, json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
    _write_atomically(html_path, render_html(report))
    return json_path, html_path


# --- HTML -----------------------------------------------------------------------------------

_TEMPLATE = Template((Path(__file__).with_name("report.html")).read_text(encoding="utf-8"))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _figures(run: RunResult) -> str:
    parts = []
    if run.duration_s is not None:
        parts.append(f"{run.duration_s:.1f} s")
    if run.peak_memory_mib is not None:
        parts.append(f"{run.peak_memory_mib:.0f} MiB")
    if run.cpu_s is not None:
        parts.append(f"{run.cpu_s:.1f} s CPU")
    return " · ".join(parts)


def _status(run: RunResult) -> str:
    return f"{run.status} (cached)" if run.status == "failed" and run.from_cache else run.status


def _matrix_cell(run: RunResult | None, anchor: str) -> str:
    if run is None:
        return '<td class="none">—</td>'
    lines = [f'<a href="#{anchor}" class="badge {run.status}">{_status(run)}</a>',
             f'<div class="figures">{_e(_figures(run))}</div>']
    if run.failure is not None:
        where = run.failure.cell.describe() if run.failure.cell else run.failure.kind
        lines.append(f'<div class="where" title="{_e(run.failure.message)}">{_e(run.failure.kind)} · {_e(where)}</div>')
    if run.substitutions:
        titles = "&#10;".join(_e(s.describe()) for s in run.substitutions)
        lines.append(f'<div class="subs" title="{titles}">{len(run.substitutions)} substitution(s)</div>')
    return f'<td class="{run.status}">' + "".join(lines) + "</td>"


def _details(run: RunResult, anchor: str) -> str:
    rows = [f'<section id="{anchor}" class="run {run.status}">',
            f"<h3>{_e(run.notebook)} on {_e(run.facility)} <span class=\"badge {run.status}\">{_status(run)}</span></h3>",
            f"<p>track {_e(run.track)} · {_e(_figures(run))}"]
    if run.executed_notebook:
        rows.append(f' · executed notebook <a href="{_e(run.executed_notebook)}">{_e(run.executed_notebook)}</a>')
    if run.log:
        rows.append(f' · kernel log <a href="{_e(run.log)}">{_e(run.log)}</a>')
    rows.append("</p>")
    for failure in run.failures:
        rows.append(f'<div class="failure"><p><b>{_e(failure.kind)}</b>')
        if failure.cell:
            rows.append(f" in {_e(failure.cell.describe())}")
        rows.append(f": {_e(failure.message)}</p>")
        if failure.traceback:
            rows.append(f"<pre>{_e(failure.traceback)}</pre>")
        rows.append("</div>")
    if run.substitutions:
        rows.append("<p>Substituted here:</p><ul>" + "".join(f"<li>{_e(s.describe())}</li>" for s in run.substitutions)
                    + "</ul>")
    if run.warnings:
        rows.append("<p>Warnings:</p><ul>" + "".join(f"<li>{_e(w)}</li>" for w in run.warnings) + "</ul>")
    if run.results:
        rows.append("<p>Results the notebook wrote:</p><pre>" + _e(json.dumps(run.results, indent=2)) + "</pre>")
    rows.append("</section>")
    return "".join(rows)


def render_html(report: Report) -> str:
    anchors = {(run.notebook, run.facility): f"run-{index}" for index, run in enumerate(report.runs)}
    header = "".join(f"<th>{_e(name)}</th>" for name in report.facilities)
    body = []
    for notebook in report.notebooks:
        cells = "".join(_matrix_cell(report.run(notebook, facility), anchors.get((notebook, facility), ""))
                        for facility in report.facilities)
        track = next((r.track for r in report.runs if r.notebook == notebook), "")
        body.append(f"<tr><th class=\"nb\">{_e(notebook)}<div class=\"track\">{_e(track)}</div></th>{cells}</tr>")
    details = "".join(_details(run, anchors[(run.notebook, run.facility)]) for run in report.runs)
    verdict = "all passed" if report.ok else f"{report.count('failed')} failed"
    return _TEMPLATE.substitute(
        verdict=_e(verdict),
        verdict_class="ok" if report.ok else "failed",
        passed=report.count("passed"),
        failed=report.count("failed"),
        cached=report.count("cached"),
        generated_at=_e(report.generated_at),
        version=_e(report.casabook_version),
        jobs=report.jobs,
        cell_timeout=f"{report.limits.cell_timeout_s:g}",
        notebook_timeout=f"{report.limits.notebook_timeout_s:g}",
        header=header,
        rows="".join(body),
        details=details,
    )


# --- the terminal summary -------------------------------------------------------------------

_STYLE = {"passed": "green", "failed": "bold red", "cached": "cyan"}


def summary_table(report: Report) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="casabook validate", show_lines=True)
    table.add_column("notebook", overflow="fold")
    for facility in report.facilities:
        table.add_column(facility, overflow="fold")
    for notebook in report.notebooks:
        row = [escape(notebook)]
        for facility in report.facilities:
            run = report.run(notebook, facility)
            if run is None:
                row.append("[dim]—[/]")
                continue
            text = f"[{_STYLE[run.status]}]{_status(run)}[/]"
            if figures := _figures(run):
                text += f"\n{figures}"
            if run.failure is not None:
                where = run.failure.cell.describe() if run.failure.cell else ""
                text += f"\n[red]{escape(run.failure.kind)}[/] {escape(where)}"
            if run.substitutions:
                text += f"\n[dim]{len(run.substitutions)} substitution(s)[/]"
            row.append(text)
        table.add_row(*row)
    return table


def failure_lines(report: Report) -> list[str]:
    """One line per failed run: notebook, facility and what an attendee would meet first."""
    return [f"{run.notebook} on {run.facility}: {run.failure.describe()}"
            for run in report.runs if run.status == "failed" and run.failure is not None]
