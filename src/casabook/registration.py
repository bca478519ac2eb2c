"""Where a facility's registration list is (outside the repository: it holds personal data), read
into casabook.hub.registrants' RegistrantList, its row problems as CasabookErrors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from casabook.errors import CasabookError, collect
from casabook.hub.registrants import RegistrantList, read_mapping, read_registrants
from casabook.model import Facility


def _where(facility: Facility, key: str) -> dict[str, str]:
    return {"file": f"hub-config/{facility.name}.yml", "key": f"registration.{key}"}


def private_path(facility: Facility, root: Path, environ: Mapping[str, str], key: str) -> Path | None:
    """The file named by the environment variable at registration.<key>, which must exist outside
    the repository; None where the facility names no such variable."""
    registration = facility.registration
    name = getattr(registration, key) if registration else None
    if not name:
        return None
    value = environ.get(name, "")
    where = _where(facility, key)
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


def read(facility: Facility, root: Path, environ: Mapping[str, str] = os.environ) -> RegistrantList | None:
    """The facility's registrants (None where it has no registration), with their row problems."""
    path = private_path(facility, root, environ, "file_env")
    if path is None:
        return None
    assert facility.registration is not None
    mapping = None
    mapping_file = private_path(facility, root, environ, "mapping_env")
    if mapping_file is not None:
        mapping, problems = _readable(facility, "mapping_env", mapping_file, read_mapping)
        if problems:
            raise collect([CasabookError("mapping-row", message, file=mapping_file, line=row) for row, message in problems])
    return _readable(facility, "file_env", path, lambda p: read_registrants(p, facility.registration.match_claim, mapping))


def _readable(facility: Facility, key: str, path: Path, reader):  # noqa: ANN001, ANN202 (one reader or the other)
    try:
        return reader(path)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CasabookError("registration-unreadable", f"cannot read {path}: {error}", **_where(facility, key)) from None


def row_problems(found: RegistrantList) -> list[CasabookError]:
    """Each row the list could not count, as an error naming the file and the row."""
    return [CasabookError("registrant-row", message, file=found.path, line=row) for row, message in found.problems]
