"""Typed Track / Facility / Workshop objects, and the one loader.

`load_workshop(root)` reads tracks/*.yml and hub-config/*.yml once; everything else in casabook
takes the objects it returns and never parses YAML again. A workshop with mistakes raises one
error naming every mistake it could find, each with its file, line and key.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from casabook.errors import CasabookError, collect
from casabook.image import Image, layered, read_image_file
from casabook.yamlfile import KeyPath, YamlFile, format_key, read_yaml

TRACKS_DIR = "tracks"
FACILITIES_DIR = "hub-config"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
START_PATTERN = r"^([01]?\d|2[0-3]):([0-5]\d)$"
DOTTED_PATH_PATTERN = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")

def _env_name_only(value: str) -> str:
    if not ENV_NAME_PATTERN.match(value):
        raise ValueError("expected the NAME of an environment variable (letters, digits, _), not a path")
    return value


# A file's path (personal data, a secret) is named by an environment variable, never written here.
EnvName = Annotated[str, AfterValidator(_env_name_only)]
PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


# --- facilities (hub-config/*.yml) ------------------------------------------------------------


class Hub(Strict):
    url: str = Field(description="the hub's public URL, e.g. https://coffea.casa")
    bind_ip: str = Field("127.0.0.1", description="where the proxy listens; loopback unless the facility says otherwise")
    start_timeout_seconds: PositiveInt = Field(600, description="how long a server may take to start under a crowd")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")


class Authenticator(Strict):
    kind: Literal["generic-oidc", "cilogon", "github", "local-oidc"] = Field(
        description="generic-oidc (CMS IAM, ATLAS IAM), cilogon, github, or local-oidc (the embedded identity provider)")
    issuer: str | None = Field(None, description="the OIDC issuer URL (generic-oidc); local-oidc fills it at start")
    client_id: str = Field(description="the OAuth client id registered with the identity provider")
    client_secret_env: str = Field(description="name of the environment variable holding the client secret (never the secret)")
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"],
                              description="OAuth scopes the hub asks the identity provider for")
    username_claim: str = Field("preferred_username", description="the claim that becomes the JupyterHub user name")
    groups_claim: str | None = Field(None, description="the claim listing the user's groups")
    allowed_groups: list[str] = Field(default_factory=list, description="groups whose members may log in")
    admin_groups: list[str] = Field(default_factory=list, description="groups whose members are organisers (admins)")
    allowed_idps: list[str] = Field(default_factory=list, description="CILogon identity providers (entity ids) allowed")
    admin_users: list[str] = Field(default_factory=list, description="organisers: always admitted, never counted against the cap")
    class_name: str | None = Field(None, description="the facility's own Authenticator class, a dotted path to a subclass "
                                   "of the kind's class (e.g. oauthenticator.coffea.CoffeaOAuthenticator); casabook caps it")

    @field_validator("class_name")
    @classmethod
    def _dotted_path(cls, value: str | None) -> str | None:
        if value is not None and not DOTTED_PATH_PATTERN.match(value):
            raise ValueError("expected a dotted path to a class, e.g. oauthenticator.coffea.CoffeaOAuthenticator")
        return value

    @field_validator("client_secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not ENV_NAME_PATTERN.match(value):
            raise ValueError("expected the NAME of an environment variable (letters, digits, _), not a secret")
        return value

    @model_validator(mode="after")
    def _kind_settings(self) -> Authenticator:
        if self.kind == "generic-oidc" and not self.issuer:
            raise ValueError("generic-oidc needs 'issuer' (the identity provider's URL)")
        if self.kind == "cilogon" and not self.allowed_idps:
            raise ValueError("cilogon needs 'allowed_idps' (at least one identity provider)")
        return self


class Caps(Strict):
    participants: PositiveInt = Field(description="distinct participants admitted; organisers are not counted")
    concurrent_servers: PositiveInt = Field(description="servers running at once (JupyterHub active_server_limit)")
    concurrent_spawns: PositiveInt = Field(20, description="servers starting at once (JupyterHub concurrent_spawn_limit)")


class Resources(Strict):
    cores_per_user: PositiveFloat = Field(description="CPU cores each participant's server gets")
    memory_gib_per_user: PositiveFloat = Field(description="memory (GiB) each participant's server gets")
    total_cores: PositiveFloat = Field(description="what the facility can give this workshop, all users together")
    total_memory_gib: PositiveFloat = Field(description="memory (GiB) the facility can give this workshop, all users together")


class Spawner(Strict):
    kind: Literal["local-process", "kubernetes"] = Field(
        description="local-process (servers on this machine) or kubernetes (zero-to-jupyterhub)")
    image: str | None = Field(None, description="the user image (kubernetes)")

    @model_validator(mode="after")
    def _image_for_kubernetes(self) -> Spawner:
        if self.kind == "kubernetes" and not self.image:
            raise ValueError("kubernetes needs 'image' (the user image)")
        return self


class Registration(Strict):
    file_env: EnvName | None = Field(None, description="name of the environment variable holding the path of the "
                                 "registration list (Indico's registrants.json or CSV export, or one e-mail address a "
                                 "line); the file holds personal data, so it lives outside the repository. Tracks on "
                                 "the facility may name lists of their own (registration_env)")
    match_claim: str = Field("email", description="the identity provider's claim a registrant is matched by "
                             "(compared with the list's e-mail addresses)")
    mapping_env: EnvName | None = Field(None, description="name of the environment variable holding the path of a "
                                    "mapping file 'address,username' a line, where the identity provider sends no "
                                    "e-mail: registrants are then matched by hub user name")
    walk_ins: Literal["none", "up-to-cap"] = Field("none", description="who else gets in: none, or anyone up to "
                                                   "the cap once every registrant's place is reserved")


class Facility(Strict):
    name: str = Field("", description="taken from the file name")
    title: str = Field(description="the facility's name as people say it, e.g. Coffea-casa at T2 Nebraska (CMS)")
    hub: Hub = Field(description="where the hub is and how long a server may take to start")
    authenticator: Authenticator = Field(description="how participants log in")
    caps: Caps = Field(description="how many participants and servers the hub admits")
    resources: Resources = Field(description="CPU and memory per participant and in total")
    spawner: Spawner = Field(description="how participants' servers are started")
    kernel: str = Field(description="the kernel name notebooks must declare")
    image_files: list[str] = Field(
        default_factory=list,
        description="the image's environment files in hub-config/, in the order the image applies them: pip list "
                    "--format=json, pip freeze, conda environment.yml, conda list --json, or a casabook facility "
                    "snapshot. Validation builds the facility's environment from them; none: this machine's own")
    packages: dict[str, str] = Field(
        default_factory=dict,
        description="overrides over the image files: distribution -> version spec ('' for any); without image "
                    "files, the packages the image provides")
    not_built: dict[str, str] = Field(
        default_factory=dict,
        description="packages of the image not built for validation here, each with the reason (e.g. heavy, "
                    "and no notebook imports it)")
    python: str = Field("", description="the image's Python version, where its files do not say")
    environment: dict[str, str] = Field(default_factory=dict, description="environment variables a session sees")
    dask_scheduler: str = Field("", description="the Dask scheduler address; empty means a LocalCluster")
    data_root: str = Field(description="where the sample files lie: a folder (relative to the repository) or a root:// URL")
    data_roots: dict[str, str] = Field(default_factory=dict, description="per-dataset roots overriding data_root")
    servicex_endpoint: str = Field("", description="the ServiceX endpoint, where the facility has one")
    registration: Registration | None = Field(None, description="places go to the people on the organisers' "
                                              "registration list (default: to whoever logs in first)")

    _image: Image | None = PrivateAttr(None)

    @property
    def image(self) -> Image:
        """The image's packages: from its files as the loader read them, or from `packages` alone without files."""
        if self._image is not None:
            return self._image
        if self.image_files:
            raise ValueError(f"facility {self.name!r} names image files: load it with load_workshop or load_facility")
        return layered([], [], self.packages, self.not_built, self.python)

    @field_validator("environment")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not ENV_NAME_PATTERN.match(key):
                raise ValueError(f"{key!r} is not an environment variable name")
        return value

    @property
    def is_local(self) -> bool:
        return self.spawner.kind == "local-process"

    def data_root_for(self, root: Path) -> str:
        """The data root as a session sees it: URLs as they are, folders made absolute."""
        if "://" in self.data_root:
            return self.data_root
        return str((root / self.data_root).resolve())

    def session_environment(self, root: Path) -> dict[str, str]:
        """Every variable an attendee's session on this facility sees."""
        env = dict(self.environment)
        env["CASABOOK_FACILITY"] = self.name
        env["CASABOOK_DATA_ROOT"] = self.data_root_for(root)
        env["DASK_SCHEDULER_ADDRESS"] = self.dask_scheduler
        if self.servicex_endpoint:
            env["SERVICEX_ENDPOINT"] = self.servicex_endpoint
        return env


# --- tracks (tracks/*.yml) --------------------------------------------------------------------


class Person(Strict):
    name: str = Field(description="the organiser's name")
    email: str = Field(description="where attendees write to")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError("expected an e-mail address")
        return value


class NotebookEntry(Strict):
    path: str = Field(description="the notebook, relative to the repository")
    title: str = Field(description="the notebook's title on the track's page and in the launch links")
    minutes: PositiveInt = Field(description="time planned for it in a session")

    @field_validator("path")
    @classmethod
    def _ipynb(cls, value: str) -> str:
        if not value.endswith(".ipynb") or value.startswith("/") or ".." in Path(value).parts:
            raise ValueError("expected a relative path to an .ipynb file inside the repository")
        return value


class Session(Strict):
    title: str = Field(description="the session's title")
    date: dt.date = Field(description="the day, YYYY-MM-DD")
    start: str = Field(description="local start time, 24-hour H:MM or HH:MM, e.g. 9:00",
                       json_schema_extra={"pattern": START_PATTERN})
    timezone: str = Field(description="an IANA time zone, e.g. America/Chicago")
    minutes: PositiveInt = Field(description="how long the session lasts")
    notebooks: list[str] = Field(default_factory=list, description="the notebooks taught in it (paths from the track's notebooks)")

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, value: Any) -> str:
        # YAML 1.2 reads 9:00 unquoted as the text "9:00"; both it and "09:00" mean nine o'clock.
        match = re.match(START_PATTERN, value) if isinstance(value, str) else None
        if match is None:
            raise ValueError("expected a 24-hour time H:MM or HH:MM, e.g. 9:00 or 13:30")
        return f"{int(match[1]):02d}:{match[2]}"

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; expected an IANA name such as Europe/Zurich") from None
        return value

    @property
    def starts_at(self) -> dt.datetime:
        hour, minute = map(int, self.start.split(":"))
        return dt.datetime.combine(self.date, dt.time(hour, minute), tzinfo=ZoneInfo(self.timezone))

    @property
    def ends_at(self) -> dt.datetime:
        return self.starts_at + dt.timedelta(minutes=self.minutes)


class Materials(Strict):
    repo: str | None = Field(None, description="git URL attendees pull from (default: this repository's origin; "
                             "for a hub on this machine, this repository itself). SSH forms are published as "
                             "https://; a file:// URL or a folder only works on a hub on this machine")
    branch: str | None = Field(None, description="branch (default: the current branch)")
    targetpath: str | None = Field(None, description="folder in the attendee's home (default: the repository's name)")


class Track(Strict):
    name: str = Field("", description="taken from the file name")
    title: str = Field(description="the track's title")
    summary: str = Field(description="what attendees learn, in a sentence or two")
    audience: str = Field(description="who the track is for")
    facility: str = Field(description="the name of a hub-config/<name>.yml file")
    participant_cap: PositiveInt = Field(description="participants this track admits (within its facility's cap)")
    organisers: list[Person] = Field(min_length=1, description="who runs the track (at least one)")
    prerequisites: list[str] = Field(default_factory=list, description="what attendees should know beforehand")
    notebooks: list[NotebookEntry] = Field(min_length=1, description="the track's notebooks, in teaching order")
    schedule: list[Session] = Field(default_factory=list, description="the sessions and the notebooks each teaches")
    materials: Materials = Field(default_factory=Materials, description="where attendees pull the notebooks from")
    registration_env: EnvName | None = Field(None, description="name of the environment variable holding the path of "
                                         "this track's own registration list (its facility's registration says how "
                                         "it is matched and who else gets in)")
    requirements: list[str] = Field(
        default_factory=list,
        description="PEP 508 requirements every notebook of the track has of its facility's image, e.g. "
                    "mplhep>=0.3.50; casabook check fails where the image does not meet one")

    @field_validator("requirements")
    @classmethod
    def _pep508(cls, value: list[str]) -> list[str]:
        from packaging.requirements import InvalidRequirement, Requirement

        for spec in value:
            try:
                Requirement(spec)
            except InvalidRequirement as error:
                raise ValueError(f"{spec!r} is not a PEP 508 requirement ({error})") from None
        return value

    def notebook(self, path: str) -> NotebookEntry | None:
        return next((entry for entry in self.notebooks if entry.path == path), None)


# --- the workshop -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Workshop:
    root: Path
    tracks: dict[str, Track]
    facilities: dict[str, Facility]
    # The track files as read, so a later check can name the line of the key it is about.
    track_files: dict[str, YamlFile] = field(default_factory=dict, repr=False, compare=False)

    def facility_of(self, track: Track) -> Facility:
        return self.facilities[track.facility]

    def where(self, track: Track, key: KeyPath) -> str:
        """Where a key of a track's file is written, for messages: 'tracks/cms.yml:21: materials.repo'."""
        doc = self.track_files.get(track.name)
        if doc is None:
            return f"{TRACKS_DIR}/{track.name}.yml: {format_key(key)}"
        line = doc.line_of(key)
        return f"{doc.display}{f':{line}' if line else ''}: {format_key(key)}"

    def select_tracks(self, names: list[str] | None) -> list[Track]:
        if not names:
            return list(self.tracks.values())
        unknown = [name for name in names if name not in self.tracks]
        if unknown:
            raise CasabookError("unknown-track", f"no track {unknown[0]!r}; known: {', '.join(self.tracks)}",
                                key="--track")
        return [self.tracks[name] for name in names]

    def facility(self, name: str, *, key: str = "--facility") -> Facility:
        if name not in self.facilities:
            raise CasabookError("unknown-facility",
                                f"no facility {name!r}; known: {', '.join(self.facilities)}", key=key)
        return self.facilities[name]


def find_root(start: Path | None = None) -> Path:
    """The workshop repository: the nearest folder at or above `start` holding tracks/ and hub-config/."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / TRACKS_DIR).is_dir() and (folder / FACILITIES_DIR).is_dir():
            return folder
    raise CasabookError(
        "no-workshop",
        f"no workshop repository at or above {here}: expected folders {TRACKS_DIR}/ and {FACILITIES_DIR}/ (use --root)",
    )


def _explain(error: dict[str, Any], model: type[BaseModel], loc: KeyPath) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        known = ", ".join(owner.model_fields) if owner else ""
        return f"unknown key; expected one of: {known}" if known else "unknown key"
    if kind == "missing":
        return "missing required key"
    message = error["msg"].removeprefix("Value error, ")
    if "input" in error and kind not in ("value_error",) and not isinstance(error["input"], (dict, list)):
        message += f" (got {error['input']!r})"
    return message


def _model_at(model: type[BaseModel], loc: KeyPath) -> type[BaseModel] | None:
    """The model class that holds the key at `loc` (to list its allowed keys)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        annotation = current.model_fields[part].annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                current = candidate
                break
            inner = getattr(candidate, "__args__", ())
            found = next((c for c in inner if isinstance(c, type) and issubclass(c, BaseModel)), None)
            if found:
                current = found
                break
        else:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _parse(model: type[Strict], doc: YamlFile, name: str) -> tuple[Any, list[CasabookError]]:
    """The file as a `model` object (None where it cannot be built), and every mistake found in it."""
    if not isinstance(doc.data, dict):
        return None, [doc.error("not-a-mapping", (),
                                f"expected a mapping of keys at the top of the file, got {type(doc.data).__name__}")]
    mistakes: list[CasabookError] = []
    if not NAME_PATTERN.match(name):
        mistakes.append(doc.error("bad-file-name", (),
                                  "file names must be lower-case letters, digits and dashes (they become names)"))
    if "name" in doc.data:
        mistakes.append(doc.error("name-from-file", ("name",), f"remove this key: the name is the file name ({name!r})"))
    try:
        parsed = model.model_validate({**doc.data, "name": name})
    except ValidationError as error:
        seen: set[KeyPath] = set()
        for problem in error.errors():
            loc = tuple(problem["loc"])
            if loc not in seen:  # a value wrong for every member of a union is one mistake, not one per member
                seen.add(loc)
                mistakes.append(doc.error("invalid", loc, _explain(problem, model, loc)))
        return None, mistakes
    return (None if mistakes else parsed), mistakes


def load_facility(path: Path, root: Path) -> Facility:
    doc = read_yaml(path, str(path.relative_to(root)))
    facility, mistakes = _parse(Facility, doc, path.stem)
    if facility is not None:
        mistakes.extend(read_image(root, facility, doc))
    if mistakes:
        raise collect(mistakes)
    return facility


def read_image(root: Path, facility: Facility, doc: YamlFile) -> list[CasabookError]:
    """Read the facility's image files into `facility.image`; the mistakes found in them."""
    if not facility.image_files:
        return []
    files, mistakes = [], []
    for index, name in enumerate(facility.image_files):
        path = root / FACILITIES_DIR / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            mistakes.append(doc.error("invalid", ("image_files", index), "expected a file inside hub-config/"))
            continue
        if not path.is_file():
            mistakes.append(doc.error("file-missing", ("image_files", index), f"no image file {FACILITIES_DIR}/{name}"))
            continue
        try:
            files.append(read_image_file(path, f"{FACILITIES_DIR}/{name}"))
        except CasabookError as error:  # the file's own mistake, named with its file
            mistakes.append(error)
    if not mistakes:
        facility._image = layered(files, facility.image_files, facility.packages, facility.not_built, facility.python)
    return mistakes


def _yaml_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])


def _read_all(root: Path, folder: str, model: type[Strict],
              mistakes: list[CasabookError]) -> tuple[dict[str, Any], dict[str, YamlFile], set[str]]:
    """Every file of `folder` as `model` objects, its documents, and the names of all its files (valid or not)."""
    parsed: dict[str, Any] = {}
    docs: dict[str, YamlFile] = {}
    names: set[str] = set()
    for path in _yaml_files(root / folder):
        names.add(path.stem)
        try:
            doc = read_yaml(path, str(path.relative_to(root)))
        except CasabookError as error:
            mistakes.append(error)
            continue
        value, found = _parse(model, doc, path.stem)
        mistakes.extend(found)
        if value is not None:
            parsed[path.stem], docs[path.stem] = value, doc
    return parsed, docs, names


def load_workshop(root: Path | None = None) -> Workshop:
    """Read every track and facility file once, check them against each other, and return the workshop.

    Every mistake found is reported in one error: all of each file's, and the cross-file ones the
    valid files allow to be checked.
    """
    root = find_root(root)
    mistakes: list[CasabookError] = []
    facilities, facility_docs, facility_files = _read_all(root, FACILITIES_DIR, Facility, mistakes)
    for name, facility in facilities.items():
        mistakes.extend(read_image(root, facility, facility_docs[name]))
    if not facility_files:  # then every track would name an unknown facility: nothing more to say
        raise CasabookError("no-facilities", f"no facility files (*.yml) in {FACILITIES_DIR}/", file=FACILITIES_DIR)
    tracks, docs, track_files = _read_all(root, TRACKS_DIR, Track, mistakes)
    if not track_files:
        mistakes.append(CasabookError("no-tracks", f"no track files (*.yml) in {TRACKS_DIR}/", file=TRACKS_DIR))

    owner: dict[str, str] = {}
    load: dict[str, int] = {}
    for name, track in tracks.items():
        if track.facility not in facility_files:
            mistakes.append(docs[name].error(
                "unknown-facility", ("facility",),
                f"no facility {track.facility!r}; expected one of: {', '.join(sorted(facility_files))} "
                f"(files in {FACILITIES_DIR}/)"))
        mistakes.extend(_check_notebooks(root, track, docs[name], owner))
        # A facility whose own file has mistakes was reported above; its caps are not known.
        if track.facility in facilities:
            mistakes.extend(_check_cap(track, docs[name], facilities[track.facility]))
            load[track.facility] = load.get(track.facility, 0) + track.participant_cap
    for facility_name, seats in load.items():
        facility = facilities[facility_name]
        if seats > facility.caps.participants:
            sharing = [n for n, t in tracks.items() if t.facility == facility_name]
            if any(tracks[n].participant_cap > facility.caps.participants for n in sharing):
                continue  # already reported for the track that alone is above the cap
            mistakes.append(docs[sharing[-1]].error(
                "cap-above-facility", ("participant_cap",),
                f"tracks {', '.join(sharing)} on facility {facility_name!r} admit {seats} participants "
                f"together, above its cap of {facility.caps.participants} (hub-config/{facility_name}.yml caps.participants)"))
    if mistakes:
        # File by file, top to bottom: the order a person mends them in.
        raise collect(sorted(mistakes, key=lambda mistake: (mistake.file or "", mistake.line or 0)))
    return Workshop(root=root, tracks=tracks, facilities=facilities, track_files=docs)


def _check_cap(track: Track, doc: YamlFile, facility: Facility) -> list[CasabookError]:
    if track.participant_cap > facility.caps.participants:
        return [doc.error("cap-above-facility", ("participant_cap",),
                          f"{track.participant_cap} is above facility {facility.name!r}'s cap of {facility.caps.participants}")]
    return []


def _check_notebooks(root: Path, track: Track, doc: YamlFile, owner: dict[str, str]) -> list[CasabookError]:
    mistakes: list[CasabookError] = []
    listed: set[str] = set()
    for index, entry in enumerate(track.notebooks):
        key = ("notebooks", index, "path")
        if entry.path in listed:
            mistakes.append(doc.error("duplicate-notebook", key, f"{entry.path!r} is listed twice in this track"))
            continue
        if entry.path in owner:
            mistakes.append(doc.error(
                "notebook-in-two-tracks", key,
                f"{entry.path!r} already belongs to track {owner[entry.path]!r}; a notebook belongs to one track"))
        elif not (root / entry.path).is_file():
            mistakes.append(doc.error("notebook-missing", key, f"{entry.path!r} does not exist"))
        listed.add(entry.path)
        owner.setdefault(entry.path, track.name)
    for index, session in enumerate(track.schedule):
        planned = 0
        for position, path in enumerate(session.notebooks):
            entry = track.notebook(path)
            if entry is None:
                mistakes.append(doc.error("unscheduled-notebook", ("schedule", index, "notebooks", position),
                                          f"{path!r} is not listed in this track's notebooks"))
                continue
            planned += entry.minutes
        if planned > session.minutes:
            mistakes.append(doc.error("schedule-overflow", ("schedule", index, "minutes"),
                                      f"session of {session.minutes} minutes holds {planned} minutes of notebooks"))
    return mistakes
