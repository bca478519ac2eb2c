"""The spawn line (casabook.hub.line): past concurrent_spawns, attendees wait their turn on the
progress page instead of meeting JupyterHub's 429 page.

First the line on its own (asyncio, no hub), then on a real hub: attendees in line see their place,
start by themselves in arrival order, and one whose start_timeout runs out in line leaves it
without keeping anyone waiting.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time

import httpx
import pytest

from casabook.hub.line import LeftTheLine, Line, SpawnLine, Ticket, in_line, place_message
from casabook.testing.hub import LocalHub, LoginRefused
from casabook.testing.fixtures import REPO_ROOT, TEST_CONTACT
from casabook.testing.tuned import TunedStack

# --- the line on its own -------------------------------------------------------------------


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


async def _crowd(line: Line, names: list[str]) -> tuple[dict[str, Ticket], dict[str, asyncio.Task]]:
    tickets = {name: Ticket(name) for name in names}
    tasks = {}
    for name in names:  # each joins after the one before: arrival order is the list's
        tasks[name] = asyncio.create_task(line.take(tickets[name]))
        await asyncio.sleep(0)
    return tickets, tasks


def test_the_first_places_go_at_once_and_the_rest_wait_in_arrival_order():
    async def scenario():
        line = Line(places=2)
        tickets, tasks = await _crowd(line, ["a", "b", "c", "d", "e"])
        assert [t.holding for t in tickets.values()] == [True, True, False, False, False]
        assert [line.ahead(tickets[n]) for n in "cde"] == [0, 1, 2]
        turns = []
        for leaving in "abcde":
            line.leave(tickets[leaving])
            await asyncio.sleep(0)
            turns += [n for n, task in tasks.items() if task.done() and n not in turns]
            assert line.holding <= 2
        return turns, line

    turns, line = run(scenario())
    assert turns == ["a", "b", "c", "d", "e"]
    assert line.holding == 0 and not line.waiting


def test_a_timeout_in_line_leaves_it_and_the_next_one_moves_up():
    async def scenario():
        line = Line(places=1)
        holder, impatient, patient = Ticket("holder"), Ticket("impatient"), Ticket("patient")
        await line.take(holder)
        waiting = asyncio.create_task(asyncio.wait_for(line.take(impatient), 0.05))
        await asyncio.sleep(0)
        later = asyncio.create_task(line.take(patient))
        await asyncio.sleep(0)
        assert line.ahead(patient) == 1
        with pytest.raises(TimeoutError):
            await waiting
        assert impatient not in line.waiting and not impatient.holding
        assert line.ahead(patient) == 0, "the impatient one left: the patient one is next"
        line.leave(holder)
        await asyncio.wait_for(later, 1)
        assert patient.holding and line.holding == 1
        line.leave(patient)
        return line

    line = run(scenario())
    assert line.holding == 0 and not line.waiting


def test_a_turn_that_comes_as_the_wait_is_cancelled_passes_the_place_on():
    async def scenario():
        line = Line(places=1)
        tickets, tasks = await _crowd(line, ["holder", "unlucky", "next"])
        line.leave(tickets["holder"])  # unlucky's turn is set...
        tasks["unlucky"].cancel()  # ...and its start is cancelled before it runs again
        with pytest.raises(asyncio.CancelledError):
            await tasks["unlucky"]
        await asyncio.wait_for(tasks["next"], 1)
        return line, tickets["next"]

    line, next_one = run(scenario())
    assert next_one.holding and line.holding == 1 and not line.waiting


def test_a_server_stopped_while_in_line_ends_its_wait():
    async def scenario():
        line = Line(places=1)
        tickets, tasks = await _crowd(line, ["holder", "quitter"])
        line.leave(tickets["quitter"])
        with pytest.raises(LeftTheLine):
            await tasks["quitter"]
        line.leave(tickets["holder"])
        return line

    line = run(scenario())
    assert line.holding == 0 and not line.waiting


def test_no_places_set_means_no_line():
    async def scenario():
        line = Line(places=0)
        tickets, tasks = await _crowd(line, [f"u{i}" for i in range(50)])
        await asyncio.gather(*tasks.values())
        return line, tickets

    line, tickets = run(scenario())
    assert line.holding == 50 and all(t.holding for t in tickets.values())


def test_watchers_hear_of_every_move():
    async def scenario():
        line = Line(places=1)
        heard = asyncio.create_task(line.moved())
        await asyncio.sleep(0)
        await line.take(Ticket("first"))
        await asyncio.wait_for(heard, 1)

    run(scenario())


def test_in_line_keeps_the_spawners_own_config_section():
    from jupyterhub.spawner import SimpleLocalProcessSpawner
    from traitlets.config import Config

    c = Config()
    c.SimpleLocalProcessSpawner.home_dir_template = "/srv/homes/{username}"
    c.SpawnLine.concurrent_spawns = 7
    spawner = in_line(SimpleLocalProcessSpawner)(config=c)
    assert isinstance(spawner, SpawnLine) and isinstance(spawner, SimpleLocalProcessSpawner)
    assert spawner.home_dir_template == "/srv/homes/{username}"
    assert spawner.concurrent_spawns == 7 and spawner.line.places == 7


@pytest.mark.parametrize(("ahead", "holding", "message"), [
    (0, 3, "In line for a server: you are next (3 starting now)"),
    (12, 20, "In line for a server: 12 ahead of you (20 starting now)"),
], ids=["next", "twelve-ahead"])
def test_place_message(ahead, holding, message):
    assert place_message(ahead, holding) == message


# --- on a real hub ---------------------------------------------------------------------------

SLOW_USER = "slowpoke"
SLOW_SECONDS = 8
IMPATIENT_TIMEOUT = 3
PLACES = 1
PARTICIPANTS = 12

# After the repository's hub configuration: one place, and two attendees with servers
# of their own kind, set by a documented JupyterHub hook: slowpoke's server takes SLOW_SECONDS
# before it starts (it holds the place meanwhile); an attendee named impatient-* gives up after
# IMPATIENT_TIMEOUT seconds.
TEST_CONFIG = f"""
c.SpawnLine.concurrent_spawns = {PLACES}


def _hook(spawner):
    name = spawner.user.name
    if name == {SLOW_USER!r} and spawner.cmd[0] != "sh":
        spawner.cmd = ["sh", "-c", 'sleep {SLOW_SECONDS}; exec "$0" "$@"', *spawner.cmd]
    if name.startswith("impatient-"):
        spawner.start_timeout = {IMPATIENT_TIMEOUT}


c.Spawner.pre_spawn_hook = _hook
"""


@pytest.fixture(scope="module")
def one_place(tmp_path_factory):
    stack = TunedStack(root=REPO_ROOT, state_dir=tmp_path_factory.mktemp("hub-state"), contact=TEST_CONTACT,
                       participants=PARTICIPANTS, config=TEST_CONFIG)
    stack.start()
    yield stack
    stack.stop()


def progress_events(stack: LocalHub, name: str, timeout: float = 120) -> list[dict]:
    """The spawn-pending page's event stream for `name`, until the server is ready or failed."""
    events = []
    url = f"{stack.hub_url}/hub/api/users/{name}/server/progress"
    with httpx.stream("GET", url, headers={"Authorization": f"token {stack.api_token}"}, timeout=timeout) as stream:
        assert stream.status_code == 200, f"{name}: progress answered {stream.status_code}"
        for line in stream.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[len("data:"):]))
                if events[-1].get("ready") or events[-1].get("failed"):
                    break
    return events


def wait_pending(stack: LocalHub, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = stack.api("GET", f"users/{name}").json().get("servers", {}).get("")
        if server and server.get("pending") == "spawn":
            return
        time.sleep(0.05)
    raise AssertionError(f"{name}'s spawn never became pending:\n{stack.log_tail()}")


def stop_server(stack: LocalHub, name: str) -> None:
    stack.api("DELETE", f"users/{name}/server")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not stack.api("GET", f"users/{name}").json().get("servers"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{name}'s server did not stop:\n{stack.log_tail()}")


def line_log(stack: LocalHub) -> list[tuple[str, str]]:
    """(what, who) for every turn and departure the hub logged, in order."""
    text = stack.log_path.read_text(errors="replace")
    return [(m.group(2), m.group(1)) for m in
            re.finditer(r"(\S+?)(?:'s)? (turn|left) (?:in )?the spawn line", text)]


class Attendee(threading.Thread):
    """An attendee's browser asking for their server, as the launch link's first step does."""

    def __init__(self, stack: LocalHub, name: str) -> None:
        super().__init__(daemon=True)
        self.browser = stack.login(name)
        self.name_ = name
        self.response: httpx.Response | None = None

    def run(self) -> None:
        self.response = self.browser.get(f"/hub/spawn/{self.name_}")


@pytest.mark.hub
def test_past_the_limit_attendees_wait_in_line_and_start_by_themselves_in_arrival_order(one_place):
    stack = one_place
    crowd = ["ann", "ben", "cat"]
    slow = Attendee(stack, SLOW_USER)
    attendees = [Attendee(stack, name) for name in crowd]
    slow.start()
    wait_pending(stack, SLOW_USER)
    events: dict[str, list[dict]] = {}
    readers = []
    for position, attendee in enumerate(attendees):
        attendee.start()
        wait_pending(stack, attendee.name_)
        reader = threading.Thread(target=lambda n=attendee.name_: events.__setitem__(n, progress_events(stack, n)))
        reader.start()
        readers.append(reader)
        # Arrival order is what the next one joins behind: wait until this one stands in line.
        deadline = time.monotonic() + 30
        while len([w for w in line_joined(stack) if w in crowd]) <= position and time.monotonic() < deadline:
            time.sleep(0.05)
    for thread in [slow, *attendees, *readers]:
        thread.join(180)

    for attendee in [slow, *attendees]:
        assert attendee.response is not None
        assert attendee.response.status_code != 429, attendee.response.text[:500]
        assert attendee.response.status_code == 302, (attendee.name_, attendee.response.status_code)
    for attendee in attendees:  # each waited longer than slowpoke's start: shown the page meanwhile
        assert attendee.response.headers["location"].startswith(f"/hub/spawn-pending/{attendee.name_}"), \
            attendee.response.headers["location"]
    for position, name in enumerate(crowd):
        messages = [e.get("message", "") for e in events[name]]
        assert events[name][-1].get("ready"), (name, messages)
        expected = [place_message(ahead, PLACES) for ahead in range(position, -1, -1)]
        assert [m for m in messages if m.startswith("In line")] == expected, (name, messages)
        assert any(m.startswith("Your turn") for m in messages), (name, messages)
    turns = [who for what, who in line_log(stack) if what == "turn"]
    assert turns[-4:] == [SLOW_USER, *crowd], turns
    for name in [SLOW_USER, *crowd]:
        stop_server(stack, name)


def line_joined(stack: LocalHub) -> list[str]:
    text = stack.log_path.read_text(errors="replace")
    return re.findall(r"(\S+) joins the spawn line", text)


@pytest.mark.hub
def test_a_start_timeout_in_line_fails_that_spawn_and_keeps_nobody_waiting(one_place):
    stack = one_place
    slow = Attendee(stack, SLOW_USER)
    impatient = Attendee(stack, "impatient-dora")
    slow.start()
    wait_pending(stack, SLOW_USER)
    impatient.start()
    wait_pending(stack, "impatient-dora")
    events = progress_events(stack, "impatient-dora")
    assert events[-1].get("failed"), events
    assert "your turn did not come within" in events[-1]["message"], events
    assert not any(e.get("message", "").startswith("Your turn") for e in events), events
    assert ("left", "impatient-dora") in line_log(stack), stack.log_tail()
    slow.join(120)
    stack.wait_ready(SLOW_USER)
    # The place slowpoke held is free again, and dora's old place is nobody's: the next one
    # starts at once, nobody ahead.
    erin = Attendee(stack, "erin")
    erin.start()
    erin.join(120)
    stack.wait_ready("erin")
    turn = re.findall(r"erin's turn in the spawn line after ([\d.]+) s; (\d+) waiting, (\d+) starting",
                      stack.log_path.read_text(errors="replace"))
    assert turn and float(turn[-1][0]) < 1 and turn[-1][1:] == ("0", "1"), turn
    for name in [SLOW_USER, "erin"]:
        stop_server(stack, name)


@pytest.mark.hub
def test_while_servers_wait_and_start_the_refused_get_the_full_page(one_place):
    stack = one_place
    crowd = [Attendee(stack, name) for name in (SLOW_USER, "gus", "hal")]  # logged in: admitted
    cap = stack.cap_status()
    for i in range(cap["participants"] - len(cap["admitted"])):
        stack.login(f"filler-{i}")
    for attendee in crowd:
        attendee.start()
        wait_pending(stack, attendee.name_)
    # slowpoke's server is starting, the others wait in line: the next newcomer is told at once.
    with pytest.raises(LoginRefused) as refused:
        stack.login("one-too-many")
    assert refused.value.status == 403
    assert f"This workshop is full ({PARTICIPANTS} places)" in refused.value.page
    assert stack.api("GET", "users/hal").json()["servers"][""]["pending"] == "spawn"
    for attendee in crowd:
        attendee.join(120)
        stack.wait_ready(attendee.name_)
    for attendee in crowd:
        stop_server(stack, attendee.name_)
