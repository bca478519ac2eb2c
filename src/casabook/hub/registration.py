"""Where a facility's registration lists are (the facility's own, and each of its tracks'; outside
the repository: they hold personal data), read into casabook.hub.registrants' RegistrantLists,
their row problems as CasabookErrors."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casabook.errors import CasabookError, collect
from casabook.hub.registrants import RegistrantList, read_mapping, read_registrants
from casabook.model import Facility, Track


@dataclass
class Lists:
    """A facility's registrants: its own list, and its tracks' own."""

    facility: RegistrantList | None = None
    tracks: dict[str, RegistrantList] = field(default_factory=dict)

    @property
    def each(self) -> list[RegistrantList]:
        return [*([self.facility] if self.facility else []), *self.tracks.values()]

    @property
    def identities(self) -> set[str]:
        return set().union(*(found.identities for found in self.each))

    def __len__(self) -> int:
        return len(self.identities)


@dataclass(frozen=True)
class Paths:
    facility: Path | None
    tracks: dict[str, Path]
    mapping: Path | None


def private_file(name: str | None, root: Path, environ: Mapping[str, str], *, file: str, key: str) -> Path | None:
    """The file named by environment variable `name`, which must exist outside the repository;
    None where no variable is named."""
    if not name:
        return None
    value = environ.get(name, "")
    where = {"file": file, "key": key}
    if not value:
        raise CasabookError("registration-unset", f"environment variable {name} is not set: it must hold the path "
                            "of the organisers' file (kept outside the repository: it holds personal data)", **where)
    path = Path(value).expanduser().resolve()
    if path.is_relative_to(root.resolve()):
        raise CasabookError("registration-in-repository", f"${name} is {value}, inside the repository: the "
                            "registration list holds personal data and must live outside it", **where)
    if not path.is_file():
        raise CasabookError("registration-unreadable", f"${name} names {path}, which is not a file", **where)
    return path


def paths(facility: Facility, tracks: Iterable[Track], root: Path, environ: Mapping[str, str]) -> Paths | None:
    """Every list the facility's hub reads (None where the facility has no registration)."""
    registration = facility.registration
    if registration is None:
        return None
    own = f"hub-config/{facility.name}.yml"
    listed = {track.name: private_file(track.registration_env, root, environ, file=f"tracks/{track.name}.yml",
                                       key="registration_env")
              for track in tracks if track.facility == facility.name and track.registration_env}
    found = Paths(private_file(registration.file_env, root, environ, file=own, key="registration.file_env"),
                  {name: path for name, path in listed.items() if path is not None},
                  private_file(registration.mapping_env, root, environ, file=own, key="registration.mapping_env"))
    if found.facility is None and not found.tracks:
        raise CasabookError("registration-unset", "no registration list: name one with registration.file_env, or "
                            "with registration_env in a track on this facility", file=own, key="registration")
    return found


def read(facility: Facility, root: Path, environ: Mapping[str, str] = os.environ,
         tracks: Iterable[Track] = ()) -> Lists | None:
    """The facility's registrants (None where it has no registration), with their row problems."""
    where = paths(facility, tracks, root, environ)
    if where is None:
        return None
    assert facility.registration is not None
    claim = facility.registration.match_claim
    mapping = None
    if where.mapping is not None:
        mapping, problems = _readable(where.mapping, read_mapping)
        if problems:
            raise collect([CasabookError("mapping-row", message, file=where.mapping, line=row)
                           for row, message in problems])
    return Lists(_readable(where.facility, lambda p: read_registrants(p, claim, mapping)) if where.facility else None,
                 {name: _readable(path, lambda p: read_registrants(p, claim, mapping))
                  for name, path in where.tracks.items()})


def _readable(path: Path, reader: Callable[[Path], Any]) -> Any:  # noqa: ANN401 (a list or a mapping)
    try:
        return reader(path)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CasabookError("registration-unreadable", f"cannot read {path}: {error}", file=path) from None


def row_problems(found: RegistrantList) -> list[CasabookError]:
    """Each row the list could not count, as an error naming the file and the row."""
    return [CasabookError("registrant-row", message, file=found.path, line=row) for row, message in found.problems]
