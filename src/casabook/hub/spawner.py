"""The embedded hub's spawner: local processes, homes under the state folder, noticed when ready.

JupyterHub checks whether a new server answers with an exponential backoff (0.2 s, 0.4 s, 0.8 s,
1.6 s, ...), so a server ready after 1.5 s is noticed at about 3 s: an attendee waits for the
backoff, not for the server. This spawner watches the server's port every 50 ms before handing
over, and JupyterHub's first check then succeeds at once.

The lean session command (casabook.hub.session) is not run as a new Python each time: servers are
forked from one process that has imported the server once (casabook.hub.forkserver). Any other
command (the stock jupyterhub-singleuser, a wrapper a hook puts around it) starts as a process of
its own, as JupyterHub's local spawner starts it. Either way the server runs `niceness` steps
below the hub, and past `SpawnLine.concurrent_spawns` attendees wait in line first
(casabook.hub.line).
"""

import asyncio
import os
import sys

from jupyterhub.spawner import SimpleLocalProcessSpawner
from jupyterhub.utils import random_port
from traitlets import Bool, Float, Integer

from casabook.hub.config import SESSION_MODULE
from casabook.hub.forkserver import ForkServer
from casabook.hub.line import SpawnLine

PORT_POLL_SECONDS = 0.05
SERVER_NICENESS = 10

# One fork server per hub process, started with the first server (or by warm_up).
_FORK_SERVER: ForkServer | None = None


def fork_server(niceness: int) -> ForkServer:
    global _FORK_SERVER
    if _FORK_SERVER is None:
        _FORK_SERVER = ForkServer(niceness)
    return _FORK_SERVER


def session_command() -> list[str]:
    """The command line casabook configures for a lean session: the one the fork server runs."""
    return [sys.executable, "-m", SESSION_MODULE]


class ForkedProcessSpawner(SimpleLocalProcessSpawner):
    """SimpleLocalProcessSpawner, with the lean session forked instead of run, at lower priority."""

    fork = Bool(True, config=True,
                help="Fork lean sessions from a process that has imported the server once, instead of "
                     "starting a new Python for each (most of a server's start-up CPU).")
    niceness = Integer(SERVER_NICENESS, config=True,
                       help="How many steps below the hub's CPU priority attendees' servers run (nice), "
                            "so that the hub, the proxy and the identity provider answer the crowd "
                            "at the door at once while servers start.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # An attendee's spawner exists from their login on: the fork server's imports (once per
        # hub) can run then, rather than in the first attendee's start.
        if self._forks():
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return  # made outside a hub
            fork_server(self.niceness).warm_up_soon(self.log)

    def _forks(self) -> bool:
        return self.fork and list(self.cmd) == session_command() and not self.shell_cmd

    async def start(self):
        if not self._forks():
            return await super().start()
        if self.port == 0:
            self.port = random_port()
        env = self.get_env()
        argv = [SESSION_MODULE, *self.get_args()]
        self.log.info("Forking %s's server: %s", self._log_name, " ".join(argv))
        self.proc = None
        self.pid = await fork_server(self.niceness).fork(argv, env, self.home_dir)
        return (self.ip or "127.0.0.1", self.port)

    def make_preexec_fn(self, name):
        preexec = super().make_preexec_fn(name)
        niceness = self.niceness

        def lower_priority_then_preexec():
            if niceness:
                os.nice(niceness)
            preexec()

        return lower_priority_then_preexec


class LocalSessionSpawner(SpawnLine, ForkedProcessSpawner):
    port_poll_interval = Float(PORT_POLL_SECONDS, config=True,
                               help="How often to look whether the new server listens, in seconds.")

    async def start(self):
        ip, port = await super().start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.http_timeout
        while loop.time() < deadline and await self.poll() is None:
            try:
                _, writer = await asyncio.open_connection(ip, port)
            except OSError:
                await asyncio.sleep(self.port_poll_interval)
                continue
            writer.close()
            break
        # Not listening in time, or exited: JupyterHub's own wait reports it as usual.
        return ip, port
