"""The loader: the real files load, and each malformed input stops with file, key and exit code 2."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from casabook.testing.remotes import published_workshop
from casabook.testing.workshops import REPO, edit_yaml, make_workshop, tiny_notebook

import nbformat
from casabook.cli import main
from casabook.errors import CasabookError
from casabook.model import find_root, load_workshop


@pytest.fixture
def workshop(tmp_path: Path) -> Path:
    return make_workshop(tmp_path / "workshop", commit=False)


def test_repository_loads_three_tracks_on_their_facilities():
    workshop = load_workshop(REPO)
    assert {name: track.facility for name, track in workshop.tracks.items()} == {
        "atlas": "atlas-af", "cms": "coffea-casa-cms", "opendata": "coffea-opendata"}
    assert set(workshop.facilities) == {"local", "coffea-opendata", "coffea-casa-cms", "atlas-af"}
    local = workshop.facilities["local"]
    assert local.hub.bind_ip == "127.0.0.1" and local.is_local
    assert workshop.facilities["coffea-casa-cms"].dask_scheduler == "tls://localhost:8786"
    assert workshop.facilities["coffea-opendata"].authenticator.kind == "cilogon"


def test_every_listed_notebook_belongs_to_exactly_one_track():
    workshop = load_workshop(REPO)
    paths = [entry.path for track in workshop.tracks.values() for entry in track.notebooks]
    assert len(paths) == len(set(paths)) >= 9
    assert all(sum(track.notebook(path) is not None for track in workshop.tracks.values()) == 1 for path in paths)


def test_session_times_are_zone_aware(workshop: Path):
    session = load_workshop(workshop).tracks["cms"].schedule[0]
    assert session.starts_at.utcoffset() == dt.timedelta(hours=-6)  # Chicago in February
    assert session.ends_at - session.starts_at == dt.timedelta(minutes=session.minutes)


def test_session_environment_carries_scheduler_and_absolute_data_root(workshop: Path):
    loaded = load_workshop(workshop)
    env = loaded.facilities["local"].session_environment(loaded.root)
    assert Path(env["CASABOOK_DATA_ROOT"]).is_absolute()
    assert env["DASK_SCHEDULER_ADDRESS"] == ""
    cms = loaded.facilities["coffea-casa-cms"].session_environment(loaded.root)
    assert cms["CASABOOK_DATA_ROOT"].startswith("root://") and cms["DASK_SCHEDULER_ADDRESS"].startswith("tls://")


def test_find_root_walks_up_and_explains_when_there_is_none(workshop: Path, tmp_path: Path):
    nested = workshop / "notebooks" / "cms"
    assert find_root(nested) == workshop.resolve()
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    with pytest.raises(CasabookError, match="tracks/ and hub-config/"):
        find_root(nowhere)


def _set(*keys, value):
    def change(data):
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


def _delete(*keys):
    def change(data):
        target = data
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]
    return change


def _text(old: str, new: str):
    return ("text", old, new)


# (id, file, mutation, the key expected in the message: one line per mistake, a tuple for several)
CASES = [
    ("bad-yaml", "tracks/cms.yml", ("replace", "title: [unclosed\n"), None),
    ("top-level-list", "tracks/cms.yml", ("replace", "- a\n- b\n"), None),
    ("empty-file", "tracks/cms.yml", ("replace", ""), None),
    ("duplicate-key", "tracks/cms.yml", ("append", "title: Again\n"), "title"),
    ("unknown-top-key", "tracks/cms.yml", _set("colour", value="blue"), "colour"),
    ("unknown-nested-key", "tracks/cms.yml", _set("schedule", 0, "room", value="B"), "schedule[0].room"),
    ("name-key-given", "tracks/cms.yml", _set("name", value="other"), "name"),
    ("missing-title", "tracks/cms.yml", _delete("title"), "title"),
    ("cap-wrong-type", "tracks/cms.yml", _set("participant_cap", value="many"), "participant_cap"),
    ("cap-zero", "tracks/cms.yml", _set("participant_cap", value=0), "participant_cap"),
    ("cap-negative", "tracks/cms.yml", _set("participant_cap", value=-5), "participant_cap"),
    ("cap-above-facility", "tracks/cms.yml", _set("participant_cap", value=61), "participant_cap"),
    ("unknown-facility", "tracks/cms.yml", _set("facility", value="nowhere"), "facility"),
    # The renamed entry is missing, and the session still lists the old name: two mistakes, both named.
    ("missing-notebook", "tracks/cms.yml", _set("notebooks", 0, "path", value="notebooks/cms/99-missing.ipynb"),
     ("notebooks[0].path", "schedule[0].notebooks[0]")),
    ("not-a-notebook", "tracks/cms.yml", _set("notebooks", 0, "path", value="notebooks/cms/readme.md"),
     "notebooks[0].path"),
    ("notebook-outside-repo", "tracks/cms.yml", _set("notebooks", 0, "path", value="../elsewhere.ipynb"),
     "notebooks[0].path"),
    ("notebook-minutes-zero", "tracks/cms.yml", _set("notebooks", 1, "minutes", value=0), "notebooks[1].minutes"),
    ("no-notebooks", "tracks/cms.yml", _set("notebooks", value=[]), "notebooks"),
    ("no-organisers", "tracks/cms.yml", _set("organisers", value=[]), "organisers"),
    ("bad-email", "tracks/cms.yml", _set("organisers", 0, "email", value="not-an-address"), "organisers[0].email"),
    ("bad-time-zone", "tracks/cms.yml", _set("schedule", 0, "timezone", value="Mars/Olympus_Mons"),
     "schedule[0].timezone"),
    ("start-not-a-time", "tracks/cms.yml", _text('start: "13:00"', "start: 25:00"), "schedule[0].start"),
    ("start-a-number", "tracks/cms.yml", _text('start: "13:00"', "start: 1300"), "schedule[0].start"),
    ("impossible-date", "tracks/cms.yml", _text("date: 2027-02-16", "date: 2027-02-30"), "schedule[1].date"),
    ("schedule-overflow", "tracks/cms.yml", _set("schedule", 0, "minutes", value=30), "schedule[0].minutes"),
    ("unlisted-session-notebook", "tracks/cms.yml",
     _set("schedule", 0, "notebooks", 0, value="notebooks/atlas/01-physlite-coffea.ipynb"), "schedule[0].notebooks[0]"),
    ("facility-unknown-key", "hub-config/atlas-af.yml", _set("hub", "port", value=8000), "hub.port"),
    ("facility-url-not-http", "hub-config/atlas-af.yml", _set("hub", "url", value="jupyter.af.uchicago.edu"), "hub.url"),
    ("facility-unknown-authenticator", "hub-config/atlas-af.yml", _set("authenticator", "kind", value="ldap"),
     "authenticator.kind"),
    ("facility-oidc-without-issuer", "hub-config/atlas-af.yml", _delete("authenticator", "issuer"), "authenticator"),
    ("facility-cilogon-without-idps", "hub-config/coffea-opendata.yml", _set("authenticator", "allowed_idps", value=[]),
     "authenticator"),
    ("facility-secret-inline", "hub-config/atlas-af.yml",
     _set("authenticator", "client_secret_env", value="s3cr3t-value-XYZ!"), "authenticator.client_secret_env"),
    ("facility-cap-zero", "hub-config/atlas-af.yml", _set("caps", "participants", value=0), "caps.participants"),
    ("facility-kubernetes-without-image", "hub-config/atlas-af.yml", _delete("spawner", "image"), "spawner"),
    ("facility-negative-capacity", "hub-config/atlas-af.yml", _set("resources", "total_cores", value=-1),
     "resources.total_cores"),
    ("facility-bad-env-name", "hub-config/atlas-af.yml", _set("environment", "BAD-NAME", value="x"), "environment"),
    ("facility-packages-as-list", "hub-config/atlas-af.yml", _set("packages", value=["coffea", "uproot"]), "packages"),
    ("facility-missing-kernel", "hub-config/atlas-af.yml", _delete("kernel"), "kernel"),
    ("facility-bad-file-name", "hub-config/Bad_Name.yml", ("copy-from", "hub-config/local.yml"), None),
]


@pytest.mark.parametrize("file, mutation, key", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_malformed_input_exits_2_naming_file_and_key(workshop: Path, capsys, file: str, mutation,
                                                     key: str | tuple[str, ...] | None):
    path = workshop / file
    if callable(mutation):
        edit_yaml(path, mutation)
    elif mutation[0] == "replace":
        path.write_text(mutation[1])
    elif mutation[0] == "append":
        path.write_text(path.read_text() + mutation[1])
    elif mutation[0] == "text":
        original = path.read_text()
        assert mutation[1] in original, "the case no longer matches the file it breaks"
        path.write_text(original.replace(mutation[1], mutation[2], 1))
    elif mutation[0] == "copy-from":
        path.write_text((workshop / mutation[1]).read_text())

    assert main(["--root", str(workshop), "check"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    keys = key if isinstance(key, tuple) else (key,)
    lines = err.strip().splitlines()
    assert len(lines) == len(keys), err
    for line, one in zip(lines, keys):
        assert file in line
        if one is not None:
            assert f" {one}: " in line, err


@pytest.mark.parametrize("case, expected", [
    ("two-tracks-one-notebook", "already belongs to track"),
    ("two-tracks-over-facility-cap", "together, above its cap"),
    ("duplicate-notebook", "listed twice"),
], ids=lambda value: value if isinstance(value, str) and " " not in value else None)
def test_cross_file_mistakes(workshop: Path, capsys, case: str, expected: str):
    cms = workshop / "tracks" / "cms.yml"
    if case == "two-tracks-one-notebook":
        edit_yaml(cms, lambda d: d["notebooks"].append(
            {"path": "notebooks/atlas/01-physlite-coffea.ipynb", "title": "borrowed", "minutes": 5}))
    elif case == "two-tracks-over-facility-cap":
        edit_yaml(workshop / "tracks" / "atlas.yml", _set("facility", value="coffea-casa-cms"))
        edit_yaml(workshop / "tracks" / "atlas.yml", _set("participant_cap", value=31))
    elif case == "duplicate-notebook":
        edit_yaml(cms, lambda d: d["notebooks"].append(dict(d["notebooks"][0])))
    assert main(["--root", str(workshop), "check"]) == 2
    assert expected in capsys.readouterr().err


def test_error_names_the_line(workshop: Path):
    path = workshop / "tracks" / "cms.yml"
    text = path.read_text().replace('start: "13:00"', "start: 25:00", 1)
    path.write_text(text)
    line = next(number for number, content in enumerate(text.splitlines(), 1) if "start: 25:00" in content)
    with pytest.raises(CasabookError) as caught:
        load_workshop(workshop)
    assert caught.value.line == line
    assert f"tracks/cms.yml:{line}: schedule[0].start:" in caught.value.render()


def test_no_tracks_is_a_clear_error(workshop: Path, capsys):
    for path in (workshop / "tracks").glob("*.yml"):
        path.unlink()
    assert main(["--root", str(workshop), "check"]) == 2
    assert "no track files" in capsys.readouterr().err


def test_no_workshop_here(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 2
    assert "tracks/ and hub-config/" in capsys.readouterr().err


def test_unknown_track_on_the_command_line(workshop: Path, capsys):
    assert main(["--root", str(workshop), "links", "--track", "lhcb"]) == 2
    assert "no track 'lhcb'" in capsys.readouterr().err


def test_extra_notebook_is_a_warning_not_an_error(tmp_path: Path, capsys):
    workshop = published_workshop(tmp_path / "workshop")
    nbformat.write(tiny_notebook(), workshop / "notebooks" / "cms" / "99-draft.ipynb")
    assert main(["--root", str(workshop), "check"]) == 0
    assert "not listed in any track" in capsys.readouterr().out


@pytest.mark.parametrize("written, read, hour", [
    ("9:00", "09:00", 9), ('"9:00"', "09:00", 9), ("09:00", "09:00", 9), ('"09:00"', "09:00", 9),
    ("13:30", "13:30", 13), ("0:05", "00:05", 0),
], ids=["unquoted-one-digit-hour", "quoted-one-digit-hour", "unquoted-two-digit-hour", "quoted-two-digit-hour",
        "unquoted-afternoon", "unquoted-midnight"])
def test_start_times_need_no_quotes(workshop: Path, written: str, read: str, hour: int):
    path = workshop / "tracks" / "cms.yml"
    path.write_text(path.read_text().replace('start: "13:00"', f"start: {written}", 1))
    session = load_workshop(workshop).tracks["cms"].schedule[0]
    assert session.start == read
    assert (session.starts_at.hour, session.starts_at.minute) == (hour, int(read[-2:]))


def _line_of(path: Path, text: str) -> int:
    return next(number for number, content in enumerate(path.read_text().splitlines(), 1) if text in content)


def test_three_mistakes_in_one_file_are_all_named(workshop: Path, capsys):
    path = workshop / "tracks" / "cms.yml"
    text = path.read_text().replace('start: "13:00"', "start: 25:00", 1)
    text = text.replace("participant_cap: ", "participant_cap: -", 1).replace("title: ", "colour: blue\ntitle: ", 1)
    path.write_text(text)
    expected = [(_line_of(path, "colour: blue"), "colour", "unknown key"),
                (_line_of(path, "participant_cap: -"), "participant_cap", "greater than 0"),
                (_line_of(path, "start: 25:00"), "schedule[0].start", "24-hour time")]

    with pytest.raises(CasabookError) as caught:
        load_workshop(workshop)
    assert [(m.line, m.key) for m in caught.value.mistakes] == [(line, key) for line, key, _ in expected]

    assert main(["--root", str(workshop), "check"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 3, err
    for line, (number, key, what) in zip(lines, expected):
        assert f"tracks/cms.yml:{number}: {key}: " in line and what in line and "[invalid]" in line, line


def test_mistakes_in_several_files_are_reported_together(workshop: Path, capsys):
    edit_yaml(workshop / "hub-config" / "atlas-af.yml", _set("hub", "port", value=8000))
    edit_yaml(workshop / "tracks" / "opendata.yml", _set("notebooks", 0, "minutes", value=0))
    edit_yaml(workshop / "tracks" / "cms.yml", _set("schedule", 0, "minutes", value=30))
    assert main(["--root", str(workshop), "check"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3, lines
    assert [re.match(r"error: (\S+?):\d+: ", line)[1] for line in lines] == [
        "hub-config/atlas-af.yml", "tracks/cms.yml", "tracks/opendata.yml"]
    assert "hub.port" in lines[0] and "schedule[0].minutes" in lines[1] and "notebooks[0].minutes" in lines[2]


def test_every_duplicate_key_is_named(workshop: Path):
    path = workshop / "tracks" / "cms.yml"
    path.write_text(path.read_text() + "title: Again\nsummary: Again\n")
    with pytest.raises(CasabookError) as caught:
        load_workshop(workshop)
    assert [(m.code, m.key) for m in caught.value.mistakes] == [("duplicate-key", "title"), ("duplicate-key", "summary")]
    total = len(path.read_text().splitlines())
    assert [m.line for m in caught.value.mistakes] == [total - 1, total]
