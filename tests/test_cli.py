"""The command line's conventions: help with examples and exit codes, global options after the
command, JSON wherever a table is printed, and the JSON Schema of the track and facility files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jsonschema
import nbformat
import pytest
from casabook.testing.remotes import published_workshop
from casabook.testing.workshops import REPO, edit_yaml, tiny_notebook

from casabook.cli import build_parser, main
from casabook.data import load_manifest
from casabook.yamlfile import read_yaml

# (command, whether it has a "checks failed" exit 1: what each really returns)
COMMANDS = [
    (["check"], True), (["links"], True), (["data"], False), (["data", "fetch"], False), (["data", "list"], False),
    (["book"], True), (["validate"], True), (["hub"], True), (["hub", "render"], False), (["up"], True),
    (["rehearse"], True), (["prewarm"], True), (["stats"], False), (["admit"], False), (["schema"], False),
    (["facility"], False), (["facility", "snapshot"], False),
]


@pytest.fixture
def workshop(tmp_path: Path) -> Path:
    return published_workshop(tmp_path / "workshop")


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand the parser knows, e.g. ("hub",), ("hub", "render")."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(*prefix, name), *_commands(sub, (*prefix, name))]
    return found


def test_the_table_names_every_command():
    assert sorted(tuple(command) for command, _ in COMMANDS) == sorted(_commands(build_parser()))


@pytest.mark.parametrize("command, fails", COMMANDS, ids=[" ".join(c) for c, _ in COMMANDS])
def test_help_has_description_examples_and_exit_codes(capsys, command: list[str], fails: bool):
    with pytest.raises(SystemExit) as leaving:
        main([*command, "--help"])
    assert leaving.value.code == 0
    out = capsys.readouterr().out
    usage, description = out.split("\n\n")[:2]
    assert usage.startswith(f"usage: casabook {' '.join(command)}")
    assert len(description.split()) >= 8, description
    examples = out.split("examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert examples and all(line.startswith(f"  casabook {command[0]}") for line in examples), examples
    codes = [line.split()[0] for line in out.split("exit codes:\n", 1)[1].strip().splitlines()]
    assert codes == (["0", "1", "2", "130"] if fails else ["0", "2", "130"])
    assert "--root DIR" in out


def test_root_after_the_command(workshop: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no workshop here: only --root can find it
    assert main(["check", "--root", str(workshop)]) == 0
    assert "clean: 0 error(s)" in capsys.readouterr().out
    # After the command it wins over the one before it.
    assert main(["--root", str(tmp_path), "check", "--root", str(workshop)]) == 0
    assert main(["--root", str(workshop), "check"]) == 0
    capsys.readouterr()
    assert main(["hub", "render", "--root", str(workshop), "--facility", "atlas-af"]) == 0
    assert "hub:" in capsys.readouterr().out
    assert main(["links", "--track", "cms", "--root", str(workshop), "--format", "json"]) == 0
    assert {link["track"] for link in json.loads(capsys.readouterr().out)} == {"cms"}


def test_usage_mistake_exits_2(capsys):
    with pytest.raises(SystemExit) as leaving:
        main(["check", "--format", "xml"])
    assert leaving.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_interrupted_command_exits_130(workshop: Path, monkeypatch, capsys):
    # Ctrl-C arrives as KeyboardInterrupt wherever the command is; here, while the checks run.
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("casabook.check.run_checks", interrupted)
    assert main(["check", "--root", str(workshop)]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"


def test_check_json(workshop: Path, capsys):
    assert main(["check", "--root", str(workshop), "--format", "json"]) == 0
    clean = json.loads(capsys.readouterr().out)
    assert (clean["clean"], clean["errors"]) == (True, 0)
    assert {f["check"] for f in clean["findings"]} == {"nbformat", "kernel", "imports", "links", "capacity"}

    nbformat.write(tiny_notebook(kernel="pyhf"), workshop / "notebooks" / "cms" / "01-nanoevents.ipynb")
    assert main(["check", "--root", str(workshop), "--format", "json"]) == 1
    dirty = json.loads(capsys.readouterr().out)
    assert (dirty["clean"], dirty["errors"]) == (False, 1)
    assert [(f["check"], f["subject"]) for f in dirty["findings"] if f["status"] == "error"] == [
        ("kernel", "notebooks/cms/01-nanoevents.ipynb")]


def test_data_list_json(capsys):
    assert main(["data", "list", "--format", "json"]) == 0
    files = json.loads(capsys.readouterr().out)
    manifest = load_manifest()
    assert [f["name"] for f in files] == [item.name for item in manifest.files]
    assert files[0]["sha256"] == manifest.files[0].sha256 and files[0]["contents"]["events"] >= 0


def _described(schema: dict, where: str = "") -> list[str]:
    """Every property of the schema (nested ones too) that has no description."""
    missing = [f"{where}{key}" for key, value in schema.get("properties", {}).items() if "description" not in value]
    for name, definition in schema.get("$defs", {}).items():
        missing += _described(definition, f"{name}.")
    return missing


def test_schema_accepts_the_repository_files_and_refuses_mistakes(tmp_path: Path, capsys):
    assert main(["schema", "--output", str(tmp_path)]) == 0
    written = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in written) == ["facility.schema.json", "track.schema.json"]
    for kind, folder in (("track", "tracks"), ("facility", "hub-config")):
        schema = json.loads((tmp_path / f"{kind}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        assert _described(schema) == []
        assert "name" not in schema["properties"]  # the file name is the name
        validator = jsonschema.Draft202012Validator(schema)
        files = sorted((REPO / folder).glob("*.yml"))
        assert files
        for path in files:
            data = read_yaml(path).data
            assert list(validator.iter_errors(data)) == [], path
            wrong = {**data, "colour": "blue"}
            assert [e.validator for e in validator.iter_errors(wrong)] == ["additionalProperties"], path


def test_schema_start_pattern_takes_what_the_model_takes(tmp_path: Path):
    main(["schema", "--output", str(tmp_path)])
    track = json.loads((tmp_path / "track.schema.json").read_text())
    session = jsonschema.Draft202012Validator(track["$defs"]["Session"]["properties"]["start"])
    assert [session.is_valid(t) for t in ("9:00", "09:00", "23:59", "24:00", "9.30", "900")] == [
        True, True, True, False, False, False]


def test_schema_default_folder(workshop: Path, capsys):
    assert main(["schema", "--root", str(workshop)]) == 0
    assert sorted(p.name for p in (workshop / ".casabook" / "schema").iterdir()) == [
        "facility.schema.json", "track.schema.json"]


def test_track_with_unquoted_time_passes_check(workshop: Path, capsys):
    edit_yaml(workshop / "tracks" / "cms.yml", lambda d: None)  # written back by PyYAML, times quoted
    path = workshop / "tracks" / "cms.yml"
    path.write_text(path.read_text().replace("start: '13:00'", "start: 9:00"))
    assert "start: 9:00" in path.read_text()
    assert main(["check", "--root", str(workshop)]) == 0
