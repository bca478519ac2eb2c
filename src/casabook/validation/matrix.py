"""The papermill matrix: every notebook against each facility's hub configuration, from plan to report.

A run is an attendee's session on a facility, reproduced here (casabook.validation.session): the
facility's kernel in its own package environment built from its image's files (environments), its
session environment and the parameters the notebook declares, in a working folder
laid out as nbgitpuller lays it out (staging), under a per-cell and a per-notebook time limit.
Services that cannot exist on this machine (XCache, the facility's Dask scheduler, ServiceX) are
substituted, and each run's report says how. Everything else is checked as the facility would
meet it: kernel, requirements and imports against its image, environment variables (checks).

    report = validate(load_workshop(), tracks=["cms"], facilities=["local"], jobs=2)

`validate` is the one entry: it builds or finds each facility's environment (environments), plans
the runs (plan), takes what the cache holds (cache), starts the rest longest first (schedule), in parallel, one kernel each, in child processes forked from a
fork server that has papermill loaded (pool, run), and writes the report (report).
"""

from __future__ import annotations

import datetime as dt
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from casabook import __version__
from casabook.errors import CasabookError
from casabook.model import Facility, Workshop
from casabook.validation.environments import Environment, facility_environment
from casabook.validation.cache import cached_result, is_reusable, store_result
from casabook.validation.kernels import require_kernels
from casabook.validation.notebooks import read_notebook
from casabook.validation.plan import Run, plan_runs
from casabook.validation.pool import NotebookPool, Outcome, warm_up
from casabook.validation.report import write_report
from casabook.validation.results import Limits, Report, RunResult
from casabook.validation.schedule import longest_first
from casabook.validation.staging import prepare_sessions

DEFAULT_CELL_TIMEOUT = 120.0
DEFAULT_NOTEBOOK_TIMEOUT = 300.0


def default_output(root: Path) -> Path:
    return root / "build" / "validate"


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def validate(workshop: Workshop, *, tracks: list[str] | None = None, facilities: list[str] | None = None,
             jobs: int | None = None, force: bool = False, output: Path | None = None,
             cell_timeout: float = DEFAULT_CELL_TIMEOUT, notebook_timeout: float = DEFAULT_NOTEBOOK_TIMEOUT,
             console: Any = None) -> Report:
    """Run each selected track's notebooks on its facility (and on each extra facility); write the report.

    User mistakes (unknown track, facility or kernel, a bad option) raise CasabookError before
    anything runs or is written. `console` (a rich Console) shows a progress bar.
    """
    selected = workshop.select_tracks(tracks)
    extra = [workshop.facility(name) for name in dict.fromkeys(facilities or [])]
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise CasabookError("bad-option", f"expected at least 1 job, got {jobs}", key="--jobs")
    for name, value in (("--cell-timeout", cell_timeout), ("--notebook-timeout", notebook_timeout)):
        if value <= 0:
            raise CasabookError("bad-option", f"expected a positive number of seconds, got {value:g}", key=name)
    output = (output or default_output(workshop.root)).resolve()
    limits = Limits(cell_timeout_s=cell_timeout, notebook_timeout_s=notebook_timeout)

    notebooks = {entry.path: read_notebook(workshop.root, entry.path) for track in selected for entry in track.notebooks}
    used = list({f.name: f for f in [*(workshop.facility_of(t) for t in selected), *extra]}.values())
    environments = _environments(used, console)
    kernels = require_kernels(used, notebooks, environments)
    runs = plan_runs(workshop, selected, extra, limits, notebooks, kernels, environments)

    results: dict[int, RunResult] = {}
    if not force:
        for index, run in enumerate(runs):
            if (hit := cached_result(run, output)) is not None:
                results[index] = hit
    todo = [index for index in range(len(runs)) if index not in results]
    if todo:
        # Here, not at the top: a fully cached run never pays for the progress display's imports.
        from casabook.validation.display import matrix_progress

        warm_up()
        todo = longest_first(todo, runs, output, notebooks)
        prepare_sessions(workshop, [runs[i] for i in todo], output)
        specs = [runs[index].spec(output, limits) for index in todo]
        with matrix_progress(console, len(runs), len(runs) - len(todo)) as progress:
            def on_event(kind: str, position: int, detail: Any) -> None:
                index = todo[position]
                if kind != "done":
                    progress(kind, runs[index], detail.describe() if detail is not None else "")
                    return
                results[index] = _result(runs[index], detail, output)
                if is_reusable(results[index]):
                    store_result(results[index], output)  # at once: an interrupted matrix keeps what it finished
                progress(kind, runs[index], results[index].status)

            NotebookPool(jobs=jobs, notebook_timeout=notebook_timeout, on_event=on_event).run_all(specs)

    report = Report(
        casabook_version=__version__,
        generated_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        jobs=jobs, limits=limits,
        facilities=[f.name for f in used],
        notebooks=list(notebooks),
        runs=[results[index] for index in range(len(runs))],
    )
    write_report(report, output)
    return report


def _environments(facilities: list[Facility], console: Any) -> dict[str, Environment]:
    """Each facility's environment; a cold build shows what it is doing (a warm one is a file read)."""
    found: dict[str, Environment] = {}
    bar = None
    with ExitStack() as stack:
        for facility in facilities:
            if facility.image_files and bar is None:
                from casabook.progress import progress_bar

                bar = stack.enter_context(progress_bar(console, "environments", len(facilities)))
            found[facility.name] = facility_environment(facility, status=bar.status if bar else None)
            if bar is not None:
                bar.advance()
                if found[facility.name].build_s is not None:
                    bar.print(f"built {facility.name}'s environment in {found[facility.name].build_s:.1f} s")
    return found


def _result(run: Run, outcome: Outcome, output: Path) -> RunResult:
    return run.result(
        output, "failed" if outcome.failures else "passed", duration_s=outcome.duration_s,
        peak_memory_mib=round(outcome.peak_bytes / 2**20, 1) if outcome.peak_bytes else None,
        cpu_s=outcome.cpu_s, failures=outcome.failures, results=outcome.results)
