"""casabook.node_packages: npm packages found by Node's rule, and a missing one said with its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from casabook.errors import CasabookError
from casabook.node_packages import find_node_package, node_package

REPO = Path(__file__).resolve().parents[1]


def install(folder: Path, name: str) -> Path:
    package = folder / "node_modules" / name
    package.mkdir(parents=True)
    (package / "package.json").write_text('{"name": "%s", "version": "1.0.0"}' % name)
    return package


@pytest.mark.parametrize("installed_in, looked_from", [
    pytest.param(".", ".", id="in-the-root"),
    pytest.param(".", "book/deep/er", id="in-a-parent-of-the-start"),
])
def test_found_where_node_would_find_it(tmp_path: Path, installed_in, looked_from):
    package = install(tmp_path / installed_in, "@scope/widget")
    (tmp_path / looked_from).mkdir(parents=True, exist_ok=True)
    assert find_node_package("@scope/widget", tmp_path / looked_from) == package.resolve()


def test_a_folder_without_package_json_is_not_an_installed_package(tmp_path: Path):
    (tmp_path / "node_modules" / "half-installed").mkdir(parents=True)
    assert find_node_package("half-installed", tmp_path) is None


def test_casabooks_own_packages_serve_a_workshop_kept_elsewhere(tmp_path: Path):
    assert node_package("mathjax", tmp_path) == (REPO / "node_modules" / "mathjax").resolve()


def test_missing_package_says_how_to_install_it(tmp_path: Path):
    with pytest.raises(CasabookError) as failure:
        node_package("casabook-no-such-package", tmp_path)
    assert failure.value.code == "no-node-package" and failure.value.file == "package.json"
    assert f"run `npm ci` in {tmp_path}" in failure.value.message
