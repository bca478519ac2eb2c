"""The README's "Adding a track", followed step by step: a new track with a notebook from outside
passes `casabook check`, `casabook validate` and `casabook book` with no change to casabook.

The track file is the README's own example, read from the README, so the steps and the test cannot
drift apart. The notebook is a foreign one: no parameters cell, its settings read from the session.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from casabook.cli import main
from casabook.testing.remotes import hosted_remote
from casabook.testing.workshops import REPO, git, make_workshop

# Written elsewhere, as it is: a title, imports, a histogram; no `parameters` cell, no casabook conventions.
FOREIGN_CELLS = [
    new_markdown_cell("# A first look\n\nA histogram of a few numbers."),
    new_code_cell("import os\nimport hist\n\ndata_folder = os.environ.get('CASABOOK_DATA_ROOT', '.')"),
    new_code_cell("h = hist.Hist.new.Reg(10, 0, 10, name='x').Double()\nh.fill([1, 2, 2, 3])\nprint(h.sum())"),
]


def readme_track() -> tuple[str, dict]:
    """The track file the README's step 2 shows, and its notebook's path."""
    section = (REPO / "README.md").read_text().split("## Adding a track", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "the README's 'Adding a track' shows a track file"
    text = re.sub(r"^ {3}", "", block[1], flags=re.M)
    return text, yaml.safe_load(text)


@pytest.mark.notebooks
def test_a_new_track_from_the_readme_passes_check_validate_and_book(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    root = make_workshop(tmp_path / "workshop", commit=False)
    shutil.copytree(REPO / "book", root / "book", ignore=shutil.ignore_patterns("_build"))  # the hand-written pages

    text, track = readme_track()
    (root / "tracks" / "lhcb.yml").write_text(text)  # step 2: the file name is the track's name
    path = track["notebooks"][0]["path"]
    nb = new_notebook(cells=FOREIGN_CELLS)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, root / path)  # step 1: the notebook in notebooks/<track>/
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the LHCb track")
    hosted_remote(root, "https://github.com/casabook-example/workshop.git")  # step 3: commit, push

    # Step 3: casabook check.
    assert main(["--root", str(root), "check", "--format", "json"]) == 0, capsys.readouterr().out
    findings = json.loads(capsys.readouterr().out)["findings"]
    mine = {f["check"]: f for f in findings if f["subject"] == path}
    assert set(mine) == {"nbformat", "kernel", "imports", "requirements"}
    assert all(f["status"] == "ok" for f in findings if f["check"] == "links")
    assert mine["requirements"]["status"] == "ok" and track["requirements"][0] in mine["requirements"]["detail"]

    out = tmp_path / "validate"
    assert main(["--root", str(root), "validate", "--track", "lhcb", "--output", str(out), "--jobs", "1"]) == 0, \
        capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    (run,) = report["runs"]
    assert (run["notebook"], run["facility"], run["status"]) == (path, track["facility"], "passed")
    assert any("no cell tagged 'parameters'" in note for note in run["notes"])

    assert main(["--root", str(root), "book", "--output", str(tmp_path / "html")]) == 0
    page = next((tmp_path / "html").rglob("01-first-look.html")).read_text()
    assert "A first look" in page and "git-pull?repo=" in page  # its page, with a launch button
