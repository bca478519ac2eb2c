"""How long `casabook book` takes: a cold build, a rebuild with no change, a rebuild after editing one notebook.

Run: python benchmarks/bench_book.py [--runs N]. Each build is a new `casabook book` process, as an
instructor runs it, on a throw-away copy of this repository's tracks, facilities, book and notebooks
(a notebook not written yet is stood in for by a small one with a plot), committed to a fresh git
repository. Target: a one-notebook edit rebuilds within 1.5x the time of a no-change rebuild.

Both wall time and CPU time (user + system of the build process) are printed: on a machine shared
with other work, wall time mostly measures waiting for a core, and CPU time is the fairer figure.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

REPO = Path(__file__).resolve().parents[1]


def plot_png() -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4, 3))
    axes.hist([0.5, 1.0, 1.2, 2.0, 2.1, 2.2, 3.0], bins=5)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def stand_in_notebook(title: str, png: str) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    code = nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.hist([0.5, 1.0, 1.2, 2.0, 2.1, 2.2, 3.0], bins=5)",
                                     execution_count=1)
    code.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})]
    notebook.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\nA stand-in page for the benchmark."), code,
                      nbformat.v4.new_markdown_cell("## Summary\n\nThe end.")]
    return notebook


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=bench", "-c", "user.email=bench@casabook.invalid", *args],
                   check=True, capture_output=True)


def make_copy(root: Path) -> tuple[Path, int]:
    """The repository's workshop in `root`; returns the notebook to edit and how many notebooks are real."""
    for folder in ("tracks", "hub-config", "book"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("_build", "__pycache__"))
    png = plot_png()
    real = 0
    first: Path | None = None
    for track_file in sorted((root / "tracks").glob("*.yml")):
        for entry in yaml.safe_load(track_file.read_text())["notebooks"]:
            target = root / entry["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            if (REPO / entry["path"]).is_file():
                shutil.copy2(REPO / entry["path"], target)
                real += 1
            else:
                nbformat.write(stand_in_notebook(entry["title"], png), target)
            first = first or target
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "materials")
    assert first is not None
    return first, real


def edit(notebook: Path, run: int) -> None:
    """An instructor's typical edit: a sentence added to a markdown cell."""
    data = nbformat.read(notebook, as_version=4)
    cell = next(cell for cell in data.cells if cell.cell_type == "markdown")
    cell.source += f"\n\nEdited for benchmark run {run}."
    nbformat.write(data, notebook)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build(root: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `casabook book` process."""
    command = [sys.executable, "-m", "casabook.cli", "--root", str(root), "book"]
    cpu, start = _children_cpu(), time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if result.returncode != 0:
        sys.exit(f"casabook book failed (exit {result.returncode}):\n{result.stderr}")
    return elapsed, cpu


def _row(name: str, runs: list[tuple[float, float]]) -> tuple[float, float]:
    wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    detail = f"  (median of {len(runs)})" if len(runs) > 1 else ""
    print(f"  {name:<20} {wall:6.2f} s wall  {cpu:6.2f} s CPU{detail}")
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="rebuilds of each kind (the median is reported)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="casabook-bench-book-") as folder:
        root = Path(folder) / "workshop"
        root.mkdir()
        notebook, real = make_copy(root)
        total = sum(1 for _ in (root / "notebooks").rglob("*.ipynb"))
        cold = build(root)
        unchanged = [build(root) for _ in range(args.runs)]
        edited = []
        for run in range(args.runs):
            edit(notebook, run)
            edited.append(build(root))
        size = sum(path.stat().st_size for path in (root / "book" / "_build" / "html").rglob("*") if path.is_file())
    load = os.getloadavg()[0]
    print(f"casabook book: {total} notebooks ({real} from the repository, {total - real} stand-ins), "
          f"{size / 2**20:.1f} MiB of HTML; each build a new process; load average {load:.1f} on {os.cpu_count()} cores")
    _row("cold build", [cold])
    no_change = _row("no-change rebuild", unchanged)
    one_edit = _row("one-notebook edit", edited)
    for kind, index in (("wall", 0), ("CPU", 1)):
        ratio = one_edit[index] / no_change[index]
        print(f"  edit / no-change ({kind}) {ratio:5.2f} x  (target <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
