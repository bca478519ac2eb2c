"""Real git repositories of workshop materials, as nbgitpuller pulls them over file://."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat

from casabook.links import Source, launch_url
from casabook.testing.workshops import git


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
    def create(cls, path: Path, files: dict[str, str | None], message: str = "Workshop materials") -> MaterialsRepo:
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
    """A notebook of code cells, as a file's text."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return nbformat.writes(nb)
