"""One notebook on one facility, in its own process and its own kernel, run with papermill.

The validator forks one child per run from a fork server that has already imported papermill and
nbclient (see `PRELOAD`), so a run costs a fork and a kernel start, not a Python start-up. The
child owns its environment and working folder (papermill's `cwd` is a process-wide chdir), starts
the kernel itself so the parent learns its pid at once, and reports over a pipe:

    ("kernel", pid)                 the kernel is starting: the parent samples its memory, and kills
                                    it when the notebook runs past its limit
    ("cell", index, first_line)     a cell starts (index in the notebook as committed)
    ("done", payload)               the outcome: status, failures, results, memory and CPU of the kernel

Heavy modules are imported inside the child functions: the parent imports this module only for
`RunSpec`.
"""

from __future__ import annotations

import json
import os
import re
import resource
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from casabook.image import Image
from casabook.model import Facility
from casabook.validation.notebooks import cell_tags
from casabook.validation.results import CellRef, Failure

# Imported once by the fork server; every run's child inherits them already loaded. "__main__" too:
# a child whose __main__ is already the parent's skips re-running the parent's script. As with any
# forkserver or spawn child (and Dask's LocalCluster), a script calling validate() needs the
# `if __name__ == "__main__":` guard.
PRELOAD = ["__main__", "casabook.validation.preload"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class RunSpec:
    notebook: str                 # repository-relative path, as the track lists it
    input_path: Path              # the copy in the session's working folder
    output_path: Path             # the executed notebook, in the build folder
    log_path: Path                # the kernel's stdout and stderr
    results_path: Path            # where the notebook writes its results JSON
    cwd: Path                     # the notebook's folder in the session's working folder
    facility: Facility
    image: Image                  # the facility's image as its environment here has it
    requirements: tuple[str, ...]  # the track's PEP 508 requirements
    kernel: str
    language: str
    kernel_dirs: tuple[str, ...]  # where the kernel's spec is: the facility's environment ('': this machine's)
    env: dict[str, str]           # the complete environment of the kernel
    facility_variables: frozenset[str]  # what the facility's sessions set (before substitutions)
    parameters: dict[str, Any] = field(default_factory=dict)
    cell_timeout: float = 120.0
    start_timeout: float = 60.0


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    # The kernel's own start-up chatter is noise next to the reason it died.
    kept = [line for line in text.splitlines() if "running over TCP without encryption" not in line]
    return "\n".join(kept[-lines:])


def child_main(spec: RunSpec, conn: Connection) -> None:
    """The child process: run the notebook and send ("done", payload), whatever happens."""
    with open(spec.log_path, "ab", buffering=0) as log:
        # Papermill's and the kernel's chatter goes to the run's log, never over the progress bar.
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            payload = _run(spec, conn, log)
        except BaseException as error:  # noqa: BLE001 - a bug here must reach the report, not vanish with the child
            payload = {"failures": [Failure(kind="internal", message=f"the validator failed: {error!r}",
                                            traceback=traceback.format_exc()).model_dump()]}
        # The kernel is this process's only child, reaped by now: its usage includes the processes it reaped.
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        payload["children_maxrss_kib"] = usage.ru_maxrss
        payload["children_cpu_s"] = usage.ru_utime + usage.ru_stime
        conn.send(("done", payload))
        conn.close()


def _failed(*failures: Failure, **extra: Any) -> dict[str, Any]:
    return {"failures": [f.model_dump() for f in failures], **extra}


def _run(spec: RunSpec, conn: Connection, log: Any) -> dict[str, Any]:
    import nbformat
    import papermill
    from jupyter_client import AsyncKernelManager
    from jupyter_core.utils import run_sync
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from casabook.validation.checks import static_failures
    from casabook.validation.preload import ENGINE  # registers the engine if no fork server preloaded it

    os.environ.clear()
    os.environ.update(spec.env)
    os.chdir(spec.cwd)

    nb = nbformat.read(spec.input_path, as_version=4)
    failures = static_failures(nb, spec.facility, spec.image, session_variables=spec.facility_variables,
                               requirements=spec.requirements, language=spec.language)
    if failures:
        return _failed(*failures)

    # nbclient drives an async kernel manager on this thread's event loop; run_sync starts the kernel
    # on that same loop (a blocking manager would have nbclient's timeouts wait on another thread's loop).
    km = AsyncKernelManager(kernel_name=spec.kernel)
    if spec.kernel_dirs:  # the facility's own environment: its kernel, not one of this machine's of the same name
        from jupyter_client.kernelspec import KernelSpecManager

        km.kernel_spec_manager = KernelSpecManager(kernel_dirs=list(spec.kernel_dirs), ensure_native_kernel=False)
    current: list[CellRef | None] = [None]

    def on_cell_start(executed_nb: Any, executed_index: int) -> None:
        ref = source_cell(executed_nb, executed_index)
        current[0] = ref
        conn.send(("cell", ref.index, ref.first_line))

    try:
        run_sync(km.start_kernel)(env=spec.env, cwd=str(spec.cwd), stdout=log, stderr=log,
                        extra_arguments=["--HistoryManager.hist_file=:memory:"])
    except Exception as error:  # noqa: BLE001 - any launch failure is this run's failure
        return _failed(Failure(kind="kernel-start", message=f"kernel {spec.kernel!r} did not start: {error}",
                               traceback=_tail(spec.log_path)))
    conn.send(("kernel", km.provisioner.pid))
    managers: list[Any] = []
    try:
        papermill.execute_notebook(
            str(spec.input_path), str(spec.output_path), parameters=spec.parameters,
            engine_name=ENGINE, kernel_name=spec.kernel, language=spec.language, progress_bar=False,
            start_timeout=spec.start_timeout, execution_timeout=spec.cell_timeout, km=km,
            # Papermill would rewrite (deep-copy, validate, encode) the whole notebook as each cell
            # starts: a CPU second per run that parallel runs compete for. It is saved once instead.
            request_save_on_cell_execute=False,
            on_cell_start=on_cell_start, managers=managers,
        )
    except PapermillExecutionError as error:  # papermill has saved the notebook, with the error marked
        return _failed(Failure(kind="error", cell=current[0], message=f"{error.ename}: {error.evalue}",
                               traceback=strip_ansi("\n".join(error.traceback))))
    except CellTimeoutError:
        save_executed(managers, spec.output_path)
        return _failed(Failure(kind="cell-timeout", cell=current[0],
                               message=f"the cell ran past the per-cell limit of {spec.cell_timeout:g} s"))
    except DeadKernelError:
        save_executed(managers, spec.output_path)
        code = km.provisioner.process.poll() if km.provisioner and km.provisioner.process else None
        return _failed(Failure(kind="kernel-died", cell=current[0],
                               message=f"the kernel died while the cell ran (exit status {code})",
                               traceback=_tail(spec.log_path)))
    except RuntimeError as error:
        if current[0] is None:  # nbclient's "kernel didn't respond" / "died before replying to kernel_info"
            return _failed(Failure(kind="kernel-start", message=str(error), traceback=_tail(spec.log_path)))
        raise
    finally:
        if km.has_kernel:
            # Every cell has finished: nothing is left to flush, so the kernel and its children are killed at once.
            run_sync(km.shutdown_kernel)(now=True)
    return {"failures": [], "results": _results(spec.results_path)}


def save_executed(managers: list[Any], path: Path) -> None:
    """The notebook as far as it ran, for a run papermill stopped without saving."""
    from papermill.iorw import write_ipynb

    if managers:
        write_ipynb(managers[0].nb, str(path))


def source_cell(executed_nb: Any, executed_index: int) -> CellRef:
    """The cell as the attendee sees it: papermill's injected parameters cell shifts those after it by one."""
    from casabook.validation.checks import INJECTED_TAG, first_line

    cells = executed_nb.cells
    injected = next((i for i, c in enumerate(cells) if INJECTED_TAG in cell_tags(c)), None)
    line = first_line(cells[executed_index])
    if injected is None or executed_index < injected:
        return CellRef(index=executed_index, first_line=line)
    if executed_index == injected:
        return CellRef(index=None, first_line=line)
    return CellRef(index=executed_index - 1, first_line=line)


def _results(path: Path) -> dict[str, Any]:
    """The notebook's own results JSON, when it wrote one as the notebook conventions ask."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
