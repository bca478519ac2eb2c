"""The one atomic file writer: a file is replaced whole or not at all.

Every file casabook writes for a person (a fixed notebook, a report, Helm values, a cached result,
a sample file) goes through here, so an interrupted command never leaves half a file behind and a
failed write leaves no temporary file either.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Literal


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def replacing(path: Path, mode: Literal["w", "wb"] = "w", *, private: bool = False) -> Iterator[IO]:
    """Open a temporary file beside `path`; on a clean exit it is synced and renamed onto `path`.

    On any exception (a full disk, Ctrl-C, a checksum that does not match) the temporary file is
    removed and `path` keeps what it had. The new file gets the permissions an ordinary write would
    give it (mkstemp's 0600 would hide a report or a data file from a colleague or a web server);
    ``private`` keeps 0600, for a secret such as an API token.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        if not private:
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def write_text(path: Path, text: str, *, private: bool = False) -> Path:
    """Write `text` to `path` atomically (UTF-8); ``private``: readable by its owner only."""
    with replacing(path, private=private) as stream:
        stream.write(text)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    with replacing(path, "wb") as stream:
        stream.write(data)
    return path


def leftovers(folder: Path, name: str) -> list[Path]:
    """Temporary files a killed writer left for `name` in `folder` (never renamed, so garbage)."""
    return sorted(folder.glob(f".{name}.*.part"))
