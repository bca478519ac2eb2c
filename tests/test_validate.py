"""casabook validate: the papermill matrix, with real kernels on tiny generated notebooks.

Each workshop here is a real folder (tracks/, hub-config/, notebooks/) built in tmp_path from the
repository's own facility files; each run starts a real ipykernel.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook, new_output
from rich.console import Console

from casabook.cli import main
from casabook.errors import CasabookError
from casabook.model import load_workshop
from casabook.validation.checks import declared_parameters, environment_reads
from casabook.validation.matrix import validate
from casabook.validation.results import Report
from casabook.validation.schedule import recorded_duration
from casabook.validation.summary import print_summary
from casabook.testing.matrix import (
    facility_file,
    make_workshop,
    notebook,
    parameters_cell,
    write_results,
)



# --- building workshops -----------------------------------------------------------------------


@pytest.fixture
def alt_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A second real kernelspec, 'casabook-alt', found through JUPYTER_PATH (as a facility image's kernel would be)."""
    folder = tmp_path / "jupyter" / "kernels" / "casabook-alt"
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "casabook alt", "language": "python", "env": {"KERNEL_FLAVOUR": "alt"},
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "casabook-alt"


# --- each failure kind, reported with its cell -------------------------------------------------

# Two processes under the kernel hold 200 MiB each at the same time: only the sum over the tree shows 400.
TWO_CHILDREN = """\
import subprocess, sys, time
holder = "import sys; block = bytearray(b'x') * (200 * 2**20); print('ready', flush=True); sys.stdin.read()"
children = [subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
assert all(child.stdout.readline() == "ready\\n" for child in children)
time.sleep(2)
for child in children:
    child.stdin.close()
    child.wait()"""

# (id, notebook cells, expected kind or None for a pass, expected cell index, its first line)
CASES = [
    ("passes-and-writes-results",
     ["results = {'answer': 6 * 7}", write_results("passes-and-writes-results")], None, None, None),
    ("cell-raises", ["x = 1", "def f():\n    return 1 / 0\nf()", "never = 1"], "error", 3, "def f():"),
    ("cell-past-its-limit", ["import time\ntime.sleep(600)"], "cell-timeout", 2, "import time"),
    ("kernel-killed", ["import os\nos._exit(3)"], "kernel-died", 2, "import os"),
    ("imports-a-package-the-facility-lacks", ["import json", "import numpy\nimport sklearn"], "missing-package", 3,
     "import numpy"),
    ("reads-an-unset-variable", ["import os\nuser_token = os.environ['NOT_SET_BY_THE_FACILITY']"], "environment", 2,
     "import os"),
    ("holds-300-mib", ["block = bytearray(b'x') * (300 * 2**20)\nimport time\ntime.sleep(0.5)"], None, None, None),
    ("two-children-hold-200-mib-each", [TWO_CHILDREN], None, None, None),
]


@pytest.mark.notebooks
def test_each_failure_kind_names_its_cell(tmp_path: Path) -> None:
    root = make_workshop(tmp_path / "ws", {case: notebook(*cells) for case, cells, *_ in CASES})
    # The cell limit leaves room for a machine busy with other work; the notebook limit is out of the way.
    report = validate(load_workshop(root), jobs=2, cell_timeout=15, notebook_timeout=300, output=tmp_path / "out")

    for case, _, kind, index, line in CASES:
        run = report.run(f"notebooks/t/{case}.ipynb", "local")
        assert run is not None, case
        if kind is None:
            assert run.status == "passed", (case, run.failures)
            continue
        assert run.status == "failed", case
        assert run.failure.kind == kind, (case, run.failure)
        assert run.failure.cell is not None and (run.failure.cell.index, run.failure.cell.first_line) == (index, line), case

    for stopped in ("cell-raises", "cell-past-its-limit", "kernel-killed"):  # saved as far as each ran
        executed = nbformat.read(tmp_path / "out" / report.run(f"notebooks/t/{stopped}.ipynb", "local").executed_notebook,
                                 as_version=4)
        parameters = next(c for c in executed.cells if "parameters" in c.metadata.get("tags", []))
        assert parameters.execution_count == 1, stopped
    raised = report.run("notebooks/t/cell-raises.ipynb", "local").failure
    assert raised.message == "ZeroDivisionError: division by zero"
    assert "return 1 / 0" in raised.traceback and "\x1b[" not in raised.traceback
    died = report.run("notebooks/t/kernel-killed.ipynb", "local").failure
    assert "exit status 3" in died.message
    missing = report.run("notebooks/t/imports-a-package-the-facility-lacks.ipynb", "local").failure
    assert "sklearn" in missing.message and "hub-config/local.yml" in missing.message
    assert report.run("notebooks/t/imports-a-package-the-facility-lacks.ipynb", "local").executed_notebook is None

    passed = report.run("notebooks/t/passes-and-writes-results.ipynb", "local")
    assert passed.results == {"answer": 42}
    executed = nbformat.read(tmp_path / "out" / passed.executed_notebook, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and f'data_root = "{root / ".casabook" / "data"}"' in injected[0].source
    assert report.run("notebooks/t/holds-300-mib.ipynb", "local").peak_memory_mib >= 300
    assert report.run("notebooks/t/two-children-hold-200-mib-each.ipynb", "local").peak_memory_mib >= 400
    assert not report.ok


@pytest.mark.notebooks
def test_a_notebook_past_its_limit_is_stopped_in_the_running_cell(tmp_path: Path) -> None:
    # Each cell stays within the per-cell limit; together they do not fit the notebook's.
    # Limits wide enough for a kernel to start on a busy machine, and still far below the 120 s of cells.
    root = make_workshop(tmp_path / "ws", {"slow": notebook(*["import time\ntime.sleep(2)"] * 60)})
    report = validate(load_workshop(root), jobs=1, cell_timeout=15, notebook_timeout=20, output=tmp_path / "out")
    failure = report.runs[0].failure
    assert failure.kind == "notebook-timeout"
    assert failure.cell is not None and failure.cell.index >= 2 and failure.cell.first_line == "import time"
    assert "limit of 20 s" in failure.message


# A notebook from outside: no parameters cell, its settings read from the session's environment.
FOREIGN = """\
import json, os
os.makedirs("output", exist_ok=True)
json.dump({"data_root": os.environ["CASABOOK_DATA_ROOT"], "scheduler": os.environ["DASK_SCHEDULER_ADDRESS"],
           "defined": sorted(n for n in ("data_root", "dask_scheduler_address", "output_dir") if n in globals())},
          open("output/untagged.json", "w"))"""
DEFINED = """\
import json, os
os.makedirs("output", exist_ok=True)
json.dump({"defined": sorted(n for n in ("data_root", "dask_scheduler_address", "output_dir") if n in globals())},
          open("output/partial.json", "w"))"""


@pytest.mark.notebooks
def test_only_the_declared_parameters_are_injected_and_none_without_a_parameters_cell(tmp_path: Path) -> None:
    untagged = notebook(FOREIGN, parameters=False)
    partial = notebook(DEFINED, parameters=False)
    partial.cells.insert(1, parameters_cell("data_root"))
    # Through a remote facility: its XCache and scheduler substitutions reach the notebook by the environment.
    root = make_workshop(tmp_path / "ws", {"untagged": untagged, "partial": partial}, facility="coffea-casa-cms")
    report = validate(load_workshop(root), jobs=2, output=tmp_path / "out")
    session = tmp_path / "out" / "sessions" / "coffea-casa-cms" / "ws" / "notebooks" / "t"

    ran = report.run("notebooks/t/untagged.ipynb", "coffea-casa-cms")
    assert ran.status == "passed", ran.failures
    executed = nbformat.read(tmp_path / "out" / ran.executed_notebook, as_version=4)
    assert not [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(ran.notes) == 1 and "no cell tagged 'parameters'" in ran.notes[0]
    assert "CASABOOK_DATA_ROOT" in ran.notes[0]
    assert json.loads((session / "output" / "untagged.json").read_text()) == {
        "data_root": str(root / ".casabook" / "data"), "scheduler": "", "defined": []}
    assert {s.setting for s in ran.substitutions} >= {"data_root", "dask_scheduler"}

    declared = report.run("notebooks/t/partial.ipynb", "coffea-casa-cms")
    assert declared.status == "passed" and declared.notes == [], declared.failures
    executed = nbformat.read(tmp_path / "out" / declared.executed_notebook, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "data_root = " in injected[0].source
    assert "output_dir" not in injected[0].source and "dask_scheduler_address" not in injected[0].source
    assert json.loads((session / "output" / "partial.json").read_text()) == {"defined": ["data_root"]}


# --- the facility's session, reproduced -------------------------------------------------------

SESSION_PROBE = """\
import os
results = {name: os.environ.get(name) for name in
           ("CASABOOK_FACILITY", "CASABOOK_DATA_ROOT", "DASK_SCHEDULER_ADDRESS", "SERVICEX_ENDPOINT", "XCACHE_HOST",
            "KERNEL_FLAVOUR")}
results.update(cwd=os.getcwd(), data_root=data_root, dask_scheduler_address=dask_scheduler_address, pid=os.getpid())
"""


@pytest.mark.notebooks
def test_a_remote_facility_runs_with_its_session_and_named_substitutions(tmp_path: Path) -> None:
    root = make_workshop(tmp_path / "ws", {"probe": notebook(SESSION_PROBE + write_results("probe"))})
    report = validate(load_workshop(root), facilities=["coffea-casa-cms"], jobs=2, output=tmp_path / "out")
    assert report.facilities == ["local", "coffea-casa-cms"]
    local, remote = report.run("notebooks/t/probe.ipynb", "local"), report.run("notebooks/t/probe.ipynb", "coffea-casa-cms")
    assert local.status == remote.status == "passed", (local.failures, remote.failures)
    data = str(root / ".casabook" / "data")

    assert local.substitutions == []
    assert remote.results["CASABOOK_FACILITY"] == "coffea-casa-cms"
    assert remote.results["XCACHE_HOST"] == "xcache.coffea.casa"  # the facility's own environment
    assert remote.results["CASABOOK_DATA_ROOT"] == remote.results["data_root"] == data
    assert remote.results["DASK_SCHEDULER_ADDRESS"] == remote.results["dask_scheduler_address"] == ""
    assert remote.results["SERVICEX_ENDPOINT"] is None
    assert {s.setting: s.local_value for s in remote.substitutions} == {
        "data_root": ".casabook/data", "dask_scheduler": "", "servicex_endpoint": None}
    assert remote.substitutions[0].facility_value.startswith("root://")
    # nbgitpuller's layout: <home>/<targetpath>/<notebook path>; without a git origin the targetpath is the repository's name.
    assert remote.results["cwd"] == str(tmp_path / "out" / "sessions" / "coffea-casa-cms" / "ws" / "notebooks" / "t")
    assert local.results["pid"] != remote.results["pid"]


@pytest.mark.notebooks
def test_the_facility_kernel_runs_and_a_notebook_declaring_another_fails(tmp_path: Path, alt_kernel: str) -> None:
    facilities = {"alt": facility_file("local", kernel=alt_kernel)}
    root = make_workshop(tmp_path / "ws", {"declares-alt": notebook(SESSION_PROBE + write_results("declares-alt"), kernel=alt_kernel),
                                           "declares-python3": notebook("x = 1")},
                         facility="alt", facilities=facilities)
    report = validate(load_workshop(root), jobs=2, output=tmp_path / "out")
    ran = report.run("notebooks/t/declares-alt.ipynb", "alt")
    assert ran.status == "passed" and ran.results["KERNEL_FLAVOUR"] == "alt"
    mismatch = report.run("notebooks/t/declares-python3.ipynb", "alt").failure
    assert mismatch.kind == "kernel-mismatch" and "'python3'" in mismatch.message and alt_kernel in mismatch.message


UNKNOWN_KERNELS = [
    ("notebook-declares-an-unknown-kernel", "python3", "no-such-kernel", "notebooks/t/a.ipynb",
     "metadata.kernelspec.name"),
    ("facility-runs-an-unknown-kernel", "no-such-kernel", "python3", "hub-config/local.yml", "kernel"),
]


@pytest.mark.parametrize(("facility_kernel", "notebook_kernel", "file", "key"),
                         [case[1:] for case in UNKNOWN_KERNELS], ids=[case[0] for case in UNKNOWN_KERNELS])
def test_an_unknown_kernel_stops_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      facility_kernel: str, notebook_kernel: str, file: str,
                                                      key: str) -> None:
    root = make_workshop(tmp_path / "ws", {"a": notebook("x = 1", kernel=notebook_kernel)},
                         facilities={"local": facility_file("local", kernel=facility_kernel)})
    with pytest.raises(CasabookError) as raised:
        validate(load_workshop(root), output=tmp_path / "out")
    assert (raised.value.code, raised.value.file, raised.value.key) == ("unknown-kernel", file, key)
    assert "no-such-kernel" in raised.value.message

    assert main(["--root", str(root), "validate", "--output", str(tmp_path / "out")]) == 2
    assert f"{file}: {key}:" in capsys.readouterr().err.replace("\n", "")
    assert not (tmp_path / "out").exists()


# --- the cache ------------------------------------------------------------------------------------

COUNTING = """\
import pathlib
with open({counter!r}, "a") as counter:
    counter.write("run\\n")
"""


@pytest.mark.notebooks
def test_cache_hits_unchanged_and_output_only_changes_and_misses_on_a_changed_cell(tmp_path: Path) -> None:
    counter = tmp_path / "runs.txt"
    root = make_workshop(tmp_path / "ws", {"counted": notebook(COUNTING.format(counter=str(counter))),
                                           "fails": notebook("1 / 0"), "lacks-a-package": notebook("import sklearn")})
    path = root / "notebooks" / "t" / "counted.ipynb"

    def run(**options: object) -> Report:
        return validate(load_workshop(root), jobs=2, output=tmp_path / "out", **options)

    def times_run() -> int:
        return len(counter.read_text().splitlines())

    first = run()
    assert first.run("notebooks/t/counted.ipynb", "local").status == "passed" and times_run() == 1
    # The pass and the failure found before the kernel started are stored, each whole: no temporary file beside them.
    stored = {path.name for path in (tmp_path / "out" / "cache").iterdir()}
    assert stored == {f"{first.run(f'notebooks/t/{name}.ipynb', 'local').key}.json" for name in ("counted", "lacks-a-package")}

    second = run()
    assert second.run("notebooks/t/counted.ipynb", "local").status == "cached" and times_run() == 1
    # A failure while running is run again; one found before the kernel starts follows from the key alone.
    fails = second.run("notebooks/t/fails.ipynb", "local")
    assert (fails.status, fails.from_cache) == ("failed", False)
    lacks = second.run("notebooks/t/lacks-a-package.ipynb", "local")
    assert (lacks.status, lacks.from_cache, lacks.failure.kind) == ("failed", True, "missing-package")
    assert not second.ok
    assert second.run("notebooks/t/counted.ipynb", "local").key == first.run("notebooks/t/counted.ipynb", "local").key

    nb = nbformat.read(path, as_version=4)
    nb.cells[2].outputs = [new_output("stream", name="stdout", text="committed output\n")]
    nb.cells[2].execution_count = 7
    nb.metadata["language_info"] = {"name": "python", "version": "3.99"}
    nbformat.write(nb, path)
    assert run().run("notebooks/t/counted.ipynb", "local").status == "cached" and times_run() == 1

    nb.cells[2].source += "\nchanged = True"
    nbformat.write(nb, path)
    assert run().run("notebooks/t/counted.ipynb", "local").status == "passed" and times_run() == 2

    assert run(force=True).run("notebooks/t/counted.ipynb", "local").status == "passed" and times_run() == 3

    local = facility_file("local")
    local["environment"] = {**local["environment"], "NEW_SETTING": "1"}
    (root / "hub-config" / "local.yml").write_text(yaml.safe_dump(local))
    assert run().run("notebooks/t/counted.ipynb", "local").status == "passed" and times_run() == 4

    # Another facility is another key: validating there runs it, the local result stays cached.
    both = run(facilities=["coffea-casa-cms"])
    assert both.run("notebooks/t/counted.ipynb", "local").status == "cached"
    assert both.run("notebooks/t/counted.ipynb", "coffea-casa-cms").status == "passed" and times_run() == 5


# --- parallel runs ----------------------------------------------------------------------------

TIMED = """\
import os, time
started = time.time()
time.sleep(2)
results = {"started": started, "ended": time.time(), "pid": os.getpid(), "ppid": os.getppid()}
"""


@pytest.mark.notebooks
def test_two_jobs_run_notebooks_at_once_each_in_its_own_kernel(tmp_path: Path) -> None:
    names = [f"nb{i}" for i in range(4)]
    root = make_workshop(tmp_path / "ws", {name: notebook(TIMED + write_results(name)) for name in names})
    report = validate(load_workshop(root), jobs=2, output=tmp_path / "out")
    assert [run.status for run in report.runs] == ["passed"] * 4, [run.failures for run in report.runs]
    spans = sorted((run.results["started"], run.results["ended"]) for run in report.runs)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])), spans
    assert len({run.results["pid"] for run in report.runs}) == 4
    assert len({run.results["ppid"] for run in report.runs}) == 4  # one child process per run, too


# --- the command ------------------------------------------------------------------------------


def summary_of(report_json: dict, folder: Path) -> str:
    """What print_summary prints for a written report, on a console like the command's on a pipe."""
    runs = [{key: value for key, value in run.items() if key != "failure"} for run in report_json["runs"]]
    report = Report.model_validate({**report_json, "runs": runs})  # `failure` is computed from `failures`
    report._folder = folder
    stream = io.StringIO()
    print_summary(report, Console(file=stream, width=200))
    return stream.getvalue()


@pytest.mark.notebooks
def test_cli_exit_codes_and_report_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_workshop(tmp_path / "ws", {"good": notebook("x = 1"), "bad": notebook("raise ValueError('bad input')")})
    out = tmp_path / "out"
    base = ["--root", str(root), "validate", "--output", str(out), "--jobs", "2"]

    assert main(base) == 1
    captured = capsys.readouterr()
    assert "casabook validate" in captured.out and "ValueError: bad input" in captured.out
    assert "failed: notebooks/t/bad.ipynb on local: error: cell 2" in captured.out
    assert "1 passed, 1 failed, 0 cached; report: " in captured.out.replace("\n", "")
    report = json.loads((out / "report.json").read_text())
    assert summary_of(report, out) == captured.out  # the command prints its summary with print_summary
    assert {(r["notebook"], r["status"]) for r in report["runs"]} == {
        ("notebooks/t/good.ipynb", "passed"), ("notebooks/t/bad.ipynb", "failed")}
    bad = next(r for r in report["runs"] if r["status"] == "failed")
    assert bad["failure"]["cell"] == {"index": 2, "first_line": "raise ValueError('bad input')"}
    page = (out / "report.html").read_text()
    assert "notebooks/t/bad.ipynb" in page and "ValueError: bad input" in page
    assert "<script" not in page and "<link" not in page and "http" not in page.replace("http-equiv", "")
    assert str(tmp_path) not in page and str(tmp_path) not in (out / "report.json").read_text().split('"runs"')[0]

    nb = nbformat.read(root / "notebooks" / "t" / "bad.ipynb", as_version=4)
    nb.cells[-1].source = "x = 2"
    nbformat.write(nb, root / "notebooks" / "t" / "bad.ipynb")
    assert main(base) == 0
    assert "1 passed, 0 failed, 1 cached" in capsys.readouterr().out.replace("\n", "")

    for mistake in (["--track", "nope"], ["--facility", "nope"], ["--jobs", "0"], ["--cell-timeout", "0"]):
        assert main([*base, *mistake]) == 2, mistake
        assert "error:" in capsys.readouterr().err


# --- the static checks, by themselves -----------------------------------------------------------

ENV_READS = [
    ("subscript", "import os\nos.environ['A']", [(0, "A", False)]),
    ("get-without-default", "import os\nos.environ.get('A')", [(0, "A", False)]),
    ("get-with-default", "import os\nos.environ.get('A', 'x')", [(0, "A", True)]),
    ("getenv-keyword-default", "import os\nos.getenv('A', default='x')", [(0, "A", True)]),
    ("from-os-import", "from os import environ, getenv\nenviron['A']\ngetenv('B')", [(0, "A", False), (0, "B", False)]),
    ("assignment-is-not-a-read", "import os\nos.environ['A'] = '1'", []),
    ("magics-ignored", "%matplotlib inline\n!ls\nimport os\nos.environ['A']", [(0, "A", False)]),
]


@pytest.mark.parametrize(("source", "expected"), [case[1:] for case in ENV_READS], ids=[case[0] for case in ENV_READS])
def test_environment_reads(source: str, expected: list[tuple[int, str, bool]]) -> None:
    nb = new_notebook(cells=[new_code_cell(source)])
    assert environment_reads(nb) == expected


DECLARED = [
    ("annotated-and-tuple", "data_root: str = 'x'\ndask_scheduler_address, output_dir = '', 'out'",
     ["data_root", "dask_scheduler_address", "output_dir"]),
    ("only-some", "data_root = 'x'\nn_workers = 2", ["data_root"]),
    ("none-of-them", "max_events = None", []),
    ("magic-in-the-cell", "%matplotlib inline\noutput_dir = 'out'", ["output_dir"]),
]


@pytest.mark.parametrize(("source", "expected"), [case[1:] for case in DECLARED], ids=[case[0] for case in DECLARED])
def test_declared_parameters_are_those_the_parameters_cell_assigns(source: str, expected: list[str]) -> None:
    cell = new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    offered = ["data_root", "dask_scheduler_address", "output_dir"]
    assert declared_parameters(new_notebook(cells=[new_code_cell("data_root = 1"), cell]), offered) == expected
    assert declared_parameters(new_notebook(cells=[new_code_cell(source)]), offered) is None


# --- the order runs start in ------------------------------------------------------------------


def timed_at(nb: nbformat.NotebookNode, seconds: float) -> nbformat.NotebookNode:
    """The notebook as committed after a run of `seconds`: its first code cell carries the execution timing."""
    start = dt.datetime(2026, 1, 1, 10, tzinfo=dt.timezone.utc)
    nb.cells[1].metadata["execution"] = {"iopub.execute_input": start.isoformat(),
                                         "shell.execute_reply": (start + dt.timedelta(seconds=seconds)).isoformat()}
    return nb


def test_recorded_duration_spans_the_cells_execution_timing() -> None:
    nb = notebook("x = 1", "y = 2")
    nb.cells[1].metadata["execution"] = {"iopub.execute_input": "2026-01-01T10:00:00.000Z",
                                         "shell.execute_reply": "2026-01-01T10:00:01.000Z"}
    nb.cells[3].metadata["execution"] = {"iopub.execute_input": "2026-01-01T10:00:02.000Z",
                                         "shell.execute_reply": "2026-01-01T10:00:03.500Z"}
    assert recorded_duration(nb) == 3.5
    assert recorded_duration(notebook("x = 1")) is None


STARTED = """\
import time
results = {"started": time.time()}
"""


@pytest.mark.notebooks
def test_runs_start_longest_expected_first(tmp_path: Path) -> None:
    # Listed short, long, unknown; one job, so each starts only when the one before has ended.
    names = ["short", "long", "unknown"]
    body = {name: notebook(STARTED + write_results(name)) for name in names}
    root = make_workshop(tmp_path / "ws", {"short": timed_at(body["short"], 1), "long": timed_at(body["long"], 5),
                                           "unknown": body["unknown"]})
    out = tmp_path / "out"

    def start_order(report: Report) -> list[str]:
        assert [run.status for run in report.runs] == ["passed"] * 3, [run.failures for run in report.runs]
        return [Path(run.notebook).stem for run in sorted(report.runs, key=lambda run: run.results["started"])]

    # No run measured here yet: the committed timing decides, and an unknown one counts as longest.
    assert start_order(validate(load_workshop(root), jobs=1, output=out)) == ["unknown", "long", "short"]

    # Once measured here, the last report's durations decide over the committed timing.
    report = json.loads((out / "report.json").read_text())
    measured = {"short": 9.0, "long": 0.5, "unknown": 3.0}
    for run in report["runs"]:
        run["duration_s"] = measured[Path(run["notebook"]).stem]
    (out / "report.json").write_text(json.dumps(report))
    assert start_order(validate(load_workshop(root), jobs=1, force=True, output=out)) == ["short", "unknown", "long"]
