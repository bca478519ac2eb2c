"""One notebook, as pulled into the validation user's server, run with papermill in that server's kernel.

The kernel is the server's (casabook.validation.gateway: its REST and websocket API); the
parameters, the per-cell and per-notebook limits and the checks before the kernel starts are the
offline matrix's. Past the notebook's limit the kernel is deleted, which ends the run. The
executed notebook comes back into the output folder, the results JSON the notebook wrote through
the server's contents API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import httpx

from casabook.model import Track, Workshop
from casabook.validation.fingerprint import digest
from casabook.validation.hubsession import HubTarget
from casabook.validation.plan import OFFERED_PARAMETERS
from casabook.validation.results import CellRef, Failure, Limits, RunResult

OUTPUT_DIR = "output"  # the notebooks' own convention: results beside the notebook, in output/
STOP_GRACE = 15.0
KERNEL_START_TIMEOUT = 120.0


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

    from casabook.validation.checks import declared_parameters, static_failures

    began = time.monotonic()
    executed = output / target.folder / run.notebook
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.unlink(missing_ok=True)
    facility = target.facility
    session = facility.session_environment(workshop.root)
    offered = dict(zip(OFFERED_PARAMETERS, (session.get("CASABOOK_DATA_ROOT", ""), facility.dask_scheduler or "",
                                            OUTPUT_DIR), strict=True))
    with httpx.Client(base_url=server_url, headers={"Authorization": f"token {token}"}, timeout=60) as client:
        model = _contents(client, run.api_path)
        if model is None:
            return run_result(run, target, output, executed, began, [Failure(
                kind="pull", message=f"{run.api_path} is not in {target.user}'s server after the pull")])
        nb = nbformat.from_dict(model["content"])
        # As offline: papermill injects only what the notebook's parameters cell declares.
        parameters = {name: offered[name] for name in declared_parameters(nb, OFFERED_PARAMETERS) or ()}
        failures = static_failures(nb, facility, facility.image, session_variables=session,
                                   requirements=run.track.requirements, language="python")
        if failures:
            return run_result(run, target, output, executed, began, failures)
        client.delete(f"api/contents/{quote(run.output_api_path)}")  # an earlier run's results are not this one's
        failures, ended = _execute(nb, run, facility.kernel, parameters, limits, executed, server_url, token,
                                   on_cell)
        results = {}
        if not failures and (written := _contents(client, run.output_api_path)) is not None:
            results = _results_json(written)
    return run_result(run, target, output, executed, began, failures, results, ended=ended)


def _results_json(model: dict[str, Any]) -> dict[str, Any]:
    import json

    content = model.get("content")
    try:
        data = json.loads(content) if isinstance(content, str) else content
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _execute(nb: Any, run: HubRun, kernel: str, parameters: dict[str, Any], limits: Limits, executed: Path,
             server_url: str, token: str, on_cell: Callable[[CellRef], None]) -> tuple[list[Failure], float | None]:
    """papermill in a thread of its own; past the notebook's limit the kernel is deleted, which ends it.
    The failures, and when the notebook's last cell ended (before its kernel's shutdown)."""
    from casabook.validation.gateway import ServerKernelManager

    km = ServerKernelManager(kernel_name=kernel, path=run.api_path)
    state: dict[str, Any] = {"cell": None, "failures": None, "ended": None}

    def cell_started(ref: CellRef) -> None:
        state["cell"] = ref
        on_cell(ref)

    worker = threading.Thread(target=_papermill, args=(nb, km, parameters, limits, executed, state, cell_started),
                              name=f"casabook-validate {run.notebook}", daemon=True)
    worker.start()
    worker.join(limits.notebook_timeout_s)
    if not worker.is_alive():
        return state["failures"] or [], state["ended"]
    if km.kernel_id:
        _delete_kernel(server_url, token, km.kernel_id)
    worker.join(STOP_GRACE)
    cell: CellRef | None = state["cell"]
    where = f" while {cell.describe()} ran" if cell else " before the first cell"
    return [Failure(kind="notebook-timeout", cell=cell,
                    message=f"the notebook ran past its limit of {limits.notebook_timeout_s:g} s; its kernel in the "
                            f"hub session was deleted{where}")], None


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
    from casabook.validation.run import save_executed, source_cell, strip_ansi

    managers: list[Any] = []

    def on_cell_start(executed_nb: Any, index: int) -> None:
        cell_started(source_cell(executed_nb, index))

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
        save_executed(managers, executed)
        failed("cell-timeout", f"the cell ran past the per-cell limit of {limits.cell_timeout_s:g} s")
    except DeadKernelError:
        save_executed(managers, executed)
        failed("kernel-died", "the kernel in the hub session died while the cell ran")
    except Exception as error:  # noqa: BLE001 - the websocket or the server gone: this run's failure
        save_executed(managers, executed)
        failed("kernel-died", f"the hub session's kernel stopped answering: {error}"[:300])
    finally:
        # The server shuts a kernel down gracefully (seconds): that is the session's time, not the notebook's.
        state["ended"] = time.monotonic()
        if km.has_kernel:
            try:
                run_sync(km.shutdown_kernel)(now=True)
            except Exception:  # noqa: BLE001 - already gone (deleted at the notebook's limit)
                pass


def run_result(run: HubRun, target: HubTarget, output: Path, executed: Path | None, began: float,
               failures: list[Failure], results: dict[str, Any] | None = None, *,
               ended: float | None = None) -> RunResult:
    return RunResult(
        notebook=run.notebook, track=run.track.name, facility=target.column,
        status="failed" if failures else "passed", duration_s=round((ended or time.monotonic()) - began, 2),
        failures=failures, results=results or {},
        executed_notebook=str(executed.relative_to(output)) if executed and executed.is_file() else None,
        key=digest({"hub": target.hub_url, "notebook": run.notebook, "at": time.time()}),
    )
