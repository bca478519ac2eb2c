"""A hub's runs as a column of the validation report, beside the offline matrix's columns.

report.json and report.html in the output folder keep every column already there (the offline
facilities, other hubs); this hub's column is replaced whole by its latest run.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from casabook import __version__
from casabook.validation.report import REPORT_JSON, write_report
from casabook.validation.results import Limits, Report, RunResult


def read_report(folder: Path) -> Report | None:
    try:
        data = json.loads((folder / REPORT_JSON).read_text(encoding="utf-8"))
        for run in data.get("runs", []):
            run.pop("failure", None)  # computed from `failures`: written out, refused on reading (extra="forbid")
        return Report.model_validate(data)
    except (OSError, ValueError, AttributeError):
        return None  # none yet, or one an older casabook wrote: the hub's column starts a new report


def add_column(folder: Path, column: str, runs: list[RunResult], limits: Limits) -> Report:
    """The report in `folder` with `column` holding `runs`; written (json and html) before it is returned."""
    existing = read_report(folder)
    kept = [run for run in existing.runs if run.facility != column] if existing else []
    report = Report(
        casabook_version=__version__,
        generated_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        jobs=existing.jobs if existing else 1,
        limits=limits,
        facilities=[*(f for f in (existing.facilities if existing else []) if f != column), column],
        notebooks=list(dict.fromkeys([*(existing.notebooks if existing else []), *(run.notebook for run in runs)])),
        runs=[*kept, *runs],
    )
    write_report(report, folder)
    return report
