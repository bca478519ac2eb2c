"""Registration on the embedded hub for real: attendees log in through the local OIDC provider,
which sends their e-mail claim; the hub reads the organisers' list from a file outside the
repository. The issue's case: a list of 5, a cap of 6.

Addresses are made at run time under example.org; the list lives in a tmp folder.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from casabook.testing.hub import LocalHub, LoginRefused
from casabook.testing.workshops import edit_yaml, runnable_workshop

pytestmark = pytest.mark.hub
CAP = 6
CONTACT = "casabook test organisers <organisers@casabook.invalid>"


def address(name: str) -> str:
    return f"{name}@example.org"


def claims(name: str) -> dict[str, str]:
    return {"preferred_username": name, "email": address(name), "name": name.title()}


def write_list(path: Path, names: list[str]) -> None:
    """Indico's HTTP export (registrants.json), as the organisers download it."""
    body = {"count": 1, "results": {"registrants": [
        {"registrant_id": str(i), "full_name": n.title(), "personal_data": {"email": address(n), "firstName": n.title(),
                                                                           "surname": "Example", "affiliation": "X"}}
        for i, n in enumerate(names)]}}
    path.write_text(json.dumps(body))
    # The hub notices a change by the file's time: a rewrite within the same tick must still count.
    stamp = time.time_ns() + 10_000_000
    os.utime(path, ns=(stamp, stamp))


class Workshop:
    def __init__(self, root: Path, hub: LocalHub, registrants: Path) -> None:
        self.root, self.hub, self.list = root, hub, registrants

    def login(self, name: str) -> int:
        """200-ish (302: logged in) or the refusal's status."""
        try:
            self.hub.login(name, claims=claims(name))
            return 302
        except LoginRefused as refused:
            self.last_page = refused.page
            return refused.status


def start(tmp_path_factory: pytest.TempPathFactory, walk_ins: str, names: list[str],
          username_claim: str = "preferred_username") -> Workshop:
    base = tmp_path_factory.mktemp(f"registered-{walk_ins}")
    root = runnable_workshop(base / "workshop")

    def register(data: dict) -> None:
        data["registration"] = {"file_env": "CASABOOK_REGISTRANTS", "match_claim": "email", "walk_ins": walk_ins}
        data["authenticator"]["username_claim"] = username_claim

    edit_yaml(root / "hub-config" / "local.yml", register)
    private = base / "private"
    private.mkdir()
    registrants = private / "registrants.json"
    write_list(registrants, names)
    hub = LocalHub(root=root, state_dir=base / "state", participants=CAP, contact=CONTACT,
                   extra_env={"CASABOOK_REGISTRANTS": str(registrants)})
    hub.start()
    return Workshop(root, hub, registrants)


REGISTRANTS = [f"reg{i}" for i in range(5)]


@pytest.fixture(scope="module")
def open_door(tmp_path_factory):
    workshop = start(tmp_path_factory, "up-to-cap", REGISTRANTS)
    yield workshop
    workshop.hub.stop()


@pytest.fixture(scope="module")
def closed_door(tmp_path_factory):
    workshop = start(tmp_path_factory, "none", REGISTRANTS)
    yield workshop
    workshop.hub.stop()


def registration(workshop: Workshop) -> dict:
    return workshop.hub.cap_status()["registration"]


def test_five_registrants_one_walk_in_and_a_sixth_registrant_added_mid_session(open_door):
    assert [open_door.login(name) for name in REGISTRANTS] == [302] * 5
    assert open_door.login("walker") == 302, "one place is left for walk-ins: 6 places, 5 reserved"
    assert open_door.login("stroller") == 403
    assert "not on its registration list" in open_door.last_page and "organisers@casabook.invalid" in open_door.last_page
    assert [e["name"] for e in open_door.hub.cap_status()["waitlist"]] == ["stroller"]

    write_list(open_door.list, [*REGISTRANTS, "late"])
    assert open_door.login("late") == 302, "added to the list during the session, no restart"
    view = registration(open_door)
    assert (view["registered"], view["registered_connected"], view["walk_ins"]) == (6, 6, 1)

    open_door.hub.restart_hub()
    assert open_door.login("stroller") == 403, "after a restart the places are still taken"
    assert open_door.login("walker") == 302 and open_door.login("reg0") == 302
    view = registration(open_door)
    assert (view["registered_connected"], view["walk_ins"]) == (6, 1)


def test_no_walk_in_when_walk_ins_are_not_allowed(closed_door):
    assert closed_door.login("reg0") == 302
    assert closed_door.login("walker") == 403
    assert "Not registered" in closed_door.last_page
    # An organiser gives the walker a place from the waiting list, without a restart.
    answer = closed_door.hub.api("POST", "casabook/cap", json={"admit": "walker"})
    assert answer.status_code == 204, answer.text
    assert closed_door.login("walker") == 302
    assert closed_door.hub.api("POST", "casabook/cap", json={"admit": ""}).status_code == 400


def test_casabook_admit_gives_a_place_from_the_waiting_list(closed_door, capsys, monkeypatch):
    from casabook.cli import main

    assert closed_door.login("stroller") == 403
    assert "stroller" in [e["name"] for e in closed_door.hub.cap_status()["waitlist"]]
    monkeypatch.setenv("CASABOOK_API_TOKEN", closed_door.hub.api_token)
    assert main(["--root", str(closed_door.root), "admit", "--facility", "local", "stroller",
                 "--hub-url", closed_door.hub.hub_url]) == 0
    assert "admitted 1" in capsys.readouterr().out
    assert closed_door.login("stroller") == 302
    assert main(["--root", str(closed_door.root), "admit", "--facility", "local", "",
                 "--hub-url", closed_door.hub.hub_url]) == 2
    assert "[admit-refused]" in capsys.readouterr().err
    assert closed_door.hub.cap_status()["waitlist"] == []


@pytest.fixture(scope="module")
def racing(tmp_path_factory):
    workshop = start(tmp_path_factory, "up-to-cap", [f"racer{i}" for i in range(3)])
    yield workshop
    workshop.hub.stop()


@pytest.mark.parametrize("round_", range(3))
def test_a_race_of_registrants_and_walk_ins_never_overshoots(racing, round_):
    # 3 registrants, 6 places: 3 left to walk-ins; 9 walk-ins arrive with the registrants, at once.
    racers = [f"racer{i}" for i in range(3)]
    walkers = [f"r{round_}-walker{i}" for i in range(9)]
    pending = [racing.hub.authorize(name, claims=claims(name)) for name in racers + walkers]
    barrier = threading.Barrier(len(pending))

    def finish(item):
        browser, callback = item
        barrier.wait()
        return browser.get(callback).status_code

    with ThreadPoolExecutor(len(pending)) as pool:
        statuses = dict(zip(racers + walkers, pool.map(finish, pending), strict=True))
    assert all(statuses[n] == 302 for n in racers), statuses
    admitted = [n for n in walkers if statuses[n] == 302]
    assert len(admitted) == 3 and all(statuses[n] == 403 for n in walkers if n not in admitted), statuses
    assert sorted(racing.hub.cap_status()["admitted"]) == sorted(racers + admitted)
    # Organisers free the walk-ins' places for the next round.
    for name in admitted:
        assert racing.hub.api("DELETE", f"users/{name}").status_code == 204


@pytest.fixture(scope="module")
def counted(tmp_path_factory):
    workshop = start(tmp_path_factory, "none", REGISTRANTS)
    yield workshop
    workshop.hub.stop()


def test_stats_print_registered_and_connected_and_no_names(counted, tmp_path, capsys, monkeypatch):
    from casabook.cli import main

    assert [counted.login(name) for name in REGISTRANTS[:4]] == [302] * 4
    assert counted.login("walker") == 403
    monkeypatch.setenv("CASABOOK_API_TOKEN", counted.hub.api_token)
    plot = tmp_path / "connections.png"
    code = main(["--root", str(counted.root), "stats", "--facility", "local", "--hub-url", counted.hub.hub_url,
                 "--plot", str(plot)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("5 registered, 4 connected, ") and out.splitlines()[0].endswith(", 1 refused")
    assert not any(name in out for name in [*REGISTRANTS, "walker", "example.org"]), out
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert main(["--root", str(counted.root), "stats", "--facility", "local", "--hub-url", counted.hub.hub_url,
                 "--plot", str(plot), "--format", "json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert (figures["registered"], figures["registrants_connected"], figures["walk_ins"], figures["waitlist"]) == (5, 4, 0, 1)


@pytest.fixture(scope="module")
def by_email(tmp_path_factory):
    # The identity provider's e-mail claim is the hub's user name: the list gives every user name.
    workshop = start(tmp_path_factory, "none", ["early", "late"], username_claim="email")
    yield workshop
    workshop.hub.stop()


def test_prewarm_registered_starts_the_servers_of_registrants_who_never_logged_in(by_email, materials_repo,
                                                                                  capsys, monkeypatch):
    from casabook.cli import main

    monkeypatch.setenv("CASABOOK_API_TOKEN", by_email.hub.api_token)
    monkeypatch.setenv("CASABOOK_REGISTRANTS", str(by_email.list))
    code = main(["--root", str(by_email.root), "prewarm", "--facility", "local", "--hub-url", by_email.hub.hub_url,
                 "--registered", "--repo", materials_repo.path.as_uri(), "--branch", "main", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    report = json.loads(captured.out)
    assert sorted(u["name"] for u in report["users"]) == [address("early"), address("late")]
    assert {u["outcome"] for u in report["users"]} == {"started"} and report["must_log_in"] == 0
    home = by_email.hub.state_dir / "homes" / address("early")
    assert (home / report["source"]["targetpath"] / "nb" / "intro.ipynb").is_file()
    view = registration(by_email)
    assert (view["registered"], view["registered_connected"], view["walk_ins"]) == (2, 0, 0), "prewarmed is not connected"
    # The registrant's first login finds their server running.
    assert by_email.login("early") == 302
    assert registration(by_email)["registered_connected"] == 1


def test_prewarm_registered_says_who_must_log_in_first(counted, materials_repo, capsys, monkeypatch):
    from casabook.cli import main

    monkeypatch.setenv("CASABOOK_API_TOKEN", counted.hub.api_token)
    monkeypatch.setenv("CASABOOK_REGISTRANTS", str(counted.list))
    code = main(["--root", str(counted.root), "prewarm", "--facility", "local", "--hub-url", counted.hub.hub_url,
                 "--registered", "--repo", materials_repo.path.as_uri(), "--branch", "main"])
    out = capsys.readouterr().out
    assert code == 0, out
    # 4 of the 5 logged in (the stats test above); the fifth's user name is their preferred_username.
    assert "4 of 4 servers running" in out
    assert "1 registrant must log in once before their server can be prewarmed" in out
    assert "'preferred_username'" in out
