"""`casabook validate --hub`: the notebooks run in a real session on the embedded hub (a real JupyterHub,
a real single-user server, nbgitpuller pulling a real git repository over file://).

One hub for the module, at its participant cap (1 place, taken by alice): the validation user
gets in all the same. Its tracks are the repository's three, cut to their first notebook (the
time of a test; the benchmark runs them all), and a `probes` track whose notebooks raise and hang.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import httpx
import nbformat
import pytest

from casabook import cli
from casabook.hub.local import free_port
from casabook.hub.validator import VALIDATOR_TOKEN_ENV, VALIDATOR_USER, validator_scopes
from casabook.testing.hub import LocalHub, LoginRefused
from casabook.testing.workshops import copy_workshop, edit_yaml, git

pytestmark = pytest.mark.hub

TRACKS = ("opendata", "cms", "atlas")
PARAMETERS = ('data_root = ""\ndask_scheduler_address = ""\noutput_dir = "output"')


def _probe(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    parameters = nbformat.v4.new_code_cell(PARAMETERS)
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# A probe"), parameters, *map(nbformat.v4.new_code_cell, sources)]
    return nb


def _first_notebook_only(data: dict) -> None:
    first = data["notebooks"][0]["path"]
    data["notebooks"] = data["notebooks"][:1]
    data["schedule"] = [{**data["schedule"][0], "notebooks": [first]}]


def _probes_track(root: Path) -> None:
    folder = root / "notebooks" / "probes"
    folder.mkdir(parents=True)
    nbformat.write(_probe("x = 1", "raise ValueError('the probe raises')"), folder / "raises.ipynb")
    nbformat.write(_probe("import time", "time.sleep(600)"), folder / "hangs.ipynb")
    nbformat.write(_probe("x = 1"), folder / "unpulled.ipynb")
    track = (root / "tracks" / "opendata.yml").read_text()
    (root / "tracks" / "probes.yml").write_text(track)

    def probes(data: dict) -> None:
        data["title"] = "Probes"
        data["participant_cap"] = 1
        data["notebooks"] = [{"path": f"notebooks/probes/{name}.ipynb", "title": name, "minutes": 5}
                             for name in ("raises", "hangs")]
        data["schedule"] = [{**data["schedule"][0], "notebooks": [n["path"] for n in data["notebooks"]]}]

    edit_yaml(root / "tracks" / "probes.yml", probes)
    # A track whose launch link names a branch the materials do not have.
    (root / "tracks" / "unpulled.yml").write_text(track)

    def unpulled(data: dict) -> None:
        data["title"] = "Unpulled"
        data["participant_cap"] = 1
        data["materials"] = {"targetpath": "unpulled", "branch": "no-such-branch"}
        data["notebooks"] = [{"path": "notebooks/probes/unpulled.ipynb", "title": "unpulled", "minutes": 5}]
        data["schedule"] = [{**data["schedule"][0], "notebooks": ["notebooks/probes/unpulled.ipynb"]}]

    edit_yaml(root / "tracks" / "unpulled.yml", unpulled)


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_workshop(tmp_path_factory.mktemp("workshop"))
    for name in TRACKS:
        edit_yaml(root / "tracks" / f"{name}.yml", _first_notebook_only)
    _probes_track(root)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "The first notebook of each track, and the probes")
    return root


@pytest.fixture(scope="module")
def service_token() -> str:
    return secrets.token_hex(24)


@pytest.fixture(scope="module")
def hub(workshop: Path, service_token: str, tmp_path_factory: pytest.TempPathFactory):
    stack = LocalHub(root=workshop, state_dir=tmp_path_factory.mktemp("hub-state"), participants=1,
                     extra_env={VALIDATOR_TOKEN_ENV: service_token})
    stack.start()
    try:
        stack.login("alice")  # the one place
        assert stack.api("POST", "users/alice/server").status_code in (201, 202)
        stack.wait_ready("alice")
        yield stack
    finally:
        stack.stop()


def _home(hub: LocalHub, name: str) -> dict[str, float]:
    home = hub.state_dir / "homes" / name
    return {str(p.relative_to(home)): p.stat().st_mtime for p in home.rglob("*")}


def _validate(workshop: Path, hub_url: str, *args: str) -> int:
    return cli.main(["--root", str(workshop), "validate", "--hub", hub_url, *args])


def _report(workshop: Path) -> dict:
    return json.loads((workshop / "build" / "validate" / "report.json").read_text())


def _column(report: dict, hub: LocalHub) -> list[dict]:
    column = f"local @ hub {hub.hub_url.removeprefix('http://')}"
    assert column in report["facilities"]
    return [run for run in report["runs"] if run["facility"] == column]


def _validator(hub: LocalHub) -> dict:
    response = hub.api("GET", f"users/{VALIDATOR_USER}")
    assert response.status_code == 200, response.text
    return response.json()


def test_three_tracks_run_in_a_hub_session_at_its_cap(hub: LocalHub, workshop: Path, service_token: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LoginRefused) as refused:
        hub.login("bob")  # the hub is at its cap
    assert refused.value.status == 403
    before = hub.cap_status()["admitted"]
    alice_home = _home(hub, "alice")
    monkeypatch.setenv(VALIDATOR_TOKEN_ENV, service_token)

    code = _validate(workshop, hub.hub_url, *(arg for name in TRACKS for arg in ("--track", name)))

    runs = _column(_report(workshop), hub)
    assert code == 0, [run["failures"] for run in runs]
    assert sorted(run["track"] for run in runs) == sorted(TRACKS)
    assert {run["status"] for run in runs} == {"passed"}
    for run in runs:
        executed = nbformat.read(workshop / "build" / "validate" / run["executed_notebook"], as_version=4)
        code_cells = [cell for cell in executed.cells if cell.cell_type == "code"]
        assert all(cell.execution_count for cell in code_cells), run["notebook"]
        # Run in the session: the injected parameters are the facility's, as its sessions see them.
        injected = next(c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
        assert "output_dir = \"output\"" in injected.source
    assert "local @ hub" in (workshop / "build" / "validate" / "report.html").read_text()
    # Every message went on its own channel (the server logs, as a warning, any that does not say).
    assert "No channel specified" not in hub.log_path.read_text()
    # The validation user took no place, and its server is stopped after.
    assert hub.cap_status()["admitted"] == before == ["alice"]
    assert not _validator(hub)["servers"]
    assert _home(hub, "alice") == alice_home
    # The materials came through the launch link: nbgitpuller's clone in the validation user's home.
    clone = hub.state_dir / "homes" / VALIDATOR_USER / "casabook"
    assert (clone / ".git").is_dir() and (clone / "notebooks" / "cms" / "01-nanoevents.ipynb").is_file()


def test_a_raising_notebook_fails_with_its_cell_and_a_hanging_one_is_stopped(
        hub: LocalHub, workshop: Path, service_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VALIDATOR_TOKEN_ENV, service_token)
    began = time.monotonic()
    code = _validate(workshop, hub.hub_url, "--track", "probes", "--notebook-timeout", "20", "--keep")
    elapsed = time.monotonic() - began
    try:
        assert code == 1
        runs = {run["notebook"]: run for run in _column(_report(workshop), hub)}
        raised = runs["notebooks/probes/raises.ipynb"]
        assert raised["status"] == "failed"
        assert raised["failure"]["kind"] == "error"
        assert raised["failure"]["cell"] == {"index": 3, "first_line": "raise ValueError('the probe raises')"}
        assert "the probe raises" in raised["failure"]["message"]
        hung = runs["notebooks/probes/hangs.ipynb"]
        assert hung["failure"]["kind"] == "notebook-timeout"
        assert hung["failure"]["cell"]["first_line"] == "time.sleep(600)"
        assert elapsed < 600  # stopped at the limit, not at the end of the sleep
        # --keep: the server runs on, and the hung notebook's kernel is gone from it.
        server = _validator(hub)["servers"][""]
        assert server["ready"]
        kernels = httpx.get(f"{hub.hub_url}/user/{VALIDATOR_USER}/api/kernels",
                            headers={"Authorization": f"token {hub.api_token}"}, timeout=30)
        assert kernels.status_code == 200, kernels.text
        assert kernels.json() == []
    finally:
        hub.api("DELETE", f"users/{VALIDATOR_USER}/server")


def test_a_launch_link_that_does_not_pull_fails_its_notebooks(hub: LocalHub, workshop: Path, service_token: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VALIDATOR_TOKEN_ENV, service_token)
    assert _validate(workshop, hub.hub_url, "--track", "unpulled") == 1
    (run,) = [run for run in _column(_report(workshop), hub) if run["track"] == "unpulled"]
    assert run["failure"]["kind"] == "pull" and "no-such-branch" in run["failure"]["message"]
    assert run["executed_notebook"] is None
    assert not _validator(hub)["servers"]


def _organiser_token(hub: LocalHub, scopes: list[str], expires_in: int | None = None) -> str:
    """What an organiser gets from the hub's token page: a token of their own holding only `scopes`."""
    body: dict[str, object] = {"note": "casabook validate --hub", "scopes": scopes}
    if expires_in:
        body["expires_in"] = expires_in
    response = hub.api("POST", "users/organiser/tokens", json=body)
    assert response.status_code == 201, response.text
    return response.json()["token"]


@pytest.mark.parametrize("case", ["wrong-url", "not-a-hub", "expired-token", "missing-scope", "no-token"])
def test_mistakes_give_one_line(case: str, hub: LocalHub, workshop: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    url, expected = hub.hub_url, ""
    if case == "wrong-url":
        url, expected = f"http://127.0.0.1:{free_port()}", "no hub answers"
        monkeypatch.setenv(VALIDATOR_TOKEN_ENV, "anything")
    elif case == "not-a-hub":
        url, expected = f"{hub.hub_url}/nothing-here", "not as JupyterHub does"
        monkeypatch.setenv(VALIDATOR_TOKEN_ENV, "anything")
    elif case == "expired-token":
        monkeypatch.setenv(VALIDATOR_TOKEN_ENV, _organiser_token(hub, validator_scopes(), expires_in=1))
        time.sleep(2.5)
        expected = "does not accept the token"
    elif case == "missing-scope":
        monkeypatch.setenv(VALIDATOR_TOKEN_ENV, _organiser_token(hub, validator_scopes()[:1]))
        expected = f"lacks the scope access:servers!user={VALIDATOR_USER}"
    else:
        monkeypatch.delenv(VALIDATOR_TOKEN_ENV, raising=False)
        expected = f"needs a token in ${VALIDATOR_TOKEN_ENV}"
    capsys.readouterr()

    assert _validate(workshop, url, "--track", "opendata") == 2

    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert expected in err and "Traceback" not in err
    assert not _validator(hub)["servers"]


def test_an_organiser_token_from_the_token_page_works(hub: LocalHub, workshop: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VALIDATOR_TOKEN_ENV, _organiser_token(hub, validator_scopes(), expires_in=600))
    assert _validate(workshop, hub.hub_url, "--track", "opendata") == 0
    assert not _validator(hub)["servers"]
