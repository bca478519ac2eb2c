"""The embedded hub for real: JupyterHub, configurable-http-proxy and an OIDC provider on loopback,
attendees logging in through the provider, nbgitpuller pulling real git repositories.

Two stacks per module: one with room for everybody (logins, launches, permissions), one with a cap
of three places (races, restarts). Cap tests do not start servers.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import psutil
import pytest

from casabook.cli import main
from casabook.hub.validator import is_participant
from casabook.testing.hub import LoginRefused
from casabook.testing.workshops import runnable_workshop

pytestmark = pytest.mark.hub
CAP = 3


@pytest.fixture(scope="module")
def hub(hub_factory):
    return hub_factory()


@pytest.fixture(scope="module")
def capped_hub(hub_factory):
    return hub_factory(participants=CAP)


def home_of(stack, name: str) -> Path:
    return stack.state_dir / "homes" / name


def test_oauth_login_end_to_end(hub):
    browser = hub.login("alice")
    page = browser.get("/hub/home")
    assert page.status_code == 200 and "alice" in page.text
    user = hub.api("GET", "users/alice").json()
    assert user["name"] == "alice" and user["admin"] is False
    assert hub.api("GET", "users/organiser").json()["admin"] is True


def test_launch_link_puts_the_materials_in_the_attendees_home(hub, materials_repo):
    browser = hub.login("alice")
    page = hub.launch(browser, materials_repo.launch_url(hub.hub_url, "nb/intro.ipynb"))
    assert page.status_code == 200
    assert urlsplit(str(page.url)).path == "/user/alice/lab/tree/materials/nb/intro.ipynb"
    pulled = home_of(hub, "alice") / "materials"
    assert (pulled / "nb/intro.ipynb").read_text() == (materials_repo.path / "nb/intro.ipynb").read_text()
    assert (pulled / "exercises.py").is_file()


def _family(pid: int) -> list[psutil.Process]:
    return [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]


def test_nothing_listens_beyond_loopback(hub):
    hub.api("POST", "users/organiser/server")
    hub.wait_ready("organiser")
    processes = _family(hub.hub_process.pid) + _family(hub.idp.process.pid)
    listening = [(p.name(), c.laddr) for p in processes for c in p.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN]
    # proxy, proxy API, hub, a server, the identity provider
    assert len({addr.port for _, addr in listening}) >= 5, listening
    assert all(addr.ip == "127.0.0.1" for _, addr in listening), listening
    # Where the hub itself sends an attendee to log in: that identity provider, on this machine.
    login = httpx.get(f"{hub.hub_url}/hub/oauth_login", timeout=30)
    assert login.status_code == 302
    provider = urlsplit(login.headers["location"])
    assert (provider.hostname, provider.port) == ("127.0.0.1", hub.idp.port)
    assert provider.port in {addr.port for _, addr in listening}


def test_materials_update_never_loses_the_attendees_work(hub, materials_repo):
    browser = hub.login("bob")
    link = materials_repo.launch_url(hub.hub_url, "nb/intro.ipynb")
    hub.launch(browser, link)
    pulled = home_of(hub, "bob") / "materials"
    # The attendee edits line 2, deletes a file, and saves a file of their own named notes.md.
    (pulled / "exercises.py").write_text("line 1\nmy answer\nline 3\n")
    (pulled / "README.md").unlink()
    (pulled / "notes.md").write_text("my notes\n")
    # The instructor changes the same line, and adds a notes.md of their own.
    materials_repo.commit({"exercises.py": "line 1\nline 2, corrected\nline 3\n",
                           "notes.md": "instructor notes\n"})

    page = hub.launch(browser, link)

    assert page.status_code == 200
    assert (pulled / "exercises.py").read_text() == "line 1\nmy answer\nline 3\n", "conflict: attendee's lines win"
    assert (pulled / "README.md").read_text() == "# Workshop materials\n", "a deleted file comes back"
    assert (pulled / "notes.md").read_text() == "instructor notes\n"
    kept = [p for p in pulled.glob("notes__*.md")]
    assert len(kept) == 1 and re.fullmatch(r"notes__\d{14}\.md", kept[0].name)
    assert kept[0].read_text() == "my notes\n", "the attendee's clashing file is kept under a new name"


def test_a_participant_cannot_reach_another_participants_server_or_the_cap(hub):
    hub.api("POST", "users/alice/server")
    hub.wait_ready("alice")
    hub.login("bob")
    bob_token = hub.api("POST", "users/bob/tokens", json={"note": "test"}).json()["token"]

    def as_bob(method: str, path: str, **kwargs) -> int:
        return hub.api(method, path, token=bob_token, **kwargs).status_code

    assert as_bob("GET", "users/alice") in (403, 404)
    assert as_bob("POST", "users/alice/server") in (403, 404)
    assert as_bob("DELETE", "users/alice/server") in (403, 404)
    assert as_bob("GET", "casabook/cap") == 403
    assert as_bob("PATCH", "users/bob", json={"admin": True}) in (403, 404)
    assert as_bob("POST", "users", json={"usernames": ["mallory"]}) == 403
    contents = httpx.get(f"{hub.hub_url}/user/alice/api/contents",
                         headers={"Authorization": f"token {bob_token}"}, timeout=30)
    assert contents.status_code == 403
    assert hub.api("GET", "users/alice").json()["servers"][""]["ready"] is True
    assert hub.api("GET", "users/bob").json()["admin"] is False


def _tamper(callback_url: str, how: str) -> str:
    parts = urlsplit(callback_url)
    query = dict(parse_qsl(parts.query))
    if how == "not-ascii":
        query["state"] = "é" + query["state"]
    elif how == "not-a-json-object":
        query["state"] = base64.urlsafe_b64encode(json.dumps(["state_id"]).encode()).decode()
    elif how == "another-state-id":
        query["state"] = base64.urlsafe_b64encode(json.dumps({"state_id": "0" * 32}).encode()).decode()
    elif how == "not-base64":
        query["state"] = "%%%"
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.parametrize("how", ["not-ascii", "not-a-json-object", "another-state-id", "not-base64"])
def test_tampered_oauth_state_is_a_4xx_not_a_500(hub, how):
    browser, callback = hub.authorize("alice")
    with pytest.raises(LoginRefused) as refused:
        hub.finish_login(browser, _tamper(callback, how))
    assert refused.value.status == 400


def _race(stack, names: list[str]) -> dict[str, int]:
    """Everybody has been to the identity provider; all callbacks hit the hub at once."""
    pending = [stack.authorize(name) for name in names]
    start = threading.Barrier(len(pending))

    def finish(item):
        browser, callback = item
        start.wait()
        return browser.get(callback)

    with ThreadPoolExecutor(len(pending)) as pool:
        responses = list(pool.map(finish, pending))
    for response in responses:
        assert response.status_code in (302, 403), \
            f"HTTP {response.status_code}: {response.text[-800:]}\nhub log:\n{stack.log_tail(60)}"
        if response.status_code == 403:
            assert f"This workshop is full ({CAP} places)" in response.text
            assert "organisers@casabook.invalid" in response.text
    return {name: response.status_code for name, response in zip(names, responses, strict=True)}


def _participants(stack) -> list[str]:
    # Organisers and the validation user the hub's config creates hold no place.
    return sorted(u["name"] for u in stack.api("GET", "users").json() if is_participant(u))


@pytest.mark.parametrize("round_", range(10))
def test_three_times_the_cap_logging_in_at_once_admits_exactly_the_cap(capped_hub, round_):
    names = [f"r{round_}-attendee{i}" for i in range(3 * CAP)]
    outcome = _race(capped_hub, names)
    admitted = sorted(name for name, status in outcome.items() if status == 302)
    assert sorted(set(outcome.values())) == [302, 403]
    assert len(admitted) == CAP
    assert _participants(capped_hub) == admitted == capped_hub.cap_status()["admitted"]
    # Organisers free the places for the next round by deleting the participants.
    for name in admitted:
        assert capped_hub.api("DELETE", f"users/{name}").status_code == 204
    assert capped_hub.cap_status()["admitted"] == []


def test_full_cap_admits_organisers_and_returning_participants_and_survives_a_restart(capped_hub):
    for name in ("ann", "ben", "cat"):
        capped_hub.login(name)
    with pytest.raises(LoginRefused) as refused:
        capped_hub.login("dan")
    assert refused.value.status == 403 and f"This workshop is full ({CAP} places)" in refused.value.page
    capped_hub.login("organiser")
    capped_hub.login("ann")

    capped_hub.restart_hub()

    assert capped_hub.cap_status()["admitted"] == ["ann", "ben", "cat"]
    with pytest.raises(LoginRefused):
        capped_hub.login("eve")
    capped_hub.login("ben")
    capped_hub.login("organiser")
    waitlist = [entry["name"] for entry in capped_hub.cap_status()["waitlist"]]
    assert "dan" in waitlist and "eve" in waitlist
    assert _participants(capped_hub) == ["ann", "ben", "cat"]


def test_casabook_hub_runs_until_ctrl_c_and_leaves_no_process_behind(tmp_path):
    root = runnable_workshop(tmp_path / "workshop")
    command = [sys.executable, "-m", "casabook.cli", "--root", str(root), "hub", "--port", "0",
               "--state", str(tmp_path / "state")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = process.stdout.readline()
        hub_url = re.search(r"http://127\.0\.0\.1:\d+", first).group(0)
        assert httpx.get(f"{hub_url}/hub/api/", timeout=10).status_code == 200
        family = psutil.Process(process.pid).children(recursive=True)
        assert any("configurable-http-proxy" in " ".join(p.cmdline()) for p in family)
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
        _, alive = psutil.wait_procs(family, timeout=5)
        assert alive == []
    finally:
        if process.poll() is None:
            process.kill()


def test_a_busy_port_is_a_one_line_error_naming_the_log(tmp_path, capsys):
    root = runnable_workshop(tmp_path / "workshop")
    state = tmp_path / "state"
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code = main(["--root", str(root), "hub", "--port", str(port), "--state", str(state)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert "[hub-start]" in err and f"its port is {port}" in err and "in use" in err
    assert str(state / "logs" / "hub.log") in err
    # Nothing of the half-started stack is left: the identity provider stopped with it.
    left = [p for p in psutil.Process().children(recursive=True)
            if p.pid not in before and p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, [p.cmdline() for p in left]
