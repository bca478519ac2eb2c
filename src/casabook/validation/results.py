"""The result types a validation produces: each run's result (status, failures, substitutions), the report.

The pool and the child that runs a notebook make `Failure`s, the orchestration makes `RunResult`s
and the `Report`; the report writer and the terminal summary read them. They live here, apart from
all of those, so that none of them imports another to reach a type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, computed_field

Status = Literal["passed", "failed", "cached"]
FailureKind = Literal[
    "error",             # a cell raised
    "cell-timeout",      # a cell ran past the per-cell limit
    "notebook-timeout",  # the notebook ran past the per-notebook limit
    "kernel-died",       # the kernel process exited while a cell ran
    "kernel-start",      # the kernel did not start or did not answer
    "kernel-mismatch",   # the notebook declares another kernel than the facility runs
    "missing-package",   # it imports a distribution the facility's image lacks
    "unmet-requirement", # its track or it requires a version the facility's image does not have
    "environment",       # it reads a variable the facility does not set, without a default
    "pull",              # on a hub: the launch link did not bring the notebook into the session
    "internal",          # the validator itself failed (a bug): the message says where
]
# Failures found before a kernel starts depend on nothing but the cache key's inputs: safe to reuse.
STATIC_KINDS = frozenset({"kernel-mismatch", "missing-package", "unmet-requirement", "environment"})

class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CellRef(Model):
    index: int | None = Field(description="0-based position among all cells of the notebook as committed; "
                                          "None for the parameters cell papermill injects")
    first_line: str

    def describe(self) -> str:
        where = f"cell {self.index}" if self.index is not None else "the injected parameters cell"
        return f"{where} ({self.first_line})" if self.first_line else where


class Failure(Model):
    kind: FailureKind
    message: str
    cell: CellRef | None = None
    traceback: str = ""

    def describe(self) -> str:
        where = f"{self.cell.describe()}: " if self.cell else ""
        return f"{self.kind}: {where}{self.message}"


class Substitution(Model):
    """A facility service that cannot exist on this machine, and what stood in for it."""

    setting: str
    facility_value: str
    local_value: str | None = Field(description="None when the setting was removed")
    reason: str

    def describe(self) -> str:
        instead = f"-> {self.local_value!r}" if self.local_value is not None else "removed"
        return f"{self.setting}: {self.facility_value} {instead} ({self.reason})"


class RunEnvironment(Model):
    """Which environment ran a notebook."""

    key: str = Field(description="the hash of the image files it was built from; 'this-machine' for casabook's own")
    python: str = Field(description="the Python version it ran")
    image_python: str = Field("", description="the image's Python version, where its files say")
    packages: dict[str, str | None] = Field(default_factory=dict,
                                            description="each distribution the notebook imports -> its version there")

    def describe(self) -> str:
        built = "this machine's environment" if self.key == "this-machine" else f"environment {self.key}"
        image = f" (image: Python {self.image_python})" if self.image_python else ""
        versions = ", ".join(f"{name} {version or 'missing'}" for name, version in self.packages.items())
        return f"{built}, Python {self.python}{image}" + (f": {versions}" if versions else "")


class RunResult(Model):
    notebook: str
    track: str
    facility: str
    status: Status
    duration_s: float | None = None
    peak_memory_mib: float | None = Field(None, description="peak resident memory of the kernel's process tree")
    cpu_s: float | None = Field(None, description="CPU time (user + system) of the kernel and the processes it reaped")
    substitutions: list[Substitution] = Field(default_factory=list)
    environment: RunEnvironment | None = Field(None, description="the environment the notebook ran in")
    warnings: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="how the run differed from a plain one, e.g. "
                                                              "no parameters injected")
    failures: list[Failure] = Field(default_factory=list)
    executed_notebook: str | None = Field(None, description="relative to the report's folder")
    log: str | None = Field(None, description="the kernel's stdout and stderr, relative to the report's folder")
    results: dict[str, Any] = Field(default_factory=dict, description="the notebook's own results JSON")
    key: str = Field(description="the cache key: notebook, facility, package versions, data")
    from_cache: bool = Field(False, description="reused from an identical earlier run (a pass, or a failure "
                                                "found before the kernel started) instead of run again")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failure(self) -> Failure | None:
        """The first failure: what an attendee would meet first."""
        return self.failures[0] if self.failures else None

    def shown_status(self) -> str:
        """The status as a reader sees it: a failure reused from the cache says so."""
        return f"{self.status} (cached)" if self.status == "failed" and self.from_cache else self.status

    def figures(self) -> str:
        """What the run measured, in one line: time, peak memory, CPU."""
        parts = []
        if self.duration_s is not None:
            parts.append(f"{self.duration_s:.1f} s")
        if self.peak_memory_mib is not None:
            parts.append(f"{self.peak_memory_mib:.0f} MiB")
        if self.cpu_s is not None:
            parts.append(f"{self.cpu_s:.1f} s CPU")
        return " · ".join(parts)


class Limits(Model):
    cell_timeout_s: float
    notebook_timeout_s: float


class Report(Model):
    casabook_version: str
    generated_at: str
    jobs: int
    limits: Limits
    facilities: list[str]
    notebooks: list[str]
    runs: list[RunResult]
    _folder: Path | None = PrivateAttr(None)

    @property
    def folder(self) -> Path:
        """Where report.json, report.html and the executed notebooks are (not part of the JSON)."""
        if self._folder is None:
            raise ValueError("this report was not written to a folder")
        return self._folder

    def count(self, status: Status) -> int:
        return sum(run.status == status for run in self.runs)

    @property
    def ok(self) -> bool:
        return all(run.status != "failed" for run in self.runs)

    def run(self, notebook: str, facility: str) -> RunResult | None:
        return next((r for r in self.runs if r.notebook == notebook and r.facility == facility), None)
