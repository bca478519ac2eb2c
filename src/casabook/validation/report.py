"""The validation report on disk: one JSON file for machines, one self-contained HTML page for people."""

from __future__ import annotations

import html
import json
from pathlib import Path
from string import Template
from typing import Any

from casabook.atomic import write_text
from casabook.validation.results import Report, RunResult

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


def write_report(report: Report, folder: Path) -> tuple[Path, Path]:
    """report.json and report.html in `folder`; each written whole or not at all."""
    report._folder = folder
    json_path, html_path = folder / REPORT_JSON, folder / REPORT_HTML
    write_text(json_path, json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
    write_text(html_path, render_html(report))
    return json_path, html_path


_TEMPLATE = Template((Path(__file__).with_name("report.html")).read_text(encoding="utf-8"))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _matrix_cell(run: RunResult | None, anchor: str) -> str:
    if run is None:
        return '<td class="none">—</td>'
    lines = [f'<a href="#{anchor}" class="badge {run.status}">{run.shown_status()}</a>',
             f'<div class="figures">{_e(run.figures())}</div>']
    if run.failure is not None:
        where = run.failure.cell.describe() if run.failure.cell else run.failure.kind
        lines.append(f'<div class="where" title="{_e(run.failure.message)}">{_e(run.failure.kind)} · {_e(where)}</div>')
    if run.substitutions:
        titles = "&#10;".join(_e(s.describe()) for s in run.substitutions)
        lines.append(f'<div class="subs" title="{titles}">{len(run.substitutions)} substitution(s)</div>')
    return f'<td class="{run.status}">' + "".join(lines) + "</td>"


def _details(run: RunResult, anchor: str) -> str:
    rows = [f'<section id="{anchor}" class="run {run.status}">',
            f"<h3>{_e(run.notebook)} on {_e(run.facility)} <span class=\"badge {run.status}\">{run.shown_status()}</span></h3>",
            f"<p>track {_e(run.track)} · {_e(run.figures())}"]
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
    if run.environment is not None:
        rows.append(f"<p>Environment: {_e(run.environment.describe())}</p>")
    if run.substitutions:
        rows.append("<p>Substituted here:</p><ul>" + "".join(f"<li>{_e(s.describe())}</li>" for s in run.substitutions)
                    + "</ul>")
    if run.notes:
        rows.append("<p>Notes:</p><ul>" + "".join(f"<li>{_e(n)}</li>" for n in run.notes) + "</ul>")
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
