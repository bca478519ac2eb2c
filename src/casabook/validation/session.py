"""One facility's session environment as reproduced on this machine, with what stands in for its services.

A session here gets the facility's own environment variables, its kernel and its packages as
resolved here; what cannot exist on this machine (XCache, the facility's Dask scheduler,
ServiceX) is substituted, and each substitution is named for the report.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casabook.model import Facility, Workshop
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


def base_environment(workshop: Workshop) -> dict[str, str]:
    """This process's environment without anything a facility's session defines."""
    env = dict(os.environ)
    defined_by_facilities = {name for facility in workshop.facilities.values() for name in facility.environment}
    for name in list(env):
        if name in SESSION_VARIABLES or name in defined_by_facilities or name.startswith("CASABOOK_"):
            del env[name]
    return env


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    """The version installed here of each distribution (None: not installed)."""
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
