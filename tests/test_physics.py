"""Physics regression: every notebook named in tests/physics_reference/*.yml gives the right numbers.

Each notebook runs once per session with papermill on the real "python3" kernel, its parameters
pointing at the verified sample data and at a temporary output folder, and every key of its
results JSON is compared with the reference value within the stated tolerance.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import papermill
import pytest
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from rich.console import Console

from casabook.data import default_data_dir, fetch

REPO = Path(__file__).resolve().parents[1]
REFERENCE_FOLDER = REPO / "tests" / "physics_reference"

pytestmark = pytest.mark.notebooks


class Reference(BaseModel):
    """One expected number: exact unless `abs` or `rel` allows a spread."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    value: float | int | bool | str
    abs: float | None = None
    rel: float | None = None

    @model_validator(mode="after")
    def _tolerance_only_for_numbers(self) -> Reference:
        numeric = isinstance(self.value, (int, float)) and not isinstance(self.value, bool)
        if (self.abs is not None or self.rel is not None) and not numeric:
            raise ValueError("abs and rel apply to numbers only")
        return self

    def admits(self, actual: object) -> bool:
        numeric = isinstance(self.value, (int, float)) and not isinstance(self.value, bool)
        if not numeric:
            return actual == self.value
        if not isinstance(actual, (int, float)) or isinstance(actual, bool):
            return False
        return math.isclose(actual, self.value, abs_tol=self.abs or 0.0, rel_tol=self.rel or 0.0)

    def describe(self) -> str:
        spread = [f"± {self.abs}" if self.abs is not None else "", f"± {self.rel:.1%}" if self.rel is not None else ""]
        return " ".join([repr(self.value), *[part for part in spread if part]])


def reference_cases() -> list:
    cases = []
    for path in sorted(REFERENCE_FOLDER.glob("*.yml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for notebook, keys in raw.items():
            if not (REPO / notebook).is_file():
                raise pytest.UsageError(f"{path.relative_to(REPO)}: {notebook}: no such notebook")
            for key, expected in (keys or {}).items():
                try:
                    reference = Reference.model_validate(expected)
                except ValidationError as error:
                    raise pytest.UsageError(
                        f"{path.relative_to(REPO)}: {notebook}: {key}: {error.errors()[0]['msg']}") from None
                cases.append(pytest.param(notebook, key, reference, id=f"{Path(notebook).stem}:{key}"))
    return cases


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The verified sample data, fetched (or found in place) exactly as `casabook data fetch` does."""
    dest = default_data_dir(REPO)
    fetch(dest, console=Console(file=io.StringIO()))
    return dest


@pytest.fixture(scope="session")
def notebook_results(tmp_path_factory, data_root: Path):
    """notebook path -> its results JSON; each notebook executes at most once per session."""
    outcomes: dict[str, dict | BaseException] = {}

    def results(notebook: str) -> dict:
        if notebook not in outcomes:
            work = tmp_path_factory.mktemp(Path(notebook).stem)
            source = REPO / notebook
            try:
                papermill.execute_notebook(
                    str(source), str(work / source.name),
                    parameters={"data_root": str(data_root), "output_dir": str(work / "output")},
                    kernel_name="python3", cwd=str(source.parent), progress_bar=False, log_output=False,
                    execution_timeout=600,
                )
                outcomes[notebook] = json.loads((work / "output" / f"{source.stem}.json").read_text())
            except Exception as error:  # remembered, so the other keys report it without re-running
                outcomes[notebook] = error
        outcome = outcomes[notebook]
        if isinstance(outcome, BaseException):
            pytest.fail(f"{notebook} did not run to its results: {type(outcome).__name__}: {outcome}", pytrace=False)
        return outcome

    return results


@pytest.mark.parametrize("notebook, key, reference", reference_cases())
def test_physics_result(notebook_results, notebook: str, key: str, reference: Reference):
    results = notebook_results(notebook)
    assert key in results, f"{notebook} wrote no '{key}'; it wrote {sorted(results)}"
    assert reference.admits(results[key]), f"{notebook}: {key} = {results[key]!r}, expected {reference.describe()}"
