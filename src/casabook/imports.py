"""Which distributions a notebook imports, and which of them an image lacks.

This is the environment-drift check: a notebook that works on an instructor's laptop but imports
something the facility's image does not provide fails for every attendee at once.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Mapping
from functools import cache
from typing import Any
from importlib.metadata import packages_distributions

from casabook.image import Image, normalise

# Modules whose distribution name differs from the module name and that a user environment may
# lack (so packages_distributions() of this environment cannot tell).
KNOWN_DISTRIBUTIONS: dict[str, str] = {
    "yaml": "pyyaml",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "PIL": "pillow",
    "cv2": "opencv-python",
    "mpl_toolkits": "matplotlib",
    "func_adl_uproot": "func-adl-uproot",
    "func_adl": "func-adl",
    "dask_awkward": "dask-awkward",
    "IPython": "ipython",
    "ipykernel": "ipykernel",
    "servicex": "servicex",
}

# IPython magics and shell escapes are not Python; they are blanked before parsing.
_MAGIC = re.compile(r"^\s*[%!]")


def _code(source: str) -> str:
    return "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())


def notebook_imports(notebook: Mapping[str, Any]) -> set[str]:
    """Top-level module names imported by the notebook's code cells, standard library excluded."""
    modules: set[str] = set()
    for cell in notebook["cells"]:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        try:
            tree = ast.parse(_code("".join(source) if isinstance(source, list) else source))
        except SyntaxError:
            continue  # a cell that does not parse fails at run time, where validation reports it
        optional = _optional_imports(tree)
        for node in ast.walk(tree):
            if node in optional:
                continue
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    return {module for module in modules if module not in sys.stdlib_module_names and module != "__future__"}


def _optional_imports(tree: ast.AST) -> set[ast.AST]:
    """Imports inside `try: ... except ImportError`: the notebook runs without them."""
    optional: set[ast.AST] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = {ast.unparse(handler.type) for handler in node.handlers if handler.type is not None}
        if caught & {"ImportError", "ModuleNotFoundError", "(ImportError, ModuleNotFoundError)"}:
            optional.update(child for statement in node.body for child in ast.walk(statement))
    return optional


@cache
def _installed_distributions() -> dict[str, list[str]]:
    return packages_distributions()


def distributions_for(module: str, image: Image | None = None) -> set[str]:
    """The distributions (normalised names) that may provide a module: by the image's own map where it
    has one (a snapshot's), else by the module's name, the table above and this machine's map."""
    if image is not None and module in image.modules:
        return {normalise(dist) for dist in image.modules[module]}
    names = {normalise(module)}
    if module in KNOWN_DISTRIBUTIONS:
        names.add(normalise(KNOWN_DISTRIBUTIONS[module]))
    names.update(normalise(dist) for dist in _installed_distributions().get(module, []))
    return names


def imported_distributions(notebook: Mapping[str, Any], image: Image) -> dict[str, str | None]:
    """Each module the notebook imports -> the image's distribution providing it (None: none does)."""
    found: dict[str, str | None] = {}
    for module in sorted(notebook_imports(notebook)):
        found[module] = next((name for name in sorted(distributions_for(module, image)) if name in image.packages), None)
    return found


def missing_packages_in(notebook: Mapping[str, Any], image: Image) -> list[str]:
    """Imported modules that no package of the image provides, sorted."""
    return [module for module, dist in imported_distributions(notebook, image).items() if dist is None]

