"""`casabook validate --hub`: each notebook run in a real session on a hub, as an attendee's first click would.

The day-before run. As the validation user (casabook.hub.validator: a user of its own that takes
no participant place), through the hub's REST API with a narrow token:

1. start (or reuse) the user's server and wait for it, as the spawn page does;
2. pull the materials through each track's published launch link: its git-pull page, then
   nbgitpuller's git-pull/api stream (casabook.hub.browser), so the link itself is tested;
3. run each notebook, as pulled, in that server's own kernel (casabook.validation.gateway) with
   papermill, the same injected parameters, per-cell and per-notebook limits and checks as the
   offline matrix; a notebook past its limit has its kernel deleted;
4. bring the executed notebook (and the results JSON it wrote) back, and stop the server unless
   told to keep it.

The results become a column of the report beside the offline matrix's (validation.hubreport).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from casabook.errors import CasabookError
from casabook.hub.api import HubAPI, HubAPIError, SpawnFailed, require_loopback, user_path
from casabook.hub.validator import VALIDATOR_TOKEN_ENV, VALIDATOR_USER, validator_scopes
from casabook.model import Facility, Track, Workshop
from casabook.validation.fingerprint import digest, notebook_fingerprint
from casabook.validation.plan import INJECTED_PARAMETERS
from casabook.validation.results import CellRef, Failure, Limits, RunResult

OUTPUT_DIR = "output"  # the notebooks' own convention: results beside the notebook, in output/
STOP_GRACE = 15.0
KERNEL_START_TIMEOUT = 120.0


@dataclass(frozen=True)
class HubTarget:
    """The hub, the facility it serves, the user the notebooks run as, and its column in the report."""

    hub_url: str
    facility: Facility
    user: str = VALIDATOR_USER

    @property
    def column(self) -> str:
        return f"{self.facility.name} @ hub {urlsplit(self.hub_url).netloc}"

    @property
    def folder(self) -> str:
        """Where the hub's executed notebooks go in the output folder."""
        return "hub-" + urlsplit(self.hub_url).netloc.replace(":", "-")


def hub_target(workshop: Workshop, hub_url: str, facility: str | None, user: str | None) -> HubTarget:
    """--hub and --facility: the facility named, else the one whose hub URL this is, else the embedded default."""
    url = require_loopback(hub_url, "--hub")
    if facility:
        chosen = workshop.facility(facility)
    else:
        matching = [f for f in workshop.facilities.values() if f.hub.url.rstrip("/") == url]
        if not matching and "local" not in workshop.facilities:
            raise CasabookError("which-facility", f"no facility's hub is at {url}: name the facility it serves "
                                "with --facility (a forwarded port does not say)", key="--facility")
        chosen = matching[0] if matching else workshop.facility("local")
    return HubTarget(url, chosen, user or VALIDATOR_USER)


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


# --- the hub: credentials, the user, its server --------------------------------------------------


def _covered(scope: str, held: set[str]) -> bool:
    base, _, _ = scope.partition("!")
    return scope in held or base in held


async def check_access(api: HubAPI, target: HubTarget) -> None:
    """The token works on this hub and holds every scope the run needs: else a one-line error naming what is wrong."""
    response = await api.send("GET", "user")
    url = target.hub_url
    if response.status_code in (401, 403):
        raise CasabookError("hub-token", f"the hub at {url} does not accept the token in ${VALIDATOR_TOKEN_ENV} "
                            f"(HTTP {response.status_code}: expired, revoked or another hub's): issue a new one "
                            f"at {url}/hub/token", key=VALIDATOR_TOKEN_ENV)
    try:
        model = response.json() if response.status_code == 200 else None
    except ValueError:
        model = None
    if not isinstance(model, dict) or "scopes" not in model:
        raise CasabookError("not-a-hub", f"{url} answers, but not as JupyterHub does (GET /hub/api/user: HTTP "
                            f"{response.status_code}): give the hub's own URL", key="--hub")
    missing = [scope for scope in validator_scopes(target.user) if not _covered(scope, set(model["scopes"]))]
    if missing:
        raise CasabookError("hub-scope", f"the token in ${VALIDATOR_TOKEN_ENV} lacks the scope"
                            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}, which validate --hub needs "
                            f"(it holds: {', '.join(sorted(model['scopes'])) or 'none'})", key=VALIDATOR_TOKEN_ENV)


async def start_server(api: HubAPI, target: HubTarget) -> tuple[str, bool]:
    """The user's server URL (ending in /), started or reused, and whether it was already running."""
    model = await api.user(target.user)
    if model is None:
        raise CasabookError("no-validation-user", f"the hub at {target.hub_url} has no user {target.user!r}: its "
                            "config creates it (casabook.hub.validator; the Helm values of `casabook hub render`)",
                            key="--hub-user")
    state = await api.start_server(target.user)
    if state != "running":
        try:
            await api.wait_ready(target.user, timeout=target.facility.hub.start_timeout_seconds + 60)
        except SpawnFailed as failed:
            raise CasabookError("hub-spawn", f"{target.user}'s server on {target.hub_url} did not start: {failed}",
                                key="--hub") from None
        model = await api.user(target.user) or model
    path = model.get("server") or f"/user/{user_path(target.user)}/"
    return f"{target.hub_url}{path}", state == "running"


async def stop_server(api: HubAPI, target: HubTarget, *, timeout: float = 60) -> None:
    """Stop the user's server and wait until the hub says it is gone (the token reads this one user only)."""
    await api.stop_server(target.user)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = await api.user(target.user)
        if model is None or not (model.get("server") or model.get("pending")):
            return
        await asyncio.sleep(0.5)
    raise CasabookError("hub-stop", f"{target.user}'s server on {target.hub_url} was still running "
                        f"{timeout:.0f} s after the request to stop it", key="--hub")


# --- the materials, through the launch link -------------------------------------------------------


async def pull_through_link(server_url: str, link_url: str, token: str, *, timeout: float) -> str | None:
    """Walk a launch link as the validation user: its git-pull page in the user's server, then nbgitpuller's
    stream. None when the materials are there; else why not, in one line."""
    from casabook.hub.browser import Browser, PageError, PullFailed
    from casabook.links import parse_launch_url

    _, source, _ = parse_launch_url(link_url)
    # /hub/user-redirect/ sends the logged-in user to their own server: a token's owner may be a
    # service or an organiser, so the link's path is taken into the validation user's server as it would be.
    page = f"{server_url}git-pull?{urlsplit(link_url).query}"
    browser = Browser("casabook-validator", token=token, timeout=timeout)
    try:
        response = await browser.navigate(page)
        if response.status_code != 200:
            return f"the launch link's git-pull page answered HTTP {response.status_code}"
        await browser.git_pull(server_url, {"repo": source.repo, "branch": source.branch,
                                            "targetpath": source.targetpath}, timeout=timeout)
    except (PullFailed, PageError, TimeoutError, httpx.HTTPError) as error:
        return f"nbgitpuller did not bring the materials: {error}"[:300]
    finally:
        await browser.close()
    return None


# --- one notebook in the server's kernel -----------------------------------------------------------


@dataclass(frozen=True)
class HubRun:
    track: Track
    notebook: str        # repository-relative, as the track lists it
    api_path: str        # where it is in the user's server: <targetpath>/<notebook>

    @property
    def output_api_path(self) -> str:
        parent = PurePosixPath(self.api_path).parent
        return str(parent / OUTPUT_DIR / f"{PurePosixPath(self.notebook).stem}.json")


def _contents(client: httpx.Client, path: str) -> dict[str, Any] | None:
    response = client.get(f"api/contents/{quote(path)}", params={"content": "1"})
    return response.json() if response.status_code == 200 else None


def run_notebook(run: HubRun, target: HubTarget, server_url: str, token: str, limits: Limits, output: Path,
                 workshop: Workshop, on_cell: Callable[[CellRef], None] = lambda cell: None) -> RunResult:
    """Run one pulled notebook in the server's kernel with papermill, under the notebook's limit."""
    import nbformat

    from casabook.validation.checks import static_failures

    began = time.monotonic()
    executed = output / target.folder / run.notebook
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.unlink(missing_ok=True)
    facility = target.facility
    session = facility.session_environment(workshop.root)
    parameters = dict(zip(INJECTED_PARAMETERS, (session.get("CASABOOK_DATA_ROOT", ""), facility.dask_scheduler or "",
                                                OUTPUT_DIR), strict=True))
    with httpx.Client(base_url=server_url, headers={"Authorization": f"token {token}"}, timeout=60) as client:
        model = _contents(client, run.api_path)
        if model is None:
            return _result(run, target, output, executed, began, [Failure(
                kind="pull", message=f"{run.api_path} is not in {target.user}'s server after the pull")])
        nb = nbformat.from_dict(model["content"])
        failures = static_failures(nb, facility, injected=parameters, session_variables=session, language="python")
        if failures:
            return _result(run, target, output, executed, began, failures)
        client.delete(f"api/contents/{quote(run.output_api_path)}")  # an earlier run's results are not this one's
        failures = _execute(nb, run, facility.kernel, parameters, limits, executed, server_url, token, on_cell)
        results = {}
        if not failures and (written := _contents(client, run.output_api_path)) is not None:
            results = _results_json(written)
    return _result(run, target, output, executed, began, failures, results)


def _results_json(model: dict[str, Any]) -> dict[str, Any]:
    import json

    content = model.get("content")
    try:
        data = json.loads(content) if isinstance(content, str) else content
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _execute(nb: Any, run: HubRun, kernel: str, parameters: dict[str, Any], limits: Limits, executed: Path,
             server_url: str, token: str, on_cell: Callable[[CellRef], None]) -> list[Failure]:
    """papermill in a thread of its own; past the notebook's limit the kernel is deleted, which ends it."""
    from casabook.validation.gateway import ServerKernelManager

    km = ServerKernelManager(kernel_name=kernel, path=run.api_path)
    state: dict[str, Any] = {"cell": None, "failures": None}

    def cell_started(ref: CellRef) -> None:
        state["cell"] = ref
        on_cell(ref)

    worker = threading.Thread(target=_papermill, args=(nb, km, parameters, limits, executed, state, cell_started),
                              name=f"casabook-validate {run.notebook}", daemon=True)
    worker.start()
    worker.join(limits.notebook_timeout_s)
    if not worker.is_alive():
        return state["failures"] or []
    if km.kernel_id:
        _delete_kernel(server_url, token, km.kernel_id)
    worker.join(STOP_GRACE)
    cell: CellRef | None = state["cell"]
    where = f" while {cell.describe()} ran" if cell else " before the first cell"
    return [Failure(kind="notebook-timeout", cell=cell,
                    message=f"the notebook ran past its limit of {limits.notebook_timeout_s:g} s; its kernel in the "
                            f"hub session was deleted{where}")]


def _delete_kernel(server_url: str, token: str, kernel_id: str) -> None:
    try:
        httpx.delete(f"{server_url}api/kernels/{kernel_id}", headers={"Authorization": f"token {token}"}, timeout=30)
    except httpx.HTTPError:
        pass  # the server is stopped after the run unless kept; its kernels go with it


def _papermill(nb: Any, km: Any, parameters: dict[str, Any], limits: Limits, executed: Path, state: dict[str, Any],
               cell_started: Callable[[CellRef], None]) -> None:
    import papermill
    from jupyter_core.utils import run_sync
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from casabook.validation.preload import ENGINE
    from casabook.validation.run import _save, _source_cell, strip_ansi

    managers: list[Any] = []

    def on_cell_start(executed_nb: Any, index: int) -> None:
        cell_started(_source_cell(executed_nb, index))

    def failed(kind: str, message: str, traceback: str = "") -> None:
        state["failures"] = [Failure(kind=kind, cell=state["cell"], message=message,  # type: ignore[arg-type]
                                     traceback=traceback)]

    try:
        run_sync(km.start_kernel)()
    except Exception as error:  # noqa: BLE001 - any refusal of the server is this run's failure
        state["failures"] = [Failure(kind="kernel-start", message=f"kernel {km.kernel_name!r} did not start in the "
                                     f"hub session: {error}")]
        return
    try:
        papermill.execute_notebook(
            nb, str(executed), parameters=parameters, engine_name=ENGINE, kernel_name=km.kernel_name,
            language="python", progress_bar=False, start_timeout=KERNEL_START_TIMEOUT,
            execution_timeout=limits.cell_timeout_s, km=km, request_save_on_cell_execute=False,
            on_cell_start=on_cell_start, managers=managers)
        state["failures"] = []
    except PapermillExecutionError as error:
        failed("error", f"{error.ename}: {error.evalue}", strip_ansi("\n".join(error.traceback)))
    except CellTimeoutError:
        _save(managers, executed)
        failed("cell-timeout", f"the cell ran past the per-cell limit of {limits.cell_timeout_s:g} s")
    except DeadKernelError:
        _save(managers, executed)
        failed("kernel-died", "the kernel in the hub session died while the cell ran")
    except Exception as error:  # noqa: BLE001 - the websocket or the server gone: this run's failure
        _save(managers, executed)
        failed("kernel-died", f"the hub session's kernel stopped answering: {error}"[:300])
    finally:
        if km.has_kernel:
            try:
                run_sync(km.shutdown_kernel)(now=True)
            except Exception:  # noqa: BLE001 - already gone (deleted at the notebook's limit)
                pass


def _result(run: HubRun, target: HubTarget, output: Path, executed: Path | None, began: float, failures: list[Failure],
            results: dict[str, Any] | None = None) -> RunResult:
    return RunResult(
        notebook=run.notebook, track=run.track.name, facility=target.column,
        status="failed" if failures else "passed", duration_s=round(time.monotonic() - began, 2),
        failures=failures, results=results or {},
        executed_notebook=str(executed.relative_to(output)) if executed and executed.is_file() else None,
        key=digest({"hub": target.hub_url, "notebook": run.notebook, "at": time.time()}),
    )


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
                            results.append(_result(run, target, self.output, None, time.monotonic(),
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


def hub_token(environ: dict[str, str] | None = None) -> str:
    """The validator's token: from the environment only (never a flag, never a file in the repository)."""
    import os

    token = (os.environ if environ is None else environ).get(VALIDATOR_TOKEN_ENV, "").strip()
    if not token:
        raise CasabookError("no-token", f"validate --hub needs a token in ${VALIDATOR_TOKEN_ENV}: the "
                            "casabook-validator service's, or one an organiser issues on the hub's token page "
                            f"with the scopes {', '.join(validator_scopes())}", key=VALIDATOR_TOKEN_ENV)
    return token


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
    limits = Limits(cell_timeout_s=cell_timeout or DEFAULT_CELL_TIMEOUT,
                    notebook_timeout_s=notebook_timeout or DEFAULT_NOTEBOOK_TIMEOUT)
    for name, value in (("--cell-timeout", limits.cell_timeout_s), ("--notebook-timeout", limits.notebook_timeout_s)):
        if value <= 0:
            raise CasabookError("bad-option", f"expected a positive number of seconds, got {value:g}", key=name)
    token = hub_token()
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
