"""The result cache: a run whose key matches a stored, reusable result is not run again.

Results are stored under <output>/cache/<key>.json as each run ends, so an interrupted matrix
keeps what it finished.
"""

from __future__ import annotations

from pathlib import Path

from casabook.atomic import write_text
from casabook.validation.plan import Run
from casabook.validation.results import STATIC_KINDS, RunResult

CACHE_DIR = "cache"


def is_reusable(result: RunResult) -> bool:
    """A pass, or a failure found before the kernel started: both follow from the key alone.
    A failure while running may be the machine's (a busy core, a full disk), so it is run again."""
    return result.status == "passed" or (
        result.status == "failed" and bool(result.failures) and all(f.kind in STATIC_KINDS for f in result.failures))


def cached_result(run: Run, output: Path) -> RunResult | None:
    """The stored result of an identical run, if reusable (and, for a pass, its executed notebook is still there)."""
    path = output / CACHE_DIR / f"{run.key}.json"
    try:
        stored = RunResult.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not is_reusable(stored):
        return None
    if stored.status == "passed":
        if stored.executed_notebook is None or not (output / stored.executed_notebook).is_file():
            return None
        return stored.model_copy(update={"status": "cached", "from_cache": True, "track": run.track.name})
    return stored.model_copy(update={"from_cache": True, "track": run.track.name})


def store_result(result: RunResult, output: Path) -> None:
    # `failure` is computed from `failures`: stored, it would be refused on reading (extra="forbid").
    write_text(output / CACHE_DIR / f"{result.key}.json", result.model_dump_json(exclude={"failure"}))
