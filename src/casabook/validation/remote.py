"""`casabook validate --hub`: each notebook run in a real session on a hub, as an attendee's first click would.

The day-before run. As the validation user (casabook.hub.validator: a user of its own that takes
no participant place), through the hub's REST API with a narrow token (validation.hubsession):

1. start (or reuse) the user's server and wait for it, as the spawn page does;
2. pull the materials through each track's published launch link: its git-pull page, then
   nbgitpuller's git-pull/api stream (casabook.hub.browser), so the link itself is tested;
3. run each notebook, as pulled, in that server's own kernel (validation.hubrun, over
   validation.gateway) with papermill, the same injected parameters, per-cell and per-notebook
   limits and checks as the offline matrix; a notebook past its limit has its kernel deleted;
4. bring the executed notebook (and the results JSON it wrote) back, and stop the server unless
   told to keep it.

The results become a column of the report beside the offline matrix's (validation.hubreport).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from casabook.errors import CasabookError
from casabook.hub.api import HubAPI, HubAPIError
from casabook.model import Facility, Track, Workshop
from casabook.validation.hubrun import KERNEL_START_TIMEOUT, HubRun, run_notebook, run_result
from casabook.validation.hubsession import (
    HubTarget,
    check_access,
    hub_target,
    hub_token,
    pull_through_link,
    start_server,
    stop_server,
)
from casabook.validation.results import Failure, Limits, RunResult


def hub_tracks(workshop: Workshop, facility: Facility, names: list[str] | None) -> list[Track]:
    """The tracks on the facility (all of them on one no track names: the embedded default runs the
    whole workshop), narrowed to --track."""
    on_facility = [t for t in workshop.tracks.values() if t.facility == facility.name] or list(workshop.tracks.values())
    if not names:
        return on_facility
    chosen = workshop.select_tracks(names)
    elsewhere = [t.name for t in chosen if t not in on_facility]
    if elsewhere:
        raise CasabookError("track-not-on-hub", f"track {', '.join(elsewhere)} does not run on facility "
                            f"{facility.name!r}, which this hub serves", key="--track")
    return chosen


# --- the whole run -----------------------------------------------------------------------------------


@dataclass
class HubValidation:
    target: HubTarget
    token: str
    limits: Limits
    output: Path
    keep: bool = False
    on_event: Callable[[str, str, str], None] = lambda kind, notebook, detail: None

    async def run(self, workshop: Workshop, tracks: list[Track]) -> list[RunResult]:
        from casabook.links import track_links
        from casabook.validation.gateway import connect

        target = self.target
        async with HubAPI(target.hub_url, self.token, url_option="--hub") as api:
            await check_access(api, target)
            server_url, _ = await start_server(api, target)
            try:
                connect(server_url, self.token, request_timeout=KERNEL_START_TIMEOUT)
                results: list[RunResult] = []
                for track in tracks:
                    links = track_links(workshop, track, hub_url=target.hub_url)
                    self.on_event("pull", track.name, "")
                    problem = await pull_through_link(server_url, links[0].url, self.token,
                                                      timeout=self.limits.notebook_timeout_s)
                    for link in links:
                        run = HubRun(track, link.notebook, f"{link.source.targetpath}/{link.notebook}")
                        if problem:
                            results.append(run_result(run, target, self.output, None, time.monotonic(),
                                                      [Failure(kind="pull", message=problem)]))
                            self.on_event("done", link.notebook, "failed")
                            continue
                        self.on_event("start", link.notebook, "")
                        # In this thread, which waits while papermill runs in one of its own: Python 3.11's
                        # ast.parse (the checks) is not safe beside another thread's parsing.
                        result = run_notebook(
                            run, target, server_url, self.token, self.limits, self.output, workshop,
                            lambda cell, name=link.notebook: self.on_event("cell", name, cell.describe()))
                        results.append(result)
                        self.on_event("done", link.notebook, result.status)
                return results
            finally:
                if not self.keep:
                    await stop_server(api, target)


def validate_on_hub(workshop: Workshop, hub_url: str, *, facility: str | None = None, tracks: list[str] | None = None,
                    user: str | None = None, keep: bool = False, output: Path | None = None,
                    cell_timeout: float | None = None, notebook_timeout: float | None = None,
                    console: Any = None) -> tuple[Any, list[RunResult]]:
    """Run the tracks' notebooks in a session on the hub; the report (with the hub's column) and the hub's runs."""
    from rich.markup import escape

    from casabook.progress import progress_bar
    from casabook.validation.hubreport import add_column
    from casabook.validation.matrix import DEFAULT_CELL_TIMEOUT, DEFAULT_NOTEBOOK_TIMEOUT, default_output

    target = hub_target(workshop, hub_url, facility, user)
    selected = hub_tracks(workshop, target.facility, tracks)
    limits = Limits(cell_timeout_s=DEFAULT_CELL_TIMEOUT if cell_timeout is None else cell_timeout,
                    notebook_timeout_s=DEFAULT_NOTEBOOK_TIMEOUT if notebook_timeout is None else notebook_timeout)
    for name, value in (("--cell-timeout", limits.cell_timeout_s), ("--notebook-timeout", limits.notebook_timeout_s)):
        if value <= 0:
            raise CasabookError("bad-option", f"expected a positive number of seconds, got {value:g}", key=name)
    token = hub_token(target.user)
    output = (output or default_output(workshop.root)).resolve()
    total = sum(len(t.notebooks) for t in selected)
    with progress_bar(console, f"validate on {target.hub_url}", total) as bar:
        def on_event(kind: str, name: str, detail: str) -> None:
            if kind == "done":
                bar.advance()
                bar.print(f"[{'green' if detail == 'passed' else 'red'}]{detail}[/] {escape(name)} on "
                          f"{escape(target.column)}")
            elif kind == "pull":
                bar.status(f"pulling track {name} through its launch link")
            else:
                bar.status(f"{PurePosixPath(name).name}{' ' + detail if detail else ''}")

        try:
            runs = asyncio.run(HubValidation(target, token, limits, output, keep=keep, on_event=on_event)
                               .run(workshop, selected))
        except HubAPIError as error:  # e.g. 429: the hub's concurrent-spawn limit, or its server limit
            raise CasabookError("hub-api", f"the hub at {target.hub_url} refused: {error}", key="--hub") from None
    return add_column(output, target.column, runs, limits), runs
