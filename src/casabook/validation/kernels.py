"""The kernelspecs installed here that a matrix needs; a kernel that is missing stops the command."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from casabook.errors import CasabookError
from casabook.model import Facility
from casabook.validation.environments import Environment
from casabook.validation.notebooks import declared_kernel


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


def require_kernels(facilities: list[Facility], notebooks: dict[str, dict[str, Any]],
                    environments: Mapping[str, Environment]) -> dict[str, dict[str, Any]]:
    """Every kernel a run needs must be installed here; an unknown one stops the command before any run.

    Installed here means in the facility's own environment when it has one (its kernel is registered
    there), else among this machine's kernelspecs.
    """
    declared = {path: declared_kernel(nb) for path, nb in notebooks.items()}
    wanted = {f.kernel for f in facilities} | {name for name in declared.values() if name}
    kernels = installed_kernels(wanted)
    for facility in facilities:
        if facility.kernel in environments[facility.name].kernels:
            continue
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
