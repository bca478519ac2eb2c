"""Imported once by the validator's fork server, so each run's child starts with papermill loaded.

It also registers the papermill engine that tells the child which cell is running: papermill
reports a failing cell only for exceptions, and a timeout or a dead kernel must name its cell too.
"""

from __future__ import annotations

from typing import Any

from casabook.upstream.jsonschema import import_without_iri_grammar

# Over a second of every validation's warm-up otherwise, for a check nbformat never makes.
import_without_iri_grammar()

import nbformat  # noqa: E402, F401 - loaded here so no child pays for it
from jupyter_client import AsyncKernelManager  # noqa: F401
from nbclient.exceptions import CellTimeoutError, DeadKernelError  # noqa: F401
from papermill.engines import NBClientEngine, papermill_engines
from papermill.exceptions import PapermillExecutionError  # noqa: F401

import casabook.validation.checks  # noqa: F401
from casabook.imports import distributions_for

ENGINE = "casabook"


class CellTrackingEngine(NBClientEngine):
    """papermill's nbclient engine, calling `on_cell_start(nb, index)` before each cell runs, and
    handing its execution manager to `managers` (so a run stopped by a timeout can still be saved)."""

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
        on_cell_start = kwargs.pop("on_cell_start", None)
        managers = kwargs.pop("managers", None)
        if managers is not None:
            managers.append(nb_man)
        if on_cell_start is not None:
            cell_start = nb_man.cell_start

            def tracked(cell: Any, cell_index: int | None = None, **more: Any) -> Any:
                on_cell_start(nb_man.nb, cell_index)
                return cell_start(cell, cell_index, **more)

            nb_man.cell_start = tracked
        return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)


papermill_engines.register(ENGINE, CellTrackingEngine)

# Module -> distribution lookup scans every installed distribution once; done here, children inherit it.
distributions_for("numpy")

# Starting a python3 kernel reads its spec through ipykernel (IPython, pygments, psutil): loaded here once.
import ipykernel.kernelspec  # noqa: E402, F401
import psutil  # noqa: E402, F401
