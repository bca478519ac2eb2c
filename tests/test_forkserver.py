"""Attendees' servers forked from one fork server (casabook.hub.forkserver), on a real hub: each
with its own environment, home, port and token, below the hub's CPU priority, gone with its
spawner's stop. A command other than the lean session still starts as a process of its own, at
the same lower priority."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import psutil
import pytest

from casabook.hub.local import LocalStack
from casabook.hub.spawner import SERVER_NICENESS
from hubfixtures import REPO_ROOT, TEST_CONTACT, materials_repo  # noqa: F401 (fixture)
from localhub import TunedStack, server_process

pytestmark = pytest.mark.hub

WRAPPED_USER = "wrapped-wanda"

# The repository's configuration, and one attendee whose command a documented JupyterHub hook
# wraps (in `env`, which changes nothing): not the lean session command, so not forked.
TEST_CONFIG = f"""
def _hook(spawner):
    if spawner.user.name == {WRAPPED_USER!r} and spawner.cmd[0] != "env":
        spawner.cmd = ["env", *spawner.cmd]


c.Spawner.pre_spawn_hook = _hook
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = TunedStack(root=REPO_ROOT, state_dir=tmp_path_factory.mktemp("hub-state"), contact=TEST_CONTACT,
                       config=TEST_CONFIG)
    stack.start()
    yield stack
    stack.stop()


def start(stack: LocalStack, name: str) -> psutil.Process:
    stack.login(name)
    stack.api("POST", f"users/{name}/server")
    stack.wait_ready(name)
    return server_process(stack, name)


def listening_ports(process: psutil.Process) -> set[int]:
    return {c.laddr.port for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


def gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return False  # nobody reaped it: the hub's poll would think it alive
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_forked_servers_each_have_their_own_environment_home_port_and_token(stack):
    hub = psutil.Process(stack.hub_process.pid)
    alice, bob = start(stack, "alice"), start(stack, "bob")
    forker = alice.parent()
    assert "casabook.hub.forkserver" in " ".join(forker.cmdline())
    assert bob.parent().pid == forker.pid and forker.parent().pid == hub.pid
    # A forked child's environment is not in /proc (that shows the fork server's, from its exec):
    # each server proves its own by whom it serves. Its user and token come from its environment.
    tokens = {name: stack.api("POST", f"users/{name}/tokens", json={"note": "test"}).json()["token"]
              for name in ("alice", "bob")}
    for owner in ("alice", "bob"):
        home = stack.state_dir / "homes" / owner
        assert Path(server_process(stack, owner).cwd()) == home
        (home / f"only-{owner}.txt").write_text(owner)
    for owner in ("alice", "bob"):
        for caller, token in tokens.items():
            answer = httpx.get(f"{stack.hub_url}/user/{owner}/api/contents",
                               headers={"Authorization": f"token {token}"}, timeout=30)
            assert answer.status_code == (200 if caller == owner else 403), (owner, caller, answer.status_code)
            if caller == owner:
                assert {item["name"] for item in answer.json()["content"]} >= {f"only-{owner}.txt"}
                assert f"only-{'bob' if owner == 'alice' else 'alice'}.txt" not in answer.text
    ports = {name: listening_ports(p) for name, p in (("alice", alice), ("bob", bob))}
    assert ports["alice"] and ports["bob"] and not ports["alice"] & ports["bob"]
    assert alice.nice() == bob.nice() == hub.nice() + SERVER_NICENESS
    assert os.getsid(alice.pid) == alice.pid, "a session of its own: the hub's signals to its group miss it"


def test_a_forked_server_dies_with_its_spawners_stop_and_the_others_keep_running(stack):
    alice, bob = server_process(stack, "alice"), server_process(stack, "bob")
    stack.api("DELETE", "users/alice/server")
    assert gone(alice.pid), "alice's server outlived its stop, or was left a zombie"
    assert bob.is_running() and bob.status() != psutil.STATUS_ZOMBIE
    again = start(stack, "alice")
    assert again.pid != alice.pid and again.parent().pid == bob.parent().pid


def test_a_forked_server_pulls_the_materials_into_its_own_home(stack, materials_repo):  # noqa: F811
    browser = stack.login("carol")
    page = stack.launch(browser, materials_repo.launch_url(stack.hub_url, "nb/intro.ipynb"))
    assert page.status_code == 200
    assert (stack.state_dir / "homes" / "carol" / "materials" / "nb" / "intro.ipynb").is_file()
    assert "casabook.hub.forkserver" in " ".join(server_process(stack, "carol").parent().cmdline())


def test_another_command_starts_as_its_own_process_at_the_same_lower_priority(stack):
    hub = psutil.Process(stack.hub_process.pid)
    wanda = start(stack, WRAPPED_USER)
    assert wanda.parent().pid == hub.pid, "a wrapped command is not forked"
    assert wanda.nice() == hub.nice() + SERVER_NICENESS
