"""The plan: which runs the matrix makes (each notebook on each facility), each with its cache key.

A run is one notebook in one facility's session; its key is made of the notebook without outputs,
the files beside it, the facility's configuration and substitutions, the resolved package
versions, the kernel, the data checksums and the limits: a run with the key of an earlier one
would do the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casabook import __version__
from casabook.model import Facility, Track, Workshop
from casabook.validation.requirements import notebook_requirements
from casabook.validation.checks import PARAMETERS_TAG, declared_parameters
from casabook.validation.fingerprint import digest, folder_fingerprint, notebook_fingerprint
from casabook.validation.environments import Environment
from casabook.validation.results import Limits, RunEnvironment, RunResult, Substitution
from casabook.validation.run import RunSpec
from casabook.validation.session import Session, base_environment, build_session

# What a session offers a notebook; papermill injects those its parameters cell declares (README, Adding a track).
OFFERED_PARAMETERS = ("data_root", "dask_scheduler_address", "output_dir")
KERNEL_START_TIMEOUT = 60.0
CACHE_FORMAT = 2
SESSIONS_DIR = "sessions"


@dataclass
class Run:
    """One notebook on one facility."""

    track: Track
    notebook: str
    session: Session
    key: str
    targetpath: str
    parameters: tuple[str, ...] | None  # those the notebook declares; None: it has no parameters cell
    environment: RunEnvironment         # the environment it runs in, with the versions of what it imports
    substitutions: list[Substitution]   # the session's, and the image's packages it imports that are not built here

    @property
    def notes(self) -> list[str]:
        if self.parameters is None:
            return [f"no cell tagged {PARAMETERS_TAG!r}: run with nothing injected; the session's environment "
                    "variables (CASABOOK_DATA_ROOT, DASK_SCHEDULER_ADDRESS) still carry what it offers"]
        return []

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
            image=session.image,
            requirements=tuple(self.track.requirements),
            kernel=self.facility.kernel,
            kernel_dirs=(str(session.environment.kernel_dir),) if session.environment.kernel_dir else (),
            language=session.kernel["language"],
            env={**session.env, **(session.kernel.get("env") or {})},
            facility_variables=session.facility_variables,
            parameters=self.injected(output),
            cell_timeout=limits.cell_timeout_s,
            start_timeout=KERNEL_START_TIMEOUT,
        )

    def injected(self, output: Path) -> dict[str, str]:
        """The values papermill injects: only the parameters the notebook declares."""
        offered = dict(zip(OFFERED_PARAMETERS, (self.session.data_root, self.session.dask_scheduler_address,
                                                str(self.output_dir(output))), strict=True))
        return {name: offered[name] for name in self.parameters or ()}

    def result(self, output: Path, status: str, **fields: Any) -> RunResult:
        def relative(path: Path) -> str | None:
            return str(path.relative_to(output)) if path.is_file() and path.stat().st_size else None

        return RunResult(notebook=self.notebook, track=self.track.name, facility=self.facility.name, status=status,
                         substitutions=self.substitutions, environment=self.environment, warnings=self.session.warnings,
                         notes=self.notes,
                         key=self.key,
                         executed_notebook=relative(self.executed_path(output)), log=relative(self.log_path(output)),
                         **fields)


def _targetpath(workshop: Workshop, track: Track) -> str:
    from casabook.links import default_source

    # Only the folder name matters here; a placeholder branch spares a git lookup that needs a branch.
    return default_source(workshop.root, track, branch=track.materials.branch or "validate").targetpath


def _imports_on(nb: dict[str, Any], session: Session) -> tuple[RunEnvironment, list[Substitution]]:
    """The versions of what the notebook imports in the session's environment, and a substitution for
    each of them the image provides but this machine could not build."""
    from casabook.imports import imported_distributions

    image, environment = session.image, session.environment
    imported = imported_distributions(nb, image)
    packages = {dist: environment.versions.get(dist) for dist in sorted({d for d in imported.values() if d})}
    substitutions = []
    for dist in packages:
        package = image.get(dist)
        if package is not None and package.not_built:
            here = environment.versions.get(dist)
            substitutions.append(Substitution(
                setting=f"package {dist}", facility_value=f"{dist}{package.spec} (in the image)",
                local_value=here, reason=package.not_built + ("" if here else "; the import fails here")))
    return RunEnvironment(key=environment.key, python=environment.python, image_python=environment.image_python,
                          packages=packages), substitutions


def plan_runs(workshop: Workshop, tracks: list[Track], extra: list[Facility], limits: Limits,
              notebooks: dict[str, dict[str, Any]], kernels: dict[str, dict[str, Any]],
              environments: dict[str, Environment]) -> list[Run]:
    """Each track's notebooks on its facility, then on each extra facility, in the tracks' order."""
    facilities = {f.name: f for f in [*(workshop.facility_of(t) for t in tracks), *extra]}
    base_env = base_environment(workshop)
    sessions = {name: build_session(workshop, f, base_env,
                                    environments[name].kernels.get(f.kernel) or kernels[f.kernel], environments[name])
                for name, f in facilities.items()}
    data = _data_checksums()
    folders: dict[Path, str] = {}
    runs = []
    for track in tracks:
        targetpath = _targetpath(workshop, track)
        for entry in track.notebooks:
            folder = (workshop.root / entry.path).parent
            if folder not in folders:
                folders[folder] = folder_fingerprint(folder)
            fingerprint = notebook_fingerprint(notebooks[entry.path])
            declared = declared_parameters(notebooks[entry.path], OFFERED_PARAMETERS)
            parameters = tuple(declared) if declared is not None else None
            for name in dict.fromkeys([track.facility, *(f.name for f in extra)]):
                session = sessions[name]
                environment, substitutions = _imports_on(notebooks[entry.path], session)
                key = digest({
                    "format": CACHE_FORMAT, "casabook": __version__, "notebook": entry.path,
                    "cells": fingerprint, "beside": folders[folder], "targetpath": targetpath,
                    "facility": session.facility.model_dump(mode="json"),
                    "substitutions": [s.model_dump() for s in [*session.substitutions, *substitutions]],
                    "packages": session.packages, "kernel": session.kernel, "data": data,
                    "environment": session.environment.key,
                    "requirements": [*track.requirements, *notebook_requirements(notebooks[entry.path])],
                    "limits": limits.model_dump(),
                })
                runs.append(Run(track=track, notebook=entry.path, session=session, key=key, targetpath=targetpath,
                                parameters=parameters, environment=environment,
                                substitutions=[*session.substitutions, *substitutions]))
    return runs


def _data_checksums() -> dict[str, str]:
    try:
        from casabook.data import data_checksums
    except ImportError:
        return {}
    return data_checksums()
