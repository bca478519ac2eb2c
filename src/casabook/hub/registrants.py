"""A workshop's registration list, read from the organisers' export: who holds a registered place.

Three forms are read, told apart by their content:

- Indico's JSON: the HTTP export API's /export/event/<id>/registrants.json (the list under
  results.registrants) or the REST API's /api/events/<id>/registrants (under registrants); each
  registrant's address is personal_data.email.
- Indico's CSV export of the registrants page: a header row (ID, Name, First Name, Last Name,
  Email Address, Affiliation, ... as the form's fields are titled), one registrant a row.
- A plain list: one e-mail address (or other identity) a line; '#' starts a comment.

Each registrant becomes the value the hub matches a login against (the identity provider's claim
the facility names: e-mail addresses compared in lower case). A mapping file (CSV or plain
"address,username" lines) turns each address into a hub user name instead, where the identity
provider sends no e-mail. Unreadable rows, duplicates and registrants without the matching field
are returned as problems with their row (the line of a CSV or plain file, the position in the
JSON list), never dropped in silence.

Like casabook.hub.caps, which reads the list on the hub, this module imports nothing from casabook
(`casabook hub render` inlines its source into the Helm chart's hub.extraConfig).
"""

import csv
import hashlib
import io
import json
import os
import re

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Indico's registrants page: the e-mail field is titled "Email Address" unless the organisers renamed it.
EMAIL_HEADERS = ("email address", "email", "e-mail", "e-mail address", "mail")
# Registrations an Indico CSV lists that hold no place (its "Registration state" column).
NOT_HOLDING_A_PLACE = ("withdrawn", "rejected", "pending", "unpaid")


class RegistrantList:
    """The registrants of one file: each identity's row, and every problem found, by row."""

    def __init__(self, path, form):
        self.path = path
        self.form = form  # "indico-json", "indico-csv", "plain"
        self.rows = {}  # identity -> row where it was first listed
        self.problems = []  # (row, message)
        self.duplicate_rows = set()  # of the problems' rows, those repeating an identity (counted once)

    def add(self, identity, row):
        if identity in self.rows:
            self.problems.append((row, f"{identity!r} is listed again (first at row {self.rows[identity]}); "
                                       "counted once"))
            self.duplicate_rows.add(row)
            return
        self.rows[identity] = row

    @property
    def identities(self):
        return set(self.rows)

    def __len__(self):
        return len(self.rows)


def normalise(value, claim="email"):
    """The form a registrant's identity is compared in: e-mail addresses in lower case."""
    value = str(value).strip()
    return value.lower() if claim == "email" or EMAIL.match(value) else value


def pseudonym(identity):
    """How the hub keeps a registrant's identity in its state files: a digest, not the address."""
    return hashlib.sha256(f"casabook-registrant:{identity}".encode()).hexdigest()[:32]


def read_registrants(path, claim="email", mapping=None):
    """The registrants listed in `path`, matched by `claim`; `mapping` (address -> user name, from
    read_mapping) turns each address into a hub user name. Raises OSError or ValueError when the
    file cannot be read at all."""
    with open(path, encoding="utf-8-sig") as stream:
        text = stream.read()
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        found = _from_indico_json(path, text, claim)
    elif _looks_like_csv(text):
        found = _from_indico_csv(path, text, claim)
    else:
        found = _from_plain(path, text, claim)
    if mapping is not None:
        found = _mapped(found, mapping)
    return found


def read_mapping(path):
    """Organisers' mapping of registrants' addresses to hub user names: 'address,username' a line
    (a header line and '#' comments are skipped). Returns (mapping, problems)."""
    mapping, problems = {}, []
    with open(path, encoding="utf-8-sig") as stream:
        for number, line in enumerate(stream, start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = [part.strip() for part in line.split(",")]
            if len(parts) != 2 or not all(parts):
                problems.append((number, "expected 'address,username'"))
                continue
            # JupyterHub's user names are in lower case (Authenticator.normalize_username).
            address, username = normalise(parts[0]), parts[1].lower()
            if number == 1 and not EMAIL.match(address):
                continue  # a header line
            if address in mapping:
                problems.append((number, f"{address!r} is mapped twice"))
                continue
            mapping[address] = username
    return mapping, problems


def _mapped(found, mapping):
    mapped = RegistrantList(found.path, found.form)
    mapped.problems, mapped.duplicate_rows = list(found.problems), set(found.duplicate_rows)
    for identity, row in sorted(found.rows.items(), key=lambda item: item[1]):
        if identity not in mapping:
            mapped.problems.append((row, f"{identity!r} is not in the mapping file: no hub user name for them"))
            continue
        mapped.add(mapping[identity], row)
    return mapped


def _looks_like_csv(text):
    first = next((line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")
    return ("," in first or ";" in first or "\t" in first) and not EMAIL.match(first.strip())


def _check(found, row, value, claim, what):
    value = normalise(value, claim) if value not in (None, "") else ""
    if not value:
        found.problems.append((row, f"{what} has no {claim!r}"))
    elif claim == "email" and not EMAIL.match(value):
        found.problems.append((row, f"{what}: {value!r} is not an e-mail address"))
    else:
        found.add(value, row)


def _from_indico_json(path, text, claim):
    found = RegistrantList(path, "indico-json")
    data = json.loads(text)
    entries = data
    if isinstance(data, dict):
        results = data.get("results", data)
        if isinstance(results, list):  # some exports wrap each event's answer in a list
            results = results[0] if len(results) == 1 and isinstance(results[0], dict) else {}
        entries = results.get("registrants") if isinstance(results, dict) else None
    if not isinstance(entries, list):
        raise ValueError("expected Indico's registrants export: a 'registrants' list (under 'results')")
    for row, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            found.problems.append((row, "registrant is not a JSON object"))
            continue
        personal = entry.get("personal_data") if isinstance(entry.get("personal_data"), dict) else entry
        value = personal.get(claim, entry.get(claim))
        label = f"registrant {entry['registrant_id']}" if entry.get("registrant_id") else "registrant"
        _check(found, row, value, claim, label)
    return found


def _from_indico_csv(path, text, claim):
    found = RegistrantList(path, "indico-csv")
    header_line = text.splitlines()[0]
    # Indico writes commas; a spreadsheet saved again may use semicolons or tabs.
    delimiter = max(",;\t", key=header_line.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [cell.strip() for cell in next(reader, [])]
    lowered = [cell.lower() for cell in header]
    wanted = EMAIL_HEADERS if claim == "email" else (claim.lower(),)
    column = next((lowered.index(name) for name in wanted if name in lowered), None)
    if column is None:
        raise ValueError(f"no {'e-mail' if claim == 'email' else repr(claim)} column in the header "
                         f"(columns: {', '.join(header)}); expected one of: {', '.join(wanted)}")
    state = lowered.index("registration state") if "registration state" in lowered else None
    for cells in reader:
        row = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            found.problems.append((row, f"{len(cells)} cells where the header has {len(header)}: unreadable"))
            continue
        if state is not None and cells[state].strip().lower() in NOT_HOLDING_A_PLACE:
            found.problems.append((row, f"registration state {cells[state].strip()!r}: holds no place"))
            continue
        _check(found, row, cells[column], claim, "row")
    return found


def _from_plain(path, text, claim):
    found = RegistrantList(path, "plain")
    for row, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if len(line.split()) != 1:
            found.problems.append((row, f"{line!r}: expected one address a line"))
            continue
        _check(found, row, line, claim, "line")
    return found


def modified(path):
    """The file's modification time (None if it is gone): the hub re-reads the list when it changes."""
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
