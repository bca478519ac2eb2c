"""Where the book is built, and how a failed build is reported.

Sphinx keeps its environment, doctrees and HTML in book/_build/.work between runs (that is what
makes rebuilds incremental); the published book is a separate folder (book/_build/html by default).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from casabook.errors import CasabookError

BOOK_DIR = "book"


class BookBuildError(CasabookError):
    """The book did not build: a page has a problem (not a mistake in the command line)."""

    exit_code = 1


@dataclass(frozen=True)
class BookPaths:
    root: Path

    @property
    def book(self) -> Path:
        return self.root / BOOK_DIR

    @property
    def config(self) -> Path:
        return self.book / "_config.yml"

    @property
    def work(self) -> Path:
        return self.book / "_build" / ".work"

    @property
    def source(self) -> Path:
        return self.work / "source"

    @property
    def html(self) -> Path:
        return self.work / "html"

    @property
    def doctrees(self) -> Path:
        return self.work / "doctrees"

    @property
    def jupyter_cache(self) -> Path:
        return self.work / "jupyter_cache"

    @property
    def default_output(self) -> Path:
        return self.book / "_build" / "html"


def failure_message(problems: Iterable[str]) -> str:
    problems = list(problems)
    return (f"the book was not built ({len(problems)} problem{'s' if len(problems) != 1 else ''}; "
            "the published book is unchanged):\n  " + "\n  ".join(problems))
