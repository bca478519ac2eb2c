"""The spawn line: past `concurrent_spawns`, attendees wait their turn on the progress page.

JupyterHub's own `concurrent_spawn_limit` answers the attendee one past the limit with an error
page (HTTP 429, "Too many users trying to log in right now. Try again in N seconds") and no
automatic retry: in a crowd, a person reloads by hand, again and again. Here the hub's limit is
lifted (0) and the spawner keeps it instead. `SpawnLine.start` takes a place in one first-come,
first-served line before the real start; `SpawnLine.progress` tells the spawn-pending page where
the attendee stands ("3 ahead of you") until the turn comes, then hands over to the spawner's own
progress (KubeSpawner's pod events, say). The server starts by itself when a place frees.

A place is held as JupyterHub holds one of its concurrent spawns: from the real start until the
whole spawn is over (the server answers and the proxy routes to it), or has failed. Time in line
counts towards `start_timeout`: JupyterHub cancels a start that overruns it, and a cancelled
attendee leaves the line without keeping anyone else waiting.

This module imports only the standard library, JupyterHub, tornado and traitlets, so that a chart's hub
image without casabook can run it from its source (as hub.extraConfig holds casabook.hub.caps).
`in_line(KubeSpawner)` is KubeSpawner with the line; the local spawner mixes it in itself.
"""

import asyncio
import time
from collections import deque

from jupyterhub.spawner import Spawner
from tornado import web
from traitlets import Integer

# The line gives up this long before start_timeout, so that the attendee reads why on the
# progress page rather than JupyterHub's bare "Spawn failed: " of a cancelled start.
GIVE_UP_MARGIN_SECONDS = 1.0


class LeftTheLine(Exception):
    """The ticket was made to leave while it waited (its server was stopped)."""


class Ticket:
    """One attendee's place: waiting, then holding a place, then gone."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.joined = time.monotonic()
        self.turn: asyncio.Future[None] | None = None  # set while waiting
        self.holding = False
        self.gone = False
        self.started = asyncio.Event()  # the spawner's own start has been called


class Line:
    """At most `places` tickets hold a place; the others wait, served in the order they came.

    places=0 means no limit. Single-threaded: every call happens on the hub's event loop.
    """

    def __init__(self, places: int = 0) -> None:
        self.places = places
        self.holding = 0
        self.waiting: deque[Ticket] = deque()
        self._watchers: list[asyncio.Future[None]] = []

    def ahead(self, ticket: Ticket) -> int | None:
        """How many wait before this ticket; None once it holds a place (or left)."""
        try:
            return self.waiting.index(ticket)
        except ValueError:
            return None

    @property
    def full(self) -> bool:
        """Would a ticket taken now have to wait?"""
        return bool(self.waiting) or 0 < self.places <= self.holding

    async def take(self, ticket: Ticket) -> None:
        """Wait for a place. On cancellation (a start timeout), the ticket leaves the line."""
        if not self.full:
            self.holding += 1
            ticket.holding = True
            self._moved()
            return
        ticket.turn = asyncio.get_running_loop().create_future()
        self.waiting.append(ticket)
        self._moved()
        try:
            await ticket.turn
        except asyncio.CancelledError:
            # Its turn may have come just as it was cancelled: the place passes on.
            self.leave(ticket)
            raise

    def leave(self, ticket: Ticket) -> None:
        """The ticket is done: its place goes to the first one waiting; if it was still waiting,
        its wait ends with LeftTheLine. Safe to call more than once."""
        if ticket in self.waiting:
            self.waiting.remove(ticket)
            ticket.gone = True
            if ticket.turn is not None and not ticket.turn.done():
                ticket.turn.set_exception(LeftTheLine(ticket.name))
            self._moved()
            return
        if not ticket.holding:
            return
        ticket.holding = False
        ticket.gone = True
        while self.waiting:
            nxt = self.waiting.popleft()
            if nxt.turn is not None and not nxt.turn.done():
                nxt.holding = True
                nxt.turn.set_result(None)
                break
            nxt.gone = True  # cancelled while waiting, not yet woken to remove itself
        else:
            self.holding -= 1
        self._moved()

    async def moved(self) -> None:
        """Return when a ticket joined, got its turn or left."""
        watcher = asyncio.get_running_loop().create_future()
        self._watchers.append(watcher)
        await watcher

    def _moved(self) -> None:
        watchers, self._watchers = self._watchers, []
        for watcher in watchers:
            if not watcher.done():
                watcher.set_result(None)


# One line per hub process: every attendee's spawner stands in it. Its size comes from the
# spawners' configuration, which is the same for all of them.
LINE = Line()


def place_message(ahead: int, holding: int) -> str:
    if ahead == 0:
        return f"In line for a server: you are next ({holding} starting now)"
    return f"In line for a server: {ahead} ahead of you ({holding} starting now)"


class SpawnLine(Spawner):
    """Mix in before a spawner class: its start waits in the line, its progress says where."""

    concurrent_spawns = Integer(
        0, config=True,
        help="How many servers may be starting at once. Beyond that, attendees wait in line on the "
             "spawn-pending page, served in arrival order, instead of JupyterHub's 'too many users' "
             "error page. Set JupyterHub.concurrent_spawn_limit to 0 beside it. 0: no line.")

    _ticket: Ticket | None = None

    @property
    def line(self) -> Line:
        LINE.places = self.concurrent_spawns
        return LINE

    async def start(self):
        line = self.line
        ticket = self._ticket = Ticket(self._log_name)
        if line.full:
            self.log.info("%s joins the spawn line: %d ahead, %d starting",
                          ticket.name, len(line.waiting), line.holding)
        try:
            await asyncio.wait_for(line.take(ticket), max(self.start_timeout - GIVE_UP_MARGIN_SECONDS, 0.1))
        except (TimeoutError, asyncio.CancelledError) as reason:
            waited = time.monotonic() - ticket.joined
            self.log.info("%s left the spawn line after %.1f s (start_timeout %s s)",
                          ticket.name, waited, self.start_timeout)
            if isinstance(reason, asyncio.CancelledError):
                raise
            # Below 500: a crowd is no failure of the hub (JupyterHub exits after
            # consecutive_failure_limit errors); 429 as JupyterHub's own throttle says it.
            busy = web.HTTPError(429, "waited %.0f s in the spawn line", waited)
            busy.jupyterhub_message = (
                f"The hub is starting many servers at once and your turn did not come within "
                f"{waited:.0f} s. Start your server again to take a new place in line.")
            raise busy from None
        self.log.info("%s's turn in the spawn line after %.1f s; %d waiting, %d starting",
                      ticket.name, time.monotonic() - ticket.joined, len(line.waiting), line.holding)
        try:
            # KubeSpawner's start sets the future its progress follows as it is called.
            starting = super().start()
            ticket.started.set()
            result = await starting
        except BaseException:
            line.leave(ticket)
            raise
        self._release_when_spawned(ticket)
        return result

    def _release_when_spawned(self, ticket: Ticket) -> None:
        # JupyterHub counts a spawn as pending until the server answers and the proxy routes to it
        # (its spawn future); holding the place as long keeps its protection. Without such a
        # future (a start not driven by a request), the place is free when start returns.
        spawn_future = self._spawn_future
        if spawn_future is None or spawn_future.done():
            self.line.leave(ticket)
        else:
            spawn_future.add_done_callback(lambda _: self.line.leave(ticket))

    async def stop(self, now=False):
        ticket = self._ticket
        if ticket is not None:
            self.line.leave(ticket)
        return await super().stop(now=now)

    async def poll(self):
        # Nothing of its own to poll; JupyterHub insists that a Spawner subclass defines it.
        return await super().poll()

    async def progress(self):
        line = self.line
        ticket, shown = self._ticket, None
        # Progress may be asked for before start has been called (pre-spawn hooks still running):
        # wait for this spawn's ticket.
        while ticket is None or ticket.gone:
            await line.moved()
            ticket = self._ticket
        waited = False
        while (ahead := line.ahead(ticket)) is not None:
            waited = True
            message = place_message(ahead, line.holding)
            if message != shown:
                shown = message
                yield {"progress": 5, "message": message}
            await line.moved()
        if ticket.gone and not ticket.started.is_set():
            return  # it left the line without its turn (a timeout): JupyterHub reports the failure
        if waited:
            yield {"progress": 10, "message": f"Your turn: starting your server after "
                                              f"{time.monotonic() - ticket.joined:.0f} s in line"}
        # The spawner's own progress follows its start: not before that start has begun.
        await ticket.started.wait()
        async for event in super().progress():
            yield event


def in_line(spawner_class: type[Spawner]) -> type[Spawner]:
    """`spawner_class` with the spawn line: `in_line(KubeSpawner)`. Its own config section stays."""
    return type(f"{spawner_class.__name__}InLine", (SpawnLine, spawner_class), {})


def __getattr__(name: str) -> type[Spawner]:
    # `casabook.hub.line.KubeSpawnerInLine` as a spawner_class string, without importing
    # kubespawner on hubs that do not run it.
    if name == "KubeSpawnerInLine":
        from kubespawner import KubeSpawner

        cls = globals()[name] = in_line(KubeSpawner)
        return cls
    raise AttributeError(name)
