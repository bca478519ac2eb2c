"""Shared fixtures that start the real local stack: JupyterHub, configurable-http-proxy and the OIDC
provider on free loopback ports, plus real git repositories of materials.

Import the fixtures you use into a test module (pytest finds them there):

    from hubfixtures import hub_factory, materials_repo  # noqa: F401

    def test_something(hub_factory, materials_repo):
        stack = hub_factory(participants=3)          # a started casabook.hub.local.LocalStack
        browser = stack.login("alice")               # real OAuth login -> httpx.Client with cookies
        page = stack.launch(browser, materials_repo.launch_url(stack.hub_url, "nb/intro.ipynb"))

`stack.hub_url`, `stack.oidc_url`, `stack.api_token` (a role with the admin scopes; also in
<state>/organiser-token), `stack.demo_users` ("organiser" is an admin), `stack.api(method, path,
token=None, json=...)`, `stack.cap_status()` (places, admitted, waiting list), `stack.wait_ready(name)`,
`stack.restart_hub()` (same ports and database), `stack.log_tail()`.
Logins: `stack.login(name, claims=None)` raises casabook.hub.local.LoginRefused(status, page) on an
error page; `stack.authorize(name)` stops before the hub's callback and returns (client, callback
URL), for races and tampering; `stack.finish_login(client, url)` completes it.
`stack.launch(client, link, timings={})` follows a launch link (spawn, nbgitpuller, JupyterLab).
`hub_factory` is module-scoped: every stack it started is stopped when the module's tests end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from workshops import git

from casabook.hub.local import LocalStack
from casabook.links import Source, launch_url

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_CONTACT = "casabook test organisers <organisers@casabook.invalid>"


@pytest.fixture(scope="module")
def hub_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LocalStack]]:
    """Start a LocalStack (keyword arguments as LocalStack's) in a fresh state folder."""
    started: list[LocalStack] = []

    def start(**kwargs: object) -> LocalStack:
        kwargs.setdefault("contact", TEST_CONTACT)
        stack = LocalStack(root=REPO_ROOT, state_dir=tmp_path_factory.mktemp("hub-state"), **kwargs)  # type: ignore[arg-type]
        started.append(stack)
        return stack.start()

    yield start
    for stack in reversed(started):
        stack.stop()




@dataclass
class MaterialsRepo:
    """A real git repository of workshop materials, pulled by nbgitpuller over file://."""

    path: Path
    branch: str = "main"
    targetpath: str = "materials"

    @property
    def source(self) -> Source:
        return Source(repo=self.path.as_uri(), branch=self.branch, targetpath=self.targetpath)

    @classmethod
    def create(cls, path: Path, files: dict[str, str | None], message: str = "Workshop materials") -> "MaterialsRepo":
        """A new repository at `path` whose first commit holds `files`."""
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")
        repo = cls(path)
        repo.commit(files, message)
        return repo

    def launch_url(self, hub_url: str, notebook: str) -> str:
        return launch_url(hub_url, self.source, notebook)

    def commit(self, files: dict[str, str | None], message: str = "Update the materials") -> None:
        """Write (or, with None, delete) files and commit them."""
        for name, text in files.items():
            target = self.path / name
            if text is None:
                git(self.path, "rm", "-q", name)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            git(self.path, "add", name)
        git(self.path, "commit", "-q", "-m", message)


def notebook_text(*sources: str) -> str:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return nbformat.writes(nb)


@pytest.fixture
def materials_repo(tmp_path: Path) -> MaterialsRepo:
    return MaterialsRepo.create(tmp_path / "materials-upstream", {
        "nb/intro.ipynb": notebook_text("x = 1\nprint(x)"),
        "exercises.py": "line 1\nline 2\nline 3\n",
        "README.md": "# Workshop materials\n",
    }, "First materials")
