"""The sessions' working folders: each facility's home laid out as nbgitpuller lays out an attendee's.

<output>/sessions/<facility>/<targetpath>/<notebook path>: a fresh copy of the materials per home,
so a run reads the helper files and inputs beside its notebook as an attendee's session would.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from casabook.model import Workshop
from casabook.validation.materials import material_files
from casabook.validation.plan import SESSIONS_DIR, Run


def prepare_sessions(workshop: Workshop, runs: list[Run], output: Path) -> None:
    """A fresh home per facility with the materials in it, and empty places for each run's outputs."""
    folders = sorted({Path(run.notebook).parts[0] for run in runs})
    files = material_files(workshop.root, folders)
    for home in sorted({(run.facility.name, run.targetpath) for run in runs}):
        destination = output / SESSIONS_DIR / home[0] / home[1]
        shutil.rmtree(destination, ignore_errors=True)
        for relative in files:
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(workshop.root / relative, target)
    for run in runs:
        run.session_notebook(output).parent.mkdir(parents=True, exist_ok=True)
        run.executed_path(output).parent.mkdir(parents=True, exist_ok=True)
        run.output_dir(output).mkdir(parents=True, exist_ok=True)
        for stale in (run.executed_path(output), run.log_path(output), run.results_path(output)):
            stale.unlink(missing_ok=True)
