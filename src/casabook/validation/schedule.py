"""The order runs start in: longest expected first (the last to start is then a short one, so the jobs end together)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from casabook.validation.plan import Run
from casabook.validation.report import REPORT_JSON


def _previous_durations(output: Path) -> dict[tuple[str, str], float]:
    try:
        previous = json.loads((output / REPORT_JSON).read_text(encoding="utf-8"))
        return {(r["notebook"], r["facility"]): float(r["duration_s"]) for r in previous["runs"] if r.get("duration_s")}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def recorded_duration(nb: dict[str, Any]) -> float | None:
    """How long the notebook took when its committed outputs were made, from the cells' execution timing."""
    starts, ends = [], []
    for cell in nb["cells"]:
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            starts.append(timing["iopub.execute_input"])
            ends.append(timing["shell.execute_reply"])
    try:
        return (dt.datetime.fromisoformat(max(ends)) - dt.datetime.fromisoformat(min(starts))).total_seconds()
    except ValueError:  # no timing recorded, or not ISO timestamps
        return None


def longest_first(positions: list[int], runs: list[Run], output: Path, notebooks: dict[str, dict[str, Any]]) -> list[int]:
    """`positions` (into `runs`) in the order to start them.

    A run's expected time is as last measured here (the previous report in `output`), else as its
    committed outputs took; an unknown one counts as longest. Equal ones keep the plan's order.
    """
    previous = _previous_durations(output)
    expected = {}
    for position in positions:
        run = runs[position]
        known = previous.get((run.notebook, run.facility.name)) or recorded_duration(notebooks[run.notebook])
        expected[position] = known if known is not None else float("inf")
    return sorted(positions, key=lambda position: -expected[position])
