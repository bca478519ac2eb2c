"""A fork server for attendees' servers: jupyter_server, JupyterLab and nbgitpuller imported once,
one forked child per attendee.

A single-user server spends most of its start-up CPU importing Python modules (jupyter_server,
JupyterLab, jupyter_events, nbgitpuller...), the same for every attendee. The hub starts this
process once (`python -m casabook.hub.forkserver SOCKET_FD`); it imports the server as
casabook.hub.session would run it (lean), and then, per request, forks a child that becomes that
attendee's server with its own environment (token, port, user), home and session, exactly as the
command-line start would have it. The hub manages each child by its pid, as it manages a process
it started: signals to stop it, signal 0 to poll it (this process reaps its children at once, so a
stopped server's pid is gone). The validation fork server (casabook.validation.pool) does the same
for kernels, with multiprocessing; here the protocol is one JSON line each way, so that the hub's
event loop talks to it without threads or pickles.

    request  {"argv": [...], "env": {...}, "home": "/path"}
    reply    {"pid": 1234}  or  {"error": "..."}

Its niceness (given at start) is its children's: attendees' servers yield the CPU to the hub, the
proxy and the identity provider, so the crowd at the door gets its answer at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence


def _preload() -> None:
    # Imported here, in the fork server only: the hub imports this module for ForkServer.
    from casabook.hub.session import prepare

    prepare()
    import jupyter_server.serverapp  # noqa: F401
    import jupyter_server_terminals  # noqa: F401
    import jupyterhub.singleuser  # noqa: F401
    import jupyterlab.labapp  # noqa: F401
    import nbgitpuller  # noqa: F401


def rehome() -> list[str]:
    """What the preloaded modules worked out from the fork server's home when they were imported,
    worked out again from this process's environment (the attendee's); the server arguments that
    set the rest. Left alone, every attendee would share the hub user's JupyterLab workspaces and
    settings, trash folder and user site-packages. tests/test_forkserver.py scans the preloaded
    modules for any such value that this misses."""
    import importlib
    import site
    import sysconfig

    import send2trash.plat_other
    from jupyterlab.commands import get_user_settings_dir, get_workspaces_dir

    forkserver_site = site.USER_SITE
    site.USER_BASE = site.USER_SITE = None
    own_site = site.getusersitepackages()
    if forkserver_site in sys.path:
        sys.path.remove(forkserver_site)
    if site.ENABLE_USER_SITE and os.path.isdir(own_site):
        site.addsitedir(own_site)
    config_vars = sysconfig.get_config_vars()  # the dict itself, cached with the user base in it
    if "userbase" in config_vars:
        config_vars["userbase"] = site.getuserbase()
    importlib.reload(send2trash.plat_other)
    # LabApp reads these into its class defaults at import: the command line overrides them.
    return [f"--LabApp.user_settings_dir={get_user_settings_dir()}",
            f"--LabApp.workspaces_dir={get_workspaces_dir()}"]


def _reap(signum: int, frame: object) -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def _become_server(request: Mapping[str, object], channel: socket.socket) -> int:
    """In the forked child: the attendee's own session, environment and home, then the server."""
    # Detached, not closed: the fork server's reader and writer still refer to the socket object,
    # which would otherwise keep the descriptor (and the hub's line to the fork server) open.
    os.close(channel.detach())
    os.setsid()  # as Popen(start_new_session=True): the hub's signals to its group are not ours
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # ignored by the fork server, not by a server
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    home = str(request["home"])
    os.makedirs(home, 0o755, exist_ok=True)
    os.chdir(home)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(request["env"]).items()})  # type: ignore[arg-type]
    sys.argv = [str(a) for a in request["argv"]] + rehome()  # type: ignore[union-attr]
    from jupyterhub.singleuser import main

    return main() or 0


def serve(channel: socket.socket, niceness: int = 0) -> None:
    """The fork server's loop: one request line in, one reply line out, until the hub hangs up."""
    if niceness:
        os.nice(niceness)
    _preload()
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is for the hub
    reader = channel.makefile("rb")
    writer = channel.makefile("wb")
    writer.write(b'{"ready": true}\n')
    writer.flush()
    for line in reader:
        try:
            request = json.loads(line)
            pid = os.fork()
        except (ValueError, OSError) as error:
            reply = {"error": str(error)}
        else:
            if pid == 0:
                code = 1
                try:
                    code = _become_server(request, channel)
                except SystemExit as done:
                    code = done.code if isinstance(done.code, int) else 1
                except BaseException:
                    import traceback

                    traceback.print_exc()
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            reply = {"pid": pid}
        writer.write(json.dumps(reply).encode() + b"\n")
        writer.flush()


class ForkServer:
    """The hub's side: starts the fork server once and asks it for servers, one at a time."""

    def __init__(self, niceness: int = 0) -> None:
        self.niceness = niceness
        self.process: asyncio.subprocess.Process | None = None
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._lock: asyncio.Lock | None = None
        self._warming: asyncio.Task[None] | None = None  # held: the loop keeps only weak references

    async def _started(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._streams is not None and self.process is not None and self.process.returncode is None:
            return self._streams
        ours, theirs = socket.socketpair()
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "casabook.hub.forkserver", str(theirs.fileno()), str(self.niceness),
                pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL)
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours, limit=2**20)
        hello = await reader.readline()
        if not hello:
            raise RuntimeError("the fork server for attendees' servers exited while loading the server "
                               "(its traceback is in the hub's log)")
        self._streams = reader, writer
        return self._streams

    async def fork(self, argv: Sequence[str], env: Mapping[str, str], home: str) -> int:
        """A new server process; its pid."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            reader, writer = await self._started()
            writer.write(json.dumps({"argv": list(argv), "env": dict(env), "home": home}).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        if not line:
            self._streams = None
            raise RuntimeError("the fork server for attendees' servers exited (see the hub's log)")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the fork server could not start a server: {reply['error']}")
        return int(reply["pid"])

    async def warm_up(self) -> None:
        """Start the fork server now (its imports take a few CPU-seconds, once)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            await self._started()

    def warm_up_soon(self, log: logging.Logger) -> None:
        """warm_up in the background, once; a failure is logged (the next fork reports it too)."""
        if self._warming is not None:
            return

        def report(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                log.error("The fork server for attendees' servers did not start: %s", task.exception())

        self._warming = asyncio.get_running_loop().create_task(self.warm_up())
        self._warming.add_done_callback(report)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    channel = socket.socket(fileno=int(args[0]))
    serve(channel, int(args[1]) if len(args) > 1 else 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
