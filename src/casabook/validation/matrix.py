"""The papermill matrix: every notebook against each facility's hub configuration.

A run is an attendee's session on a facility, reproduced here: the facility's kernel, its session
environment and the parameters it injects, in a working folder laid out as nbgitpuller lays it out
(<home>/<targetpath>/<notebook path>), under a per-cell and a per-notebook time limit. Services
that cannot exist on this machine (XCache, the facility's Dask scheduler, ServiceX) are
substituted, and each run's report says how. Everything else is checked as the facility would
meet it: kernel, imports against its packages, parameters, environment variables.

    report = validate(load_workshop(), tracks=["cms"], facilities=["local"], jobs=2)

Runs are parallel, one kernel each, in child processes forked from a fork server that has
papermill loaded (casabook.validation.pool, casabook.validation.run). A result is cached under a key
made of the notebook without outputs, the facility's configuration, the resolved package versions
and the data checksums: an unchanged run that passed is reported as cached and not run again (as
is a failure found before its kernel started, which follows from the same inputs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casabook import __version__
from casabook.errors import CasabookError
from casabook.model import Facility, Track, Workshop
from casabook.validation.pool import NotebookPool, Outcome, warm_up
from casabook.validation.run import RunSpec
from casabook.validation.report import REPORT_JSON, STATIC_KINDS, Limits, Report, RunResult, Substitution, write_report

DEFAULT_CELL_TIMEOUT = 120.0
DEFAULT_NOTEBOOK_TIMEOUT = 300.0
KERNEL_START_TIMEOUT = 60.0
INJECTED_PARAMETERS = ("data_root", "dask_scheduler_address", "output_dir")
CACHE_FORMAT = 1
SESSIONS_DIR = "sessions"
CACHE_DIR = "cache"

# Variables a session's environment defines: a value left in the validator's own environment
# must not stand in for one the facility does not set.
SESSION_VARIABLES = {"CASABOOK_FACILITY", "CASABOOK_DATA_ROOT", "DASK_SCHEDULER_ADDRESS", "SERVICEX_ENDPOINT",
                     "MPLBACKEND"}


def default_output(root: Path) -> Path:
    return root / "build" / "validate"


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# --- reading notebooks ----------------------------------------------------------------------


def read_notebook(root: Path, path: str) -> dict[str, Any]:
    """The notebook as JSON: reading it this way keeps a fully cached run free of nbformat's import cost."""
    try:
        data = json.loads((root / path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CasabookError("bad-notebook", f"not a readable notebook: {error}", file=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise CasabookError("bad-notebook", "not a notebook: expected a JSON object with a 'cells' list", file=path)
    return data


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def notebook_fingerprint(nb: dict[str, Any]) -> str:
    """A hash of what the notebook asks a kernel to do: cells without outputs, counts or run metadata."""
    cells = [{"type": cell.get("cell_type"), "source": _source(cell),
              "tags": sorted(cell.get("metadata", {}).get("tags", [])), "attachments": cell.get("attachments")}
             for cell in nb["cells"]]
    kernelspec = (nb.get("metadata", {}).get("kernelspec") or {}).get("name")
    return _hash({"kernelspec": kernelspec, "cells": cells})


def _hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _is_session_file(relative: Path) -> bool:
    """Notebook outputs and editor leftovers are not part of the materials an attendee pulls."""
    return not any(part in ("output", ".ipynb_checkpoints", "__pycache__") or part.startswith(".")
                   for part in relative.parts)


def _folder_fingerprint(folder: Path) -> str:
    """Files next to the notebook (helper modules, small inputs) change what it does; other notebooks do not."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and path.suffix != ".ipynb" and _is_session_file(relative):
            digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# --- the facility as a session here sees it --------------------------------------------------


@dataclass(frozen=True)
class Session:
    """One facility's session environment as reproduced on this machine."""

    facility: Facility
    env: dict[str, str]                 # the kernel's complete environment
    facility_variables: frozenset[str]  # what the facility's own sessions set
    data_root: str
    dask_scheduler_address: str
    substitutions: list[Substitution]
    packages: dict[str, str | None]     # the facility's packages -> version resolved here
    kernel: dict[str, Any]              # the kernelspec: argv and language
    warnings: list[str] = field(default_factory=list)


def local_data_root(workshop: Workshop) -> Path:
    """The data folder runs read instead of a facility's XCache: the local facility's, else the default."""
    candidates = [workshop.facilities.get("local"), *workshop.facilities.values()]
    for facility in candidates:
        if facility is not None and facility.is_local and "://" not in facility.data_root:
            return Path(facility.data_root_for(workshop.root))
    return workshop.root / ".casabook" / "data"


def _display(path: Path, root: Path) -> str:
    """A path for the report: relative to the repository when inside it (reports name no machine paths)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return path.name


def _base_environment(workshop: Workshop) -> dict[str, str]:
    env = dict(os.environ)
    defined_by_facilities = {name for facility in workshop.facilities.values() for name in facility.environment}
    for name in list(env):
        if name in SESSION_VARIABLES or name in defined_by_facilities or name.startswith("CASABOOK_"):
            del env[name]
    return env


def _package_versions(names: Iterable[str]) -> dict[str, str | None]:
    import importlib.metadata

    versions: dict[str, str | None] = {}
    for name in sorted(set(names)):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _version_warnings(facility: Facility, versions: dict[str, str | None]) -> list[str]:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    warnings = []
    for name, spec in sorted(facility.packages.items()):
        here = versions.get(name)
        if here is None:
            warnings.append(f"{name} is not installed here (the facility provides {spec or 'any version'})")
            continue
        try:
            if spec and here not in SpecifierSet(spec, prereleases=True):
                warnings.append(f"{name} {here} here does not satisfy the facility's {spec}")
        except InvalidSpecifier:
            warnings.append(f"{name}: the facility's version spec {spec!r} is not a valid specifier")
    return warnings


def build_session(workshop: Workshop, facility: Facility, base_env: dict[str, str],
                  kernels: dict[str, dict[str, Any]], versions: dict[str, str | None]) -> Session:
    root = workshop.root
    session_env = facility.session_environment(root)
    substitutions = []
    data_root = session_env["CASABOOK_DATA_ROOT"]
    if "://" in facility.data_root:
        local = local_data_root(workshop)
        data_root = str(local)
        substitutions.append(Substitution(
            setting="data_root", facility_value=facility.data_root, local_value=_display(local, root),
            reason="the facility's XCache is not reachable from here: the local data folder"))
    scheduler = facility.dask_scheduler
    if scheduler and not facility.is_local:
        scheduler = ""
        substitutions.append(Substitution(
            setting="dask_scheduler", facility_value=facility.dask_scheduler, local_value="",
            reason="the facility's HTCondor-backed Dask scheduler does not exist here: a LocalCluster"))
    session_env["CASABOOK_DATA_ROOT"] = data_root
    session_env["DASK_SCHEDULER_ADDRESS"] = scheduler
    if facility.servicex_endpoint and not facility.is_local:
        session_env.pop("SERVICEX_ENDPOINT", None)
        substitutions.append(Substitution(
            setting="servicex_endpoint", facility_value=facility.servicex_endpoint, local_value=None,
            reason="ServiceX does not run here"))
    packages = {name: versions.get(name) for name in facility.packages}
    warnings = _version_warnings(facility, versions)
    if "://" not in data_root and not Path(data_root).is_dir():
        warnings.insert(0, f"the data folder {_display(Path(data_root), root)} does not exist (casabook data fetch fills it)")
    return Session(
        facility=facility,
        env={**base_env, **session_env},
        facility_variables=frozenset(facility.session_environment(root)),
        data_root=data_root,
        dask_scheduler_address=scheduler,
        substitutions=substitutions,
        packages=packages,
        kernel=kernels[facility.kernel],
        warnings=warnings,
    )


def installed_kernels(names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The kernelspecs of the named kernels that are installed here (argv, language, env)."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    folders = manager.find_kernel_specs()
    found: dict[str, dict[str, Any]] = {}
    for name in set(names) & set(folders):
        try:
            # Read from its folder: get_kernel_spec("python3") imports ipykernel, a second of a warm run's time.
            spec = KernelSpec.from_resource_dir(folders[name])
        except OSError:  # the native kernel, found inside ipykernel without a kernel.json
            try:
                spec = manager.get_kernel_spec(name)
            except NoSuchKernel:
                continue
        found[name] = {"argv": spec.argv, "language": spec.language, "env": spec.env}
    return found


def _installed_names() -> list[str]:
    from jupyter_client.kernelspec import KernelSpecManager

    return sorted(KernelSpecManager().find_kernel_specs())


def _require_kernels(workshop: Workshop, facilities: list[Facility], notebooks: dict[str, dict[str, Any]]
                     ) -> dict[str, dict[str, Any]]:
    """Every kernel a run needs must be installed here; an unknown one stops the command before any run."""
    declared = {path: (nb.get("metadata", {}).get("kernelspec") or {}).get("name") for path, nb in notebooks.items()}
    wanted = {f.kernel for f in facilities} | {name for name in declared.values() if name}
    kernels = installed_kernels(wanted)
    for facility in facilities:
        if facility.kernel not in kernels:
            raise CasabookError(
                "unknown-kernel",
                f"kernel {facility.kernel!r} is not installed on this machine (installed: {', '.join(_installed_names())}); "
                f"install it (python -m ipykernel install --user --name {facility.kernel}) or fix the facility",
                file=f"hub-config/{facility.name}.yml", key="kernel")
    for path, name in declared.items():
        if name and name not in kernels:
            raise CasabookError(
                "unknown-kernel",
                f"declares kernel {name!r}, which is not installed on this machine "
                f"(installed: {', '.join(_installed_names())}; casabook check --fix sets the facility's kernel)",
                file=path, key="metadata.kernelspec.name")
    return kernels


def _data_checksums() -> dict[str, str]:
    try:
        from casabook.data import data_checksums
    except ImportError:
        return {}
    return data_checksums()


# --- the plan ---------------------------------------------------------------------------------


@dataclass
class Run:
    """One notebook on one facility."""

    track: Track
    notebook: str
    session: Session
    key: str
    targetpath: str

    @property
    def facility(self) -> Facility:
        return self.session.facility

    def executed_path(self, output: Path) -> Path:
        return output / self.facility.name / self.notebook

    def log_path(self, output: Path) -> Path:
        return self.executed_path(output).with_suffix(".log")

    def output_dir(self, output: Path) -> Path:
        return self.executed_path(output).parent / "output"

    def results_path(self, output: Path) -> Path:
        return self.output_dir(output) / f"{Path(self.notebook).stem}.json"

    def session_notebook(self, output: Path) -> Path:
        return output / SESSIONS_DIR / self.facility.name / self.targetpath / self.notebook

    def spec(self, output: Path, limits: Limits) -> RunSpec:
        session = self.session
        return RunSpec(
            notebook=self.notebook,
            input_path=self.session_notebook(output),
            output_path=self.executed_path(output),
            log_path=self.log_path(output),
            results_path=self.results_path(output),
            cwd=self.session_notebook(output).parent,
            facility=self.facility,
            kernel=self.facility.kernel,
            language=session.kernel["language"],
            env={**session.env, **(session.kernel.get("env") or {})},
            facility_variables=session.facility_variables,
            parameters=dict(zip(INJECTED_PARAMETERS, (session.data_root, session.dask_scheduler_address,
                                                      str(self.output_dir(output))), strict=True)),
            cell_timeout=limits.cell_timeout_s,
            start_timeout=KERNEL_START_TIMEOUT,
        )

    def result(self, output: Path, status: str, **fields: Any) -> RunResult:
        def relative(path: Path) -> str | None:
            return str(path.relative_to(output)) if path.is_file() and path.stat().st_size else None

        return RunResult(notebook=self.notebook, track=self.track.name, facility=self.facility.name, status=status,
                         substitutions=self.session.substitutions, warnings=self.session.warnings, key=self.key,
                         executed_notebook=relative(self.executed_path(output)), log=relative(self.log_path(output)),
                         **fields)


def _targetpath(workshop: Workshop, track: Track) -> str:
    from casabook.links import default_source

    # Only the folder name matters here; a placeholder branch spares a git lookup that needs a branch.
    return default_source(workshop.root, track, branch=track.materials.branch or "validate").targetpath


def plan_runs(workshop: Workshop, tracks: list[Track], extra: list[Facility], limits: Limits,
              notebooks: dict[str, dict[str, Any]], kernels: dict[str, dict[str, Any]]) -> list[Run]:
    facilities = {f.name: f for f in [*(workshop.facility_of(t) for t in tracks), *extra]}
    versions = _package_versions(name for f in facilities.values() for name in f.packages)
    base_env = _base_environment(workshop)
    sessions = {name: build_session(workshop, f, base_env, kernels, versions) for name, f in facilities.items()}
    data = _data_checksums()
    folders: dict[Path, str] = {}
    runs = []
    for track in tracks:
        targetpath = _targetpath(workshop, track)
        for entry in track.notebooks:
            folder = (workshop.root / entry.path).parent
            if folder not in folders:
                folders[folder] = _folder_fingerprint(folder)
            fingerprint = notebook_fingerprint(notebooks[entry.path])
            for name in dict.fromkeys([track.facility, *(f.name for f in extra)]):
                session = sessions[name]
                key = _hash({
                    "format": CACHE_FORMAT, "casabook": __version__, "notebook": entry.path,
                    "cells": fingerprint, "beside": folders[folder], "targetpath": targetpath,
                    "facility": session.facility.model_dump(mode="json"),
                    "substitutions": [s.model_dump() for s in session.substitutions],
                    "packages": session.packages, "kernel": session.kernel, "data": data,
                    "limits": limits.model_dump(),
                })
                runs.append(Run(track=track, notebook=entry.path, session=session, key=key, targetpath=targetpath))
    return runs


# --- the cache --------------------------------------------------------------------------------


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
    folder = output / CACHE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{result.key}.{os.getpid()}.tmp"
    temporary.write_text(result.model_dump_json(exclude={"failure"}), encoding="utf-8")
    os.replace(temporary, folder / f"{result.key}.json")


# --- the sessions' working folders -------------------------------------------------------------


def _materials(root: Path, folders: list[str]) -> list[Path]:
    """The files nbgitpuller would bring for these folders: tracked or committable, in their current state."""
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                             "--", *folders], capture_output=True, check=False)
    if listed.returncode == 0:
        paths = [Path(p) for p in listed.stdout.decode().split("\0") if p]
    else:  # not a git repository: everything but outputs and editor leftovers
        paths = [p.relative_to(root) for folder in folders for p in (root / folder).rglob("*") if p.is_file()]
    return sorted({p for p in paths if (root / p).is_file() and _is_session_file(p)})


def prepare_sessions(workshop: Workshop, runs: list[Run], output: Path) -> None:
    """<output>/sessions/<facility>/<targetpath>/...: a fresh copy of the materials per facility home."""
    folders = sorted({Path(run.notebook).parts[0] for run in runs})
    files = _materials(workshop.root, folders)
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


# --- the command --------------------------------------------------------------------------------


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


def _expected_durations(runs: list[Run], output: Path, notebooks: dict[str, dict[str, Any]]) -> list[float]:
    """Each run's expected time: as last measured here, else as its committed outputs took; unknown is longest."""
    previous = _previous_durations(output)
    expected = []
    for run in runs:
        known = previous.get((run.notebook, run.facility.name)) or recorded_duration(notebooks[run.notebook])
        expected.append(known if known is not None else float("inf"))
    return expected


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
    kernels = _require_kernels(workshop, used, notebooks)
    runs = plan_runs(workshop, selected, extra, limits, notebooks, kernels)

    results: dict[int, RunResult] = {}
    if not force:
        for index, run in enumerate(runs):
            if (hit := cached_result(run, output)) is not None:
                results[index] = hit
    todo = [index for index in range(len(runs)) if index not in results]
    if todo:
        warm_up()
        # Longest first: the last job to start is then a short one, and the jobs end together.
        expected = _expected_durations(runs, output, notebooks)
        todo.sort(key=lambda i: -expected[i])
        prepare_sessions(workshop, [runs[i] for i in todo], output)
        specs = [runs[index].spec(output, limits) for index in todo]
        with _progress(console, len(runs), len(runs) - len(todo)) as progress:
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


def _result(run: Run, outcome: Outcome, output: Path) -> RunResult:
    return run.result(
        output, "failed" if outcome.failures else "passed", duration_s=outcome.duration_s,
        peak_memory_mib=round(outcome.peak_bytes / 2**20, 1) if outcome.peak_bytes else None,
        cpu_s=outcome.cpu_s, failures=outcome.failures, results=outcome.results)


class _progress:
    """A rich progress bar over the matrix, naming what each job is running."""

    def __init__(self, console: Any, total: int, done: int) -> None:
        self.console, self.total, self.done = console, total, done
        self.active: dict[str, str] = {}

    def __enter__(self) -> Callable[[str, Run, str], None]:
        if self.console is None:
            return lambda kind, run, detail: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bar = Progress(SpinnerColumn(), TextColumn("[bold]validate[/]"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.description}"), console=self.console, transient=True)
        self.bar.start()
        self.task = self.bar.add_task("", total=self.total, completed=self.done)
        return self.event

    def event(self, kind: str, run: Run, detail: str) -> None:
        from rich.markup import escape

        name = f"{Path(run.notebook).name} on {run.facility.name}"
        if kind == "done":
            self.active.pop(name, None)
            self.bar.advance(self.task)
            style = "green" if detail == "passed" else "red"
            self.bar.console.print(f"[{style}]{detail}[/] {escape(run.notebook)} on {run.facility.name}", highlight=False)
        else:
            self.active[name] = detail
        text = "; ".join(f"{n}{' ' + d if d else ''}" for n, d in self.active.items())
        self.bar.update(self.task, description=escape(text[:120]))

    def __exit__(self, *exc: Any) -> None:
        if self.console is not None:
            self.bar.stop()
