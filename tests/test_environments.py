"""Each facility's package set from its image's files, its environment built with uv, and what notebooks require.

The environment tests build real, tiny environments with uv from the package registries (ipykernel and
one small package, more-itertools) in a throw-away cache, and run real kernels in them.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest
import yaml

from casabook.cli import main
from casabook.errors import CasabookError
from casabook.image import Package, layered, read_image_file
from casabook.imports import missing_packages_in
from casabook.model import load_workshop
from casabook.validation.environments import facility_environment
from casabook.validation.matrix import validate
from casabook.validation.summary import environment_lines
from casabook.testing.matrix import REPO, facility_file, make_workshop, notebook, write_results

# --- the formats -------------------------------------------------------------------------------

PIP_LIST = json.dumps([{"name": "mplhep", "version": "0.3.40"}, {"name": "Func_ADL", "version": "3.5.0"},
                       {"name": "mine", "version": "0.1", "editable_project_location": "/srv/work/mine"}])
PIP_FREEZE = "# made by pip freeze\nmplhep==0.3.40\nfunc-adl==3.5.0\ncoffea-casa @ git+https://github.com/CoffeaTeam/coffea-casa.git@1a2b\n"
ENVIRONMENT_YML = """\
name: base
channels: [conda-forge]
dependencies:
  - python=3.12
  - xrootd
  - htcondor==24.0.22
  - pytables
  - uproot>=5.6.2
  - dask<2025.4.0
  - pip
  - pip:
      - mplhep==0.3.40
      - git+https://github.com/CoffeaTeam/coffea-casa.git#egg=coffea_casa
"""
CONDA_LIST = json.dumps([
    {"name": "mplhep", "version": "0.3.40", "channel": "conda-forge", "build_string": "pyhd8ed1ab_0"},
    {"name": "numpy", "version": "2.4.2", "channel": "conda-forge", "build_string": "py312h1234_0"},
    {"name": "openssl", "version": "3.3.1", "channel": "conda-forge", "build_string": "h4ab18f5_0"},
    {"name": "xrootd", "version": "5.7.1", "channel": "conda-forge", "build_string": "h9876_0"},
    {"name": "func-adl", "version": "3.5.0", "channel": "pypi", "build_string": "pypi_0"},
])
SNAPSHOT = json.dumps({"casabook_snapshot": 1, "python": "3.12.5",
                       "pip": [{"name": "mplhep", "version": "0.3.40"}, {"name": "xrootd", "version": "5.7.1"}],
                       "conda": [{"name": "xrootd", "version": "5.7.1", "channel": "conda-forge", "build_string": "h1_0"}],
                       "modules": {"XRootD": ["xrootd"], "mplhep": ["mplhep"]}, "kernelspecs": {},
                       "environment_variables": ["HOME"]})
NOT_BUILT, BUILT = True, False

# (id, file name, content, {package: (spec, not built?)}, python)
FORMATS = [
    ("pip-list-json", "image.json", PIP_LIST,
     {"mplhep": ("==0.3.40", BUILT), "func-adl": ("==3.5.0", BUILT), "mine": ("==0.1", NOT_BUILT)}, ""),
    ("pip-freeze", "image.txt", PIP_FREEZE,
     {"mplhep": ("==0.3.40", BUILT), "func-adl": ("==3.5.0", BUILT), "coffea-casa": ("", NOT_BUILT)}, ""),
    ("conda-environment-yml", "environment.yml", ENVIRONMENT_YML,
     {"python": ("==3.12.*", NOT_BUILT), "xrootd": ("", NOT_BUILT), "htcondor": ("==24.0.22", NOT_BUILT),
      "tables": ("", BUILT), "uproot": (">=5.6.2", BUILT), "dask": ("<2025.4.0", BUILT), "pip": ("", NOT_BUILT),
      "mplhep": ("==0.3.40", BUILT), "coffea-casa": ("", NOT_BUILT)}, "3.12"),
    ("conda-list-json", "conda.json", CONDA_LIST,
     {"mplhep": ("==0.3.40", BUILT), "numpy": ("==2.4.2", BUILT), "xrootd": ("==5.7.1", NOT_BUILT),
      "func-adl": ("==3.5.0", BUILT)}, ""),
    ("casabook-snapshot", "snapshot.json", SNAPSHOT,
     {"mplhep": ("==0.3.40", BUILT), "xrootd": ("==5.7.1", NOT_BUILT)}, "3.12.5"),
]


@pytest.mark.parametrize(("name", "content", "expected", "python"), [case[1:] for case in FORMATS],
                         ids=[case[0] for case in FORMATS])
def test_each_image_file_format_gives_its_packages(tmp_path: Path, name: str, content: str,
                                                   expected: dict[str, tuple[str, bool]], python: str) -> None:
    (tmp_path / name).write_text(content)
    found = read_image_file(tmp_path / name, name)
    assert {p.name: (p.spec, bool(p.not_built)) for p in found.packages} == expected
    assert found.python == python
    assert all(p.source == name for p in found.packages)


def test_layers_apply_in_order_then_the_overrides(tmp_path: Path) -> None:
    (tmp_path / "base.yml").write_text("dependencies: [numpy, 'uproot>=5', hist]\n")
    (tmp_path / "top.txt").write_text("numpy==2.4.2\nhist\n")
    files = [read_image_file(tmp_path / name, name) for name in ("base.yml", "top.txt")]
    image = layered(files, ["base.yml", "top.txt"], {"uproot": "==5.7.0"}, {"hist": "heavy"})
    assert image.get("numpy") == Package("numpy", "==2.4.2", "top.txt")
    assert image.get("uproot").version == "5.7.0" and image.get("uproot").source == "packages"
    assert image.get("hist").not_built == "not built here: heavy"
    assert [p.name for p in image.built()] == ["numpy", "uproot"]


BAD_FILES = [
    ("not-an-environment", "environment.yml", "name: base\n", "'dependencies' list"),
    ("bad-conda-range", "environment.yml", "dependencies: ['numpy >>2']\n", "numpy"),
    ("bad-pip-line", "image.txt", "numpy===\n", "PEP 508"),
    ("snapshot-of-another-format", "snap.json", '{"casabook_snapshot": 9}', "format 1"),
]


@pytest.mark.parametrize(("name", "content", "said"), [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES])
def test_a_bad_image_file_is_named_with_what_was_expected(tmp_path: Path, name: str, content: str, said: str) -> None:
    root = make_workshop(tmp_path / "ws", {"a": notebook("x = 1")},
                         facilities={"local": facility_file("local", image_files=[f"images/{name}"])})
    (root / "hub-config" / "images" / name).write_text(content)
    with pytest.raises(CasabookError) as raised:
        load_workshop(root)
    assert (raised.value.code, raised.value.file) == ("bad-image-file", f"hub-config/images/{name}")
    assert said in raised.value.message


def test_a_missing_image_file_is_named_with_its_key(tmp_path: Path) -> None:
    root = make_workshop(tmp_path / "ws", {"a": notebook("x = 1")},
                         facilities={"local": facility_file("local", image_files=["nowhere.json"])})
    with pytest.raises(CasabookError) as raised:
        load_workshop(root)
    assert (raised.value.code, raised.value.file, raised.value.key) == ("file-missing", "hub-config/local.yml",
                                                                        "image_files[0]")


# --- casabook facility snapshot ------------------------------------------------------------------


def test_a_snapshot_is_what_the_loader_reads_with_names_never_values(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CASABOOK_TEST_SECRET", "s3cr3t-value")
    root = make_workshop(tmp_path / "ws", {"a": notebook("import yaml")},
                         facilities={"local": facility_file("local", image_files=["images/snapshot.json"], packages={})})
    output = root / "hub-config" / "images" / "snapshot.json"
    assert main(["facility", "snapshot", "--output", str(output)]) == 0
    assert capsys.readouterr().out.strip() == str(output)
    text = output.read_text()
    assert "s3cr3t-value" not in text
    snapshot = json.loads(text)
    assert "CASABOOK_TEST_SECRET" in snapshot["environment_variables"]
    assert snapshot["python"] == platform.python_version() and "python3" in snapshot["kernelspecs"]

    image = load_workshop(root).facilities["local"].image
    assert image.python == platform.python_version()
    assert image.get("pydantic").version == __import__("pydantic").VERSION
    assert image.modules["yaml"] == ["PyYAML"]  # the image's own map: the module yaml is the distribution PyYAML
    assert image.get("casabook").not_built.startswith("installed in the image from a source folder")
    assert missing_packages_in(notebook("import yaml", "import no_such_module"), image) == ["no_such_module"]


# --- environments, and a notebook that passes on one facility and fails on the other -------------

BATCHED = """\
import more_itertools
results = {"batches": [list(batch) for batch in more_itertools.batched(range(5), 2)],
           "version": more_itertools.__version__}
"""


def two_facilities(root: Path) -> Path:
    """'old' runs an image with more-itertools 8.14.0 (no batched), 'new' one with 10.5.0."""
    (root / "hub-config" / "images").mkdir(parents=True, exist_ok=True)
    (root / "hub-config" / "images" / "old.txt").write_text("more-itertools==8.14.0\n")
    (root / "hub-config" / "images" / "new.json").write_text(json.dumps([{"name": "more-itertools", "version": "10.5.0"}]))
    for name, file in (("old", "images/old.txt"), ("new", "images/new.json")):
        data = facility_file("local", image_files=[file], packages={})
        (root / "hub-config" / f"{name}.yml").write_text(yaml.safe_dump(data))
    return root


@pytest.fixture
def env_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CASABOOK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "envs"


@pytest.mark.notebooks
def test_the_same_notebook_fails_on_the_older_image_and_passes_on_the_newer(tmp_path: Path, env_cache: Path) -> None:
    root = make_workshop(tmp_path / "ws", {"batched": notebook(BATCHED + write_results("batched"))}, facility="old",
                         facilities={"local": facility_file("local")})
    two_facilities(root)
    workshop = load_workshop(root)
    report = validate(workshop, facilities=["new"], jobs=2, output=tmp_path / "out")

    old, new = report.run("notebooks/t/batched.ipynb", "old"), report.run("notebooks/t/batched.ipynb", "new")
    assert old.status == "failed" and old.failure.kind == "error", old.failures
    assert "batched" in old.failure.message and old.failure.message.startswith("AttributeError")
    assert new.status == "passed", new.failures
    assert new.results == {"batches": [[0, 1], [2, 3], [4]], "version": "10.5.0"}
    # Each report says which environment ran it: its hash, its Python, the versions of what it imports.
    assert old.environment.packages == {"more-itertools": "8.14.0"}
    assert new.environment.packages == {"more-itertools": "10.5.0"}
    assert old.environment.key != new.environment.key and old.environment.python == platform.python_version()
    assert {path.name for path in env_cache.iterdir() if path.is_dir()} == {old.environment.key, new.environment.key}
    page = (tmp_path / "out" / "report.html").read_text()
    assert f"environment {old.environment.key}, Python {platform.python_version()}: more-itertools 8.14.0" in page
    assert environment_lines(report) == [f"old: environment {old.environment.key}, Python {platform.python_version()}",
                                         f"new: environment {new.environment.key}, Python {platform.python_version()}"]

    # Its kernel is registered in the environment, pointing at its python.
    spec = json.loads((env_cache / new.environment.key / "share" / "jupyter" / "kernels" / "python3" /
                       "kernel.json").read_text())
    assert spec["argv"][0] == str(env_cache / new.environment.key / "bin" / "python")

    # Built once: the second time is the cache (and the run too).
    again = facility_environment(workshop.facilities["new"])
    assert again.build_s is None and again.key == new.environment.key
    assert validate(load_workshop(root), facilities=["new"], jobs=2, output=tmp_path / "out").run(
        "notebooks/t/batched.ipynb", "new").status == "cached"


@pytest.mark.notebooks
def test_a_conda_only_package_a_notebook_imports_is_a_named_substitution(tmp_path: Path, env_cache: Path) -> None:
    root = make_workshop(tmp_path / "ws", {"xrootd": notebook("import more_itertools", "import XRootD")},
                         facilities={"local": facility_file("local", image_files=["images/image.yml"], packages={})})
    (root / "hub-config" / "images" / "image.yml").write_text("dependencies: [xrootd, {pip: [more-itertools==10.5.0]}]\n")
    report = validate(load_workshop(root), jobs=1, output=tmp_path / "out")
    (run,) = report.runs
    substitution = next(s for s in run.substitutions if s.setting == "package xrootd")
    assert substitution.local_value is None and "provided by the image, not built here" in substitution.reason
    assert run.status == "failed" and "XRootD" in run.failure.message  # the import fails here, and says so
    assert run.environment.packages == {"more-itertools": "10.5.0", "xrootd": None}


# --- requirements, checked before any kernel ----------------------------------------------------


@pytest.mark.notebooks
def test_a_requirement_the_image_does_not_meet_fails_check_naming_package_version_and_track(
        tmp_path: Path, env_cache: Path, capsys) -> None:
    nb = notebook("import more_itertools")
    nb.metadata["casabook"] = {"requirements": ["more-itertools<9"]}
    root = make_workshop(tmp_path / "ws", {"needs": nb}, facility="new", facilities={"local": facility_file("local")})
    two_facilities(root)
    track = yaml.safe_load((root / "tracks" / "t.yml").read_text())
    track["requirements"] = ["more-itertools>=10"]
    (root / "tracks" / "t.yml").write_text(yaml.safe_dump(track))

    # On 'new' (10.5.0) the track's requirement holds and the notebook's own does not.
    assert main(["--root", str(root), "check", "--format", "json"]) == 1
    rows = [f for f in json.loads(capsys.readouterr().out)["findings"] if f["check"] == "requirements"]
    assert [r["status"] for r in rows] == ["ok", "error"]
    assert "more-itertools 10.5.0" in rows[1]["detail"] and "track 't'" in rows[1]["detail"]
    assert "metadata.casabook.requirements" in rows[1]["detail"]

    # On 'old' (8.14.0) the track's fails, naming the package, the image's version and the track.
    track["facility"] = "old"
    (root / "tracks" / "t.yml").write_text(yaml.safe_dump(track))
    assert main(["--root", str(root), "check", "--format", "json"]) == 1
    rows = [f for f in json.loads(capsys.readouterr().out)["findings"] if f["check"] == "requirements"]
    assert [r["status"] for r in rows] == ["error", "ok"]
    assert rows[0]["detail"] == ("track 't' on facility 'old': needs more-itertools>=10; the image has more-itertools "
                                 "8.14.0 (pinned by hub-config/images/old.txt) (tracks/t.yml requirements)")

    # validate stops the same notebook before its kernel starts, with the same reason.
    report = validate(load_workshop(root), jobs=1, output=tmp_path / "out")
    failure = report.runs[0].failure
    assert failure.kind == "unmet-requirement" and "more-itertools 8.14.0" in failure.message
    assert report.runs[0].executed_notebook is None


def test_a_track_requirement_must_be_pep_508(tmp_path: Path) -> None:
    root = make_workshop(tmp_path / "ws", {"a": notebook("x = 1")})
    track = yaml.safe_load((root / "tracks" / "t.yml").read_text())
    track["requirements"] = ["mplhep>>0.3"]
    (root / "tracks" / "t.yml").write_text(yaml.safe_dump(track))
    with pytest.raises(CasabookError) as raised:
        load_workshop(root)
    assert raised.value.file == "tracks/t.yml" and raised.value.key == "requirements"
    assert "PEP 508" in raised.value.message



def test_an_environment_uv_cannot_build_is_a_mistake_naming_the_facility_and_leaves_nothing(
        tmp_path: Path, env_cache: Path, capsys) -> None:
    root = make_workshop(tmp_path / "ws", {"a": notebook("x = 1")},
                         facilities={"local": facility_file("local", image_files=["images/image.txt"], packages={})})
    (root / "hub-config" / "images" / "image.txt").write_text("more-itertools==0.0.0\n")  # no such release
    with pytest.raises(CasabookError) as raised:
        facility_environment(load_workshop(root).facilities["local"])
    assert (raised.value.code, raised.value.file, raised.value.key) == ("environment-build", "hub-config/local.yml",
                                                                        "image_files")
    assert "more-itertools" in raised.value.message
    assert [path.suffix for path in env_cache.iterdir()] == [".lock"]  # no half-built environment

    assert main(["--root", str(root), "validate", "--output", str(tmp_path / "out")]) == 2
    assert "[environment-build]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- the repository's facilities, from their images' files ---------------------------------------

# (id, facility, package, expected spec, built here?, the file it comes from)
REPOSITORY_IMAGES = [
    ("opendata-numba-from-the-flavour-file", "coffea-opendata", "numba", "", True, "images/coffea-casa/casa-flavour-noml.yaml"),
    ("opendata-numpy-pinned-by-the-flavour", "coffea-opendata", "numpy", "==2.4.2", True,
     "images/coffea-casa/casa-flavour-noml.yaml"),
    ("opendata-coffea-from-the-image-tag", "coffea-opendata", "coffea", "==2026.9.0", True, "packages"),
    ("opendata-xrootd-conda-only", "coffea-opendata", "xrootd", "", False, "images/coffea-casa/casa-flavour-noml.yaml"),
    ("cms-htcondor-conda-build", "coffea-casa-cms", "htcondor", "==24.0.22", False, "images/coffea-casa/casa-common.yaml"),
    ("cms-coffea-casa-git-pin", "coffea-casa-cms", "coffea-casa", "", False, "images/coffea-casa/casa-common.yaml"),
    ("cms-mlflow-heavy", "coffea-casa-cms", "mlflow", "", False, "images/coffea-casa/casa-common.yaml"),
    ("atlas-root-conda-only", "atlas-af", "root", "", False, "images/atlas-af/ml-platform.yml"),
    ("atlas-uproot-from-ml-platform", "atlas-af", "uproot", ">=5.3", True, "packages"),
]


@pytest.mark.parametrize(("facility", "package", "spec", "built", "source"), [case[1:] for case in REPOSITORY_IMAGES],
                         ids=[case[0] for case in REPOSITORY_IMAGES])
def test_the_repository_facilities_packages_come_from_their_images_files(facility: str, package: str, spec: str,
                                                                         built: bool, source: str) -> None:
    found = load_workshop(REPO).facilities[facility].image.get(package)
    assert found is not None
    assert (found.spec, not found.not_built) == (spec, built), found
    assert f"hub-config/{source}" == found.source or source == found.source == "packages"
