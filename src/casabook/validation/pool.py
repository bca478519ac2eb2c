"""Runs notebooks `jobs` at a time, each in its own child process and kernel, each watched.

The children are forked from a fork server that has papermill loaded (casabook.validation.run), so
a run costs a fork and a kernel start. The parent watches every child: it samples the memory of
the kernel's process tree, and when a notebook runs past its limit it kills the kernel (the child
then sees a dead kernel, saves the notebook and reports) and, should the child not report in
time, the child too. A run always ends: with the child's outcome, or with the reason it has none.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for
from typing import Any

from casabook.validation.run import PRELOAD, RunSpec, child_main
from casabook.validation.results import CellRef, Failure

# After the notebook limit kills the kernel, the child has this long to save the notebook and report.
STOP_GRACE = 20.0
SAMPLE_INTERVAL = 0.25


@dataclass(frozen=True)
class Outcome:
    """What one run came to."""

    failures: list[Failure]
    results: dict[str, Any]
    duration_s: float        # from the fork to the child's report: the fork server's warm-up is not counted
    peak_bytes: int          # resident memory of the kernel's process tree at its highest
    cpu_s: float | None      # CPU time of the kernel and the processes it reaped


# --- processes ----------------------------------------------------------------------------------


def kill_tree(pid: int | None) -> None:
    import psutil

    if pid is None:
        return
    try:
        parent = psutil.Process(pid)
        processes = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return
    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            pass
    try:
        os.killpg(pid, signal.SIGKILL)  # a kernel leads its own process group; stragglers go with it
    except (OSError, PermissionError):
        pass


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _proc_tree(pid: int) -> list[int] | None:
    """The pid and its descendants from /proc/<pid>/task/*/children: reads only the tree's own files.
    None where the kernel does not offer those files."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except FileNotFoundError:
            continue  # it exited between two reads
        except OSError:
            return None
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as children:
                    todo.extend(int(child) for child in children.read().split())
            except FileNotFoundError:
                if not os.path.exists(f"/proc/{current}"):
                    break
                return None
    return tree


def tree_rss(pid: int) -> int:
    """Resident memory of a process and its descendants, in bytes.

    Sampled several times a second per run on machines shared with other work: psutil's
    children() scans every process on the machine each time, /proc's children files do not.
    """
    tree = _proc_tree(pid)
    if tree is None:
        import psutil

        try:
            parent = psutil.Process(pid)
            tree = [parent.pid, *(child.pid for child in parent.children(recursive=True))]
        except psutil.Error:
            return 0
    total = 0
    for member in tree:
        try:
            with open(f"/proc/{member}/statm", encoding="ascii") as statm:
                total += int(statm.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            pass
    return total


_context_lock = threading.Lock()


def _context() -> Any:
    with _context_lock:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context


def warm_up() -> threading.Thread:
    """Start the fork server in the background, so its imports overlap the caller's planning."""
    from multiprocessing import forkserver

    _context()
    thread = threading.Thread(target=forkserver.ensure_running, name="casabook-forkserver", daemon=True)
    thread.start()
    return thread


# --- the pool -----------------------------------------------------------------------------------


@dataclass
class _Job:
    index: int
    spec: RunSpec
    process: Any
    conn: Any
    started: float
    deadline: float
    kernel_pid: int | None = None
    cell: CellRef | None = None
    peak_bytes: int = 0
    next_sample: float = 0.0
    stopped: bool = False
    stop_deadline: float = 0.0
    payload: dict[str, Any] | None = None
    closed: bool = False


@dataclass
class NotebookPool:
    """`jobs` children at a time; `on_event(kind, index, detail)` hears "start", "cell" and "done"."""

    jobs: int
    notebook_timeout: float
    on_event: Callable[[str, int, Any], None] = field(default=lambda kind, index, detail: None)

    def run_all(self, specs: list[RunSpec]) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        waiting = deque(enumerate(specs))
        running: dict[int, _Job] = {}
        context = _context()
        try:
            while waiting or running:
                while waiting and len(running) < self.jobs:
                    index, spec = waiting.popleft()
                    running[index] = self._start(context, index, spec)
                handles = [j.conn for j in running.values() if not j.closed] + [j.process.sentinel for j in running.values()]
                wait_for(handles, timeout=SAMPLE_INTERVAL)
                now = time.monotonic()
                for index, job in list(running.items()):
                    self._drain(job)
                    if job.payload is not None or not job.process.is_alive():
                        outcomes[index] = self._finish(job)
                        del running[index]
                        self.on_event("done", index, outcomes[index])
                    else:
                        self._watch(job, now)
        except BaseException:
            for job in running.values():
                kill_tree(job.kernel_pid)
                kill_tree(job.process.pid)
            raise
        return [outcomes[index] for index in range(len(specs))]

    def _start(self, context: Any, index: int, spec: RunSpec) -> _Job:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=child_main, args=(spec, sender), name=f"casabook-validate {spec.notebook}",
                                  daemon=True)
        process.start()  # returns once the fork server has forked the child: its warm-up is not the run's time
        sender.close()  # the child holds the only writing end: EOF on our side means it is gone
        now = time.monotonic()
        self.on_event("start", index, None)
        return _Job(index=index, spec=spec, process=process, conn=receiver, started=now,
                    deadline=now + self.notebook_timeout)

    def _drain(self, job: _Job) -> None:
        while not job.closed:
            try:
                if not job.conn.poll():
                    return
                message = job.conn.recv()
            except (EOFError, OSError):
                job.closed = True
                return
            kind = message[0]
            if kind == "kernel":
                job.kernel_pid = message[1]
            elif kind == "cell":
                job.cell = CellRef(index=message[1], first_line=message[2])
                self.on_event("cell", job.index, job.cell)
            elif kind == "done":
                job.payload = message[1]

    def _watch(self, job: _Job, now: float) -> None:
        if job.kernel_pid is not None and now >= job.next_sample:
            job.peak_bytes = max(job.peak_bytes, tree_rss(job.kernel_pid))
            job.next_sample = now + SAMPLE_INTERVAL
        if not job.stopped and now > job.deadline:
            job.stopped = True
            job.stop_deadline = now + STOP_GRACE
            # Killing the kernel lets the child see a dead kernel, save the notebook and report.
            kill_tree(job.kernel_pid if job.kernel_pid is not None else job.process.pid)
        elif job.stopped and now > job.stop_deadline:
            kill_tree(job.process.pid)

    def _finish(self, job: _Job) -> Outcome:
        duration = round(time.monotonic() - job.started, 2)
        job.process.join(timeout=5)
        if job.process.is_alive():
            kill_tree(job.process.pid)
            job.process.join(timeout=5)
        job.conn.close()
        payload = job.payload or {}
        failures = [Failure.model_validate(f) for f in payload.get("failures", [])]
        if job.stopped:
            where = f" while {job.cell.describe()} ran" if job.cell else " before the first cell"
            failures = [Failure(kind="notebook-timeout", cell=job.cell,
                                message=f"the notebook ran past its limit of {self.notebook_timeout:g} s; stopped{where}")]
        elif job.payload is None:
            failures = [Failure(kind="internal", cell=job.cell,
                                message=f"the run's process exited with status {job.process.exitcode} without a result")]
        return Outcome(
            failures=failures,
            results=payload.get("results", {}) if not failures else {},
            duration_s=duration,
            peak_bytes=max(job.peak_bytes, int(payload.get("children_maxrss_kib", 0)) * 1024),
            cpu_s=round(payload["children_cpu_s"], 2) if payload.get("children_cpu_s") else None,
        )
