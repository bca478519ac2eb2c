"""The workshop book: a Jupyter Book (1.x) with a page per track and one launch hub per track.

`build_book` is the entry point; `casabook book` and `casabook up` call it.
"""

from casabook.book.build import EXECUTE_MODES, build_book
from casabook.book.workdir import BookBuildError

__all__ = ["EXECUTE_MODES", "BookBuildError", "build_book"]
