"""Generated notebooks and workshops for the validation matrix's tests and benchmarks.

Each workshop is a real folder (tracks/, hub-config/, notebooks/) built from the repository's own
facility files and image files, with a track `t` listing the given notebooks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from casabook.testing.workshops import REPO


def parameters_cell(*names: str) -> nbformat.NotebookNode:
    lines = {
        "data_root": 'data_root = os.environ.get("CASABOOK_DATA_ROOT", "../../.casabook/data")',
        "dask_scheduler_address": 'dask_scheduler_address = os.environ.get("DASK_SCHEDULER_ADDRESS", "")',
        "output_dir": 'output_dir = "output"',
    }
    cell = new_code_cell("import os\n" + "\n".join(lines[name] for name in names or lines))
    cell.metadata["tags"] = ["parameters"]
    return cell


def notebook(*sources: str, kernel: str = "python3", parameters: bool = True) -> nbformat.NotebookNode:
    """A notebook as the conventions lay it out: title, imports-and-parameters cell, then the given code cells."""
    cells = [new_markdown_cell("# A generated notebook")]
    if parameters:
        cells.append(parameters_cell())
    cells.extend(new_code_cell(source) for source in sources)
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3 (ipykernel)", "language": "python"}
    return nb


WRITE_RESULTS = """\
import json, pathlib
pathlib.Path(output_dir).mkdir(parents=True, exist_ok=True)
(pathlib.Path(output_dir) / "STEM.json").write_text(json.dumps(results))"""


def write_results(stem: str) -> str:
    """The results JSON the notebook conventions ask for: <output_dir>/<notebook stem>.json."""
    return WRITE_RESULTS.replace("STEM", stem)


def facility_file(name: str, **changes: object) -> dict:
    data = yaml.safe_load((REPO / "hub-config" / f"{name}.yml").read_text())
    data.update(changes)
    return data


def make_workshop(root: Path, notebooks: dict[str, nbformat.NotebookNode], *, facility: str = "local",
                  facilities: dict[str, dict] | None = None) -> Path:
    """tracks/t.yml listing the notebooks (notebooks/t/<name>.ipynb) on `facility`."""
    (root / "hub-config").mkdir(parents=True)
    shutil.copytree(REPO / "hub-config" / "images", root / "hub-config" / "images")  # the facilities' image files
    (root / "tracks").mkdir()
    for name, data in (facilities or {"local": facility_file("local"),
                                      "coffea-casa-cms": facility_file("coffea-casa-cms")}).items():
        (root / "hub-config" / f"{name}.yml").write_text(yaml.safe_dump(data))
    entries = []
    for name, nb in notebooks.items():
        path = root / "notebooks" / "t" / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        entries.append({"path": f"notebooks/t/{name}.ipynb", "title": name, "minutes": 5})
    track = {"title": "T", "summary": "s", "audience": "a", "facility": facility, "participant_cap": 5,
             "organisers": [{"name": "o", "email": "o@example.org"}], "notebooks": entries}
    (root / "tracks" / "t.yml").write_text(yaml.safe_dump(track))
    return root
