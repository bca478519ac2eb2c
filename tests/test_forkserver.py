"""Attendees' servers forked from one fork server (casabook.hub.forkserver), on a real hub: each
with its own environment, home, port and token, below the hub's CPU priority, gone with its
spawner's stop. A command other than the lean session still starts as a process of its own, at
the same lower priority."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from casabook.testing.hub import LocalHub
from casabook.hub.spawner import SERVER_NICENESS
from casabook.testing.fixtures import REPO_ROOT, TEST_CONTACT
from casabook.testing.tuned import TunedStack, server_process

# Imports the server as the fork server does with HOME=<first>, then moves to HOME=<second> as a
# forked child does, and lists every value of the preloaded modules still under the first home:
# module globals, and class trait defaults the server's arguments do not override.
SCAN = r"""
import json, os, sys
from traitlets import HasTraits
from casabook.hub.forkserver import _preload, rehome

first, second = os.environ.pop("SCAN_FIRST"), os.environ.pop("SCAN_SECOND")
_preload()
os.environ["HOME"] = second
arguments = dict(a[2:].split("=", 1) for a in rehome())
leaks = []
for name, module in list(sys.modules.items()):
    for key, value in list(vars(module).items()) if module else []:
        if isinstance(value, bytes):
            value = os.fsdecode(value)
        if isinstance(value, (str, list, tuple, dict, set)) and first in str(value) and not (
                name in ("__main__", "__mp_main__", "posix", "os") or key == "environ"):
            leaks.append(f"{name}.{key} = {value!r:.100}")

def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)

for cls in set(subclasses(HasTraits)):
    for key, trait in cls.class_traits().items():
        if first in str(getattr(trait, "default_value", "")):
            given = arguments.get(f"{cls.__name__}.{key}")
            if given is None or first in given or not given.startswith(second):
                leaks.append(f"{cls.__module__}.{cls.__name__}.{key} = {trait.default_value!r:.100} (given {given!r})")
print(json.dumps(sorted(set(leaks))))
"""


def test_nothing_the_fork_server_imported_keeps_its_home(tmp_path):
    first, second = tmp_path / "forkserver-home", tmp_path / "attendee-home"
    for home in (first, second):
        (home / ".local" / "share").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "XDG_"))}
    env.update(HOME=str(first), SCAN_FIRST=str(first), SCAN_SECOND=str(second))
    done = subprocess.run([sys.executable, "-c", SCAN], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []


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


def start(stack: LocalHub, name: str) -> psutil.Process:
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


@pytest.mark.hub
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
    # JupyterLab keeps each attendee's workspaces in their own home, not the fork server's.
    for owner, token in tokens.items():
        saved = httpx.put(f"{stack.hub_url}/user/{owner}/lab/api/workspaces/desk-{owner}",
                          json={"data": {}, "metadata": {"id": f"desk-{owner}"}},
                          headers={"Authorization": f"token {token}"}, timeout=30)
        assert saved.status_code in (200, 204), (owner, saved.status_code, saved.text[:300])
        where = stack.state_dir / "homes" / owner / ".jupyter" / "lab" / "workspaces"
        assert [p.name for p in where.glob(f"desk-{owner}*")], f"{owner}'s workspace is not in {where}"
    ports = {name: listening_ports(p) for name, p in (("alice", alice), ("bob", bob))}
    assert ports["alice"] and ports["bob"] and not ports["alice"] & ports["bob"]
    assert alice.nice() == bob.nice() == hub.nice() + SERVER_NICENESS
    assert os.getsid(alice.pid) == alice.pid, "a session of its own: the hub's signals to its group miss it"


@pytest.mark.hub
def test_a_forked_server_dies_with_its_spawners_stop_and_the_others_keep_running(stack):
    alice, bob = server_process(stack, "alice"), server_process(stack, "bob")
    stack.api("DELETE", "users/alice/server")
    assert gone(alice.pid), "alice's server outlived its stop, or was left a zombie"
    assert bob.is_running() and bob.status() != psutil.STATUS_ZOMBIE
    again = start(stack, "alice")
    assert again.pid != alice.pid and again.parent().pid == bob.parent().pid


@pytest.mark.hub
def test_a_forked_server_pulls_the_materials_into_its_own_home(stack, materials_repo):  # noqa: F811
    browser = stack.login("carol")
    page = stack.launch(browser, materials_repo.launch_url(stack.hub_url, "nb/intro.ipynb"))
    assert page.status_code == 200
    assert (stack.state_dir / "homes" / "carol" / "materials" / "nb" / "intro.ipynb").is_file()
    assert "casabook.hub.forkserver" in " ".join(server_process(stack, "carol").parent().cmdline())


@pytest.mark.hub
def test_another_command_starts_as_its_own_process_at_the_same_lower_priority(stack):
    hub = psutil.Process(stack.hub_process.pid)
    wanda = start(stack, WRAPPED_USER)
    assert wanda.parent().pid == hub.pid, "a wrapped command is not forked"
    assert wanda.nice() == hub.nice() + SERVER_NICENESS
