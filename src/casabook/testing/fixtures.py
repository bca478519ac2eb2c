"""The pytest fixtures that start the real local stack and make real materials repositories
(loaded for every test by tests/conftest.py).

    def test_something(hub_factory, materials_repo):
        stack = hub_factory(participants=3)          # a started casabook.testing.hub.LocalHub
        browser = stack.login("alice")               # real OAuth login -> a client with the hub's cookies
        page = stack.launch(browser, materials_repo.launch_url(stack.hub_url, "nb/intro.ipynb"))

`hub_factory` is module-scoped: every stack it started is stopped when the module's tests end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from casabook.testing.hub import LocalHub
from casabook.testing.materials import MaterialsRepo, notebook_text
from casabook.testing.workshops import REPO

REPO_ROOT = REPO
TEST_CONTACT = "casabook test organisers <organisers@casabook.invalid>"


@pytest.fixture(scope="module")
def hub_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LocalHub]]:
    """Start a LocalHub (keyword arguments as LocalStack's) in a fresh state folder."""
    started: list[LocalHub] = []

    def start(**kwargs: object) -> LocalHub:
        kwargs.setdefault("contact", TEST_CONTACT)
        stack = LocalHub(root=REPO_ROOT, state_dir=tmp_path_factory.mktemp("hub-state"), **kwargs)  # type: ignore[arg-type]
        started.append(stack)
        return stack.start()

    yield start
    for stack in reversed(started):
        stack.stop()


@pytest.fixture
def materials_repo(tmp_path: Path) -> MaterialsRepo:
    return MaterialsRepo.create(tmp_path / "materials-upstream", {
        "nb/intro.ipynb": notebook_text("x = 1\nprint(x)"),
        "exercises.py": "line 1\nline 2\nline 3\n",
        "README.md": "# Workshop materials\n",
    }, "First materials")
