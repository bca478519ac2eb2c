"""One facility's session environment as reproduced on this machine, with what stands in for its services.

A session here gets the facility's own environment variables, its kernel and its package
environment (casabook.validation.environments); what cannot exist on this machine (XCache, the facility's Dask scheduler,
ServiceX) is substituted, and each substitution is named for the report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casabook.image import Image
from casabook.model import Facility, Workshop
from casabook.validation.environments import Environment
from casabook.validation.results import Substitution

# Variables a session's environment defines: a value left in the validator's own environment
# must not stand in for one the facility does not set.
SESSION_VARIABLES = {"CASABOOK_FACILITY", "CASABOOK_DATA_ROOT", "DASK_SCHEDULER_ADDRESS", "SERVICEX_ENDPOINT",
                     "MPLBACKEND"}


@dataclass(frozen=True)
class Session:
    """One facility's session environment as reproduced on this machine."""

    facility: Facility
    env: dict[str, str]                 # the kernel's complete environment
    facility_variables: frozenset[str]  # what the facility's own sessions set
    data_root: str
    dask_scheduler_address: str
    substitutions: list[Substitution]
    packages: dict[str, str | None]     # the image's built packages -> version installed in the environment
    kernel: dict[str, Any]              # the kernelspec: argv and language
    environment: Environment            # where the kernel runs: the facility's built environment, or this machine's
    image: Image                        # the facility's image as that environment has it
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


def base_environment(workshop: Workshop) -> dict[str, str]:
    """This process's environment without anything a facility's session defines."""
    env = dict(os.environ)
    defined_by_facilities = {name for facility in workshop.facilities.values() for name in facility.environment}
    for name in list(env):
        if name in SESSION_VARIABLES or name in defined_by_facilities or name.startswith("CASABOOK_"):
            del env[name]
    return env


def _version_warnings(facility: Facility, environment: Environment) -> list[str]:
    """Where the environment the runs use differs from what the facility's image declares."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    warnings = []
    for package in sorted(facility.image.built(), key=lambda p: p.name):
        here = environment.versions.get(package.name)
        if here is None:
            warnings.append(f"{package.name} is not installed here (the facility provides "
                            f"{package.spec or 'any version'})")
            continue
        try:
            if package.spec and here not in SpecifierSet(package.spec, prereleases=True):
                warnings.append(f"{package.name} {here} here does not satisfy the facility's {package.spec}")
        except InvalidSpecifier:
            warnings.append(f"{package.name}: the facility's version spec {package.spec!r} is not a valid specifier")
    if environment.python_note:
        warnings.append(environment.python_note)
    return warnings


def build_session(workshop: Workshop, facility: Facility, base_env: dict[str, str],
                  kernel: dict[str, Any], environment: Environment) -> Session:
    """The facility's session on this machine, over `base_env`, with the substitutions it needs here."""
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
    packages = {p.name: environment.versions.get(p.name) for p in facility.image.built()}
    warnings = _version_warnings(facility, environment)
    if environment.path is not None:  # a subprocess the notebook starts finds the environment's python first
        session_env["PATH"] = f"{environment.path / 'bin'}{os.pathsep}{base_env.get('PATH', '')}"
        session_env["VIRTUAL_ENV"] = str(environment.path)
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
        kernel=kernel,
        environment=environment,
        image=environment.image(facility),
        warnings=warnings,
    )
