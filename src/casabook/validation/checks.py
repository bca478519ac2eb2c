"""What can be known about one notebook on one facility before its kernel starts.

Each check answers "would an attendee's session on this facility fail here?" and names the cell:
the kernel the notebook declares, the distributions it imports and the environment variables it
reads. Which parameters papermill injects is the notebook's to say (`declared_parameters`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from typing import Any

from casabook.image import Image
from casabook.model import Facility
from casabook.validation.notebooks import cell_source, cell_tags, declared_kernel
from casabook.validation.results import CellRef, Failure

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"

# Line magics and shell escapes, alone or assigned (`files = !ls`): blanked so the rest parses.
_MAGIC = re.compile(r"^(\s*)[%!].*$")
_ASSIGNED_MAGIC = re.compile(r"^(\s*[\w.]+\s*=\s*)[%!].*$")


def first_line(cell: Mapping[str, Any]) -> str:
    """The first non-blank source line: enough for a reader to find the cell."""
    return next((line.strip() for line in cell_source(cell).splitlines() if line.strip()), "")


def cell_ref(nb: Mapping[str, Any], index: int) -> CellRef:
    return CellRef(index=index, first_line=first_line(nb["cells"][index]))


def _tree(cell: Mapping[str, Any]) -> ast.Module | None:
    source = cell_source(cell)
    if source.lstrip().startswith("%%"):
        return None  # a cell magic: its body may not be Python
    text = "\n".join(_MAGIC.sub(r"\1pass", _ASSIGNED_MAGIC.sub(r"\1None", line)) for line in source.splitlines())
    try:
        return ast.parse(text)
    except SyntaxError:
        return None  # the kernel reports it, with its cell, when the notebook runs


def _code_trees(nb: Mapping[str, Any]) -> Iterable[tuple[int, ast.Module]]:
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "code" and (tree := _tree(cell)) is not None:
            yield index, tree


def check_kernel(nb: Mapping[str, Any], facility: Facility) -> Failure | None:
    declared = declared_kernel(nb)
    if declared == facility.kernel:
        return None
    return Failure(kind="kernel-mismatch",
                   message=f"the notebook declares kernel {declared!r}; facility {facility.name!r} runs {facility.kernel!r} "
                           "(casabook check --fix rewrites it)")


def parameters_cell(nb: Mapping[str, Any]) -> int | None:
    return next((index for index, cell in enumerate(nb.get("cells", []))
                 if cell.get("cell_type") == "code" and PARAMETERS_TAG in cell_tags(cell)), None)


def _assigned_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name):
                    names.add(leaf.id)
    return names


def declared_parameters(nb: Mapping[str, Any], offered: Iterable[str]) -> list[str] | None:
    """The offered parameters the notebook's "parameters" cell declares, in the offered order;
    None when no code cell is tagged "parameters" (papermill then injects nothing)."""
    index = parameters_cell(nb)
    if index is None:
        return None
    tree = _tree(nb["cells"][index])
    declared = _assigned_names(tree) if tree is not None else set()
    return [name for name in offered if name in declared]


def _is_environ(node: ast.expr) -> bool:
    """`os.environ` or a bare `environ` (from os import environ)."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name)
            and node.value.id == "os") or (isinstance(node, ast.Name) and node.id == "environ")


def _is_getenv(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "getenv" and isinstance(node.value, ast.Name)
            and node.value.id == "os") or (isinstance(node, ast.Name) and node.id == "getenv")


def _constant_name(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def environment_reads(nb: Mapping[str, Any]) -> list[tuple[int, str, bool]]:
    """(cell index, variable, has a default) for each read of an environment variable named by a constant."""
    reads: list[tuple[int, str, bool]] = []
    for index, tree in _code_trees(nb):
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and _is_environ(node.value) and isinstance(node.ctx, ast.Load):
                if (name := _constant_name(node.slice)) is not None:
                    reads.append((index, name, False))
            elif isinstance(node, ast.Call) and node.args:
                name = _constant_name(node.args[0])
                if name is None:
                    continue
                func = node.func
                has_default = len(node.args) > 1 or any(k.arg == "default" for k in node.keywords)
                if (isinstance(func, ast.Attribute) and func.attr in ("get", "pop") and _is_environ(func.value)) \
                        or _is_getenv(func):
                    reads.append((index, name, has_default))
    return reads


def check_environment(nb: Mapping[str, Any], facility: Facility, session_variables: Iterable[str]) -> Failure | None:
    """Every variable the notebook reads without a default must be one the facility's sessions set."""
    provided = set(session_variables)
    unset = [(index, name) for index, name, has_default in environment_reads(nb)
             if not has_default and name not in provided]
    if not unset:
        return None
    index = unset[0][0]
    names = sorted({name for _, name in unset})
    return Failure(kind="environment", cell=cell_ref(nb, index),
                   message=f"reads {', '.join(names)} without a default, and facility {facility.name!r} does not set "
                           f"{'it' if len(names) == 1 else 'them'} (hub-config/{facility.name}.yml environment, or give "
                           "a default: os.environ.get(NAME, default))")


def check_imports(nb: Any, facility: Facility, image: Image) -> Failure | None:
    """The import check `casabook check` runs, with the first cell importing a missing distribution."""
    from casabook.imports import missing_packages_in, notebook_imports

    missing = missing_packages_in(nb, image)
    if not missing:
        return None
    first = None
    for index, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") == "code" and set(missing) & notebook_imports({"cells": [cell]}):
            first = cell_ref(nb, index)
            break
    return Failure(kind="missing-package", cell=first,
                   message=f"imports {', '.join(missing)}, which the image of facility {facility.name!r} does not provide "
                           f"(hub-config/{facility.name}.yml image_files, packages)")


def check_requirements(nb: Any, facility: Facility, image: Image, track_requirements: Iterable[str]) -> Failure | None:
    """The PEP 508 requirements of the notebook's track and metadata, against the image as built here."""
    from casabook.validation.requirements import notebook_requirements, unmet

    reasons = [reason for spec in [*track_requirements, *notebook_requirements(nb)]
               if (reason := unmet(spec, image, image.python)) is not None]
    if not reasons:
        return None
    return Failure(kind="unmet-requirement", message=f"facility {facility.name!r}: " + "; ".join(reasons))


def static_failures(nb: Any, facility: Facility, image: Image, *, session_variables: Iterable[str],
                    requirements: Iterable[str] = (), language: str = "python") -> list[Failure]:
    """Every check that fails, in the order an attendee would meet them."""
    kernel = check_kernel(nb, facility)
    if language != "python":  # the source checks read Python; another kernel's notebook gets the kernel check alone
        return [kernel] if kernel else []
    checks = (
        kernel,
        check_requirements(nb, facility, image, requirements),
        check_imports(nb, facility, image),
        check_environment(nb, facility, session_variables),
    )
    return [failure for failure in checks if failure is not None]
