"""`casabook check` findings and `casabook links`: encoding, round trip, and the check against git."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import nbformat
import pytest
from casabook.testing.remotes import hosted_remote, published_workshop
from casabook.testing.workshops import edit_yaml, git, tiny_notebook

from casabook.atomic import leftovers
from casabook.cli import main
from casabook.links import Source, launch_url, parse_launch_url
from casabook.model import load_workshop

CMS_NOTEBOOK = "notebooks/cms/01-nanoevents.ipynb"


@pytest.fixture
def workshop(tmp_path: Path) -> Path:
    return published_workshop(tmp_path / "workshop")


def test_clean_workshop_passes(workshop: Path, capsys):
    assert main(["--root", str(workshop), "check"]) == 0
    out = capsys.readouterr().out
    assert "clean: 0 error(s)" in out


def test_foreign_kernel_is_reported_and_fixed(workshop: Path, capsys):
    nbformat.write(tiny_notebook(kernel="pyhf"), workshop / CMS_NOTEBOOK)
    assert main(["--root", str(workshop), "check"]) == 1
    assert "declares kernel 'pyhf'" in capsys.readouterr().out
    assert main(["--root", str(workshop), "check", "--fix"]) == 0
    fixed = nbformat.read(workshop / CMS_NOTEBOOK, as_version=4)
    assert fixed.metadata.kernelspec.name == "python3"
    assert fixed.cells[1].source == "print('hello')"  # the rewrite keeps the cells
    assert not leftovers(workshop / "notebooks" / "cms", "01-nanoevents.ipynb")
    assert not list((workshop / "notebooks" / "cms").glob(".*.tmp"))


@pytest.mark.parametrize("source, missing", [
    ("import sklearn", "sklearn"),
    ("from tensorflow import keras", "tensorflow"),
    ("%matplotlib inline\nimport torch.nn as nn", "torch"),
    ("import numpy, os, json\nfrom coffea.nanoevents import NanoEventsFactory", None),
    ("import yaml\nimport func_adl_uproot", None),
    ("try:\n    import servicex\nexcept ImportError:\n    servicex = None", None),
    ("from . import local_helper", None),
], ids=["sklearn-missing", "tensorflow-missing", "magic-then-torch-missing", "provided-and-stdlib",
        "module-name-differs-from-distribution", "optional-import", "relative-import"])
def test_environment_drift(workshop: Path, capsys, source: str, missing: str | None):
    nbformat.write(tiny_notebook(source), workshop / CMS_NOTEBOOK)
    code = main(["--root", str(workshop), "check"])
    out = capsys.readouterr().out
    if missing:
        assert code == 1 and f"imports {missing}" in out
    else:
        assert code == 0, out


def test_invalid_notebook_is_reported(workshop: Path, capsys):
    (workshop / CMS_NOTEBOOK).write_text('{"cells": "not a list"}')
    assert main(["--root", str(workshop), "check"]) == 1
    assert "not a valid notebook" in capsys.readouterr().out


def test_capacity_preflight(workshop: Path, capsys):
    edit_yaml(workshop / "hub-config" / "atlas-af.yml", lambda d: d["resources"].update(total_cores=10))
    assert main(["--root", str(workshop), "check"]) == 1
    assert "60 participants x 1 = 60 of 10" in capsys.readouterr().out


# --- links ------------------------------------------------------------------------------------

ROUND_TRIP = [
    ("https://coffea.casa", Source("https://github.com/org/casabook", "main", "casabook"), "notebooks/cms/01-nanoevents.ipynb"),
    ("https://hub.example.org/prefix", Source("https://git.example.org/a b.git", "feature/x", "my materials"),
     "notebooks/odd name & co/01 #1?.ipynb"),
    ("http://127.0.0.1:8000", Source("file:///srv/casabook", "dev+1", "casabook"), "notebooks/ü/ñ%20.ipynb"),
]


@pytest.mark.parametrize("hub, source, notebook", ROUND_TRIP, ids=["plain", "spaces-and-specials", "unicode-and-percent"])
def test_launch_url_round_trip(hub: str, source: Source, notebook: str):
    url = launch_url(hub, source, notebook)
    assert " " not in url and url.count("?") == 1
    assert parse_launch_url(url) == (hub, source, notebook)


def test_launch_url_has_the_nbgitpuller_shape():
    url = launch_url("https://coffea.casa", Source("https://github.com/org/casabook", "main", "casabook"), "n/a.ipynb")
    assert url == ("https://coffea.casa/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2Forg%2Fcasabook"
                   "&branch=main&targetpath=casabook&urlpath=lab%2Ftree%2Fcasabook%2Fn%2Fa.ipynb")


def test_links_markdown_lists_every_notebook_into_its_facility(workshop: Path, capsys):
    assert main(["--root", str(workshop), "links", "--format", "md"]) == 0
    out = capsys.readouterr().out
    loaded = load_workshop(workshop)
    for track in loaded.tracks.values():
        hub = loaded.facility_of(track).hub.url
        for entry in track.notebooks:
            line = next(l for l in out.splitlines() if f"[{entry.title}]" in l)
            url = line.split("](", 1)[1].rsplit(") (", 1)[0]
            assert parse_launch_url(url) == (hub, parse_launch_url(url)[1], entry.path)


def test_links_default_source_is_origin_and_current_branch(workshop: Path, capsys):
    git(workshop, "remote", "remove", "origin")
    hosted_remote(workshop, "https://github.com/casabook-org/agc-workshop.git", push=False)
    edit_yaml(workshop / "tracks" / "cms.yml", lambda d: d.pop("materials"))
    git(workshop, "checkout", "-q", "-b", "spring-2027")
    git(workshop, "commit", "-q", "-am", "cms pulls into the repository's folder")
    git(workshop, "push", "-q", "origin", "spring-2027")
    assert main(["--root", str(workshop), "links", "--track", "cms", "--format", "json"]) == 0
    links = json.loads(capsys.readouterr().out)
    _, source, _ = parse_launch_url(links[0]["url"])
    assert source == Source("https://github.com/casabook-org/agc-workshop.git", "spring-2027", "agc-workshop")


def test_links_csv_and_hub_override(workshop: Path, capsys):
    assert main(["--root", str(workshop), "links", "--format", "csv", "--hub-override", "http://127.0.0.1:8123"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == sum(len(t.notebooks) for t in load_workshop(workshop).tracks.values())
    assert all(row["url"].startswith("http://127.0.0.1:8123/hub/user-redirect/git-pull?") for row in rows)


def test_uncommitted_notebook_is_a_broken_link(workshop: Path, capsys):
    new = "notebooks/cms/05-new.ipynb"
    nbformat.write(tiny_notebook(), workshop / new)
    edit_yaml(workshop / "tracks" / "cms.yml",
              lambda d: d["notebooks"].append({"path": new, "title": "New", "minutes": 5}))
    assert main(["--root", str(workshop), "links"]) == 1
    err = capsys.readouterr().err
    assert f"{new} is not committed on branch 'main'" in err


def test_unknown_branch_is_a_broken_link(workshop: Path, capsys):
    assert main(["--root", str(workshop), "links", "--branch", "no-such-branch"]) == 1
    assert "branch 'no-such-branch' does not exist" in capsys.readouterr().err
