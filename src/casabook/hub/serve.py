"""`casabook hub`: run the embedded default in the foreground until Ctrl-C.

Ctrl-C (or SIGTERM) stops everything in order: the hub stops the attendees' servers and the proxy,
then the identity provider stops; nothing is left running. casabook.up adds the book to the same.
"""

from __future__ import annotations

import functools
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rich.console import Console

from casabook.errors import CasabookError
from casabook.hub.config import load_hub_facility, organisers_contact
from casabook.hub.local import LocalStack
from casabook.model import Workshop, load_workshop


def default_state_dir(root: Path) -> Path:
    return root / ".casabook" / "state"


def prepare_stack(workshop: Workshop, *, facility: str = "local", state_dir: Path | None = None,
                  port: int = 8000, participants: int | None = None) -> LocalStack:
    """A LocalStack for a facility casabook can run on this machine (not yet started)."""
    chosen = load_hub_facility(workshop.root, facility)
    if not chosen.is_local or chosen.authenticator.kind != "local-oidc":
        raise CasabookError(
            "not-a-local-facility",
            f"facility {facility!r} runs on {chosen.spawner.kind} with {chosen.authenticator.kind}: casabook runs only "
            "local-process facilities with the local identity provider here; for this one use "
            f"`casabook hub render --facility {facility}`", key="--facility")
    if chosen.hub.bind_ip != "127.0.0.1":
        raise CasabookError("not-loopback", f"facility {facility!r} binds {chosen.hub.bind_ip}; the embedded hub "
                            "listens on 127.0.0.1 only", file=f"hub-config/{facility}.yml", key="hub.bind_ip")
    return LocalStack(root=workshop.root, state_dir=state_dir or default_state_dir(workshop.root),
                      facility=facility, port=port, participants=participants,
                      contact=organisers_contact(workshop, chosen))


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    # A supervisor's SIGTERM takes the same orderly way out as Ctrl-C; SIGINT is set explicitly
    # because a shell starting us in the background hands it down ignored.
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_for_hub(stack: LocalStack) -> int:
    """Until Ctrl-C (0) or until the hub dies (1)."""
    try:
        while stack.hub_process is not None and stack.hub_process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    Console(stderr=True).print(f"[bold red]the hub stopped unexpectedly[/]; its log:\n{stack.log_tail()}",
                               highlight=False)
    return 1


def describe(console: Console, stack: LocalStack, book_url: str | None = None) -> None:
    console = Console(file=console.file, soft_wrap=True, highlight=False)
    console.print(f"[bold]hub[/]       {stack.hub_url}  (participants' cap: "
                  f"{stack.participants or 'as in hub-config/' + stack.facility + '.yml'})")
    console.print(f"[bold]identity[/]  {stack.oidc_url}  (demo users: {', '.join(stack.demo_users)}; "
                  "'organiser' is an admin; any other name typed on its page logs in as that name)")
    if book_url:
        console.print(f"[bold]book[/]      {book_url}")
    console.print(f"[bold]state[/]     {stack.state_dir}  (homes/, waitlist.jsonl, logs/hub.log, "
                  "organiser-token: an admin API token)")
    console.print("Ctrl-C stops everything.")


def run_hub(root: Path, *, facility: str = "local", state_dir: Path | None = None, port: int = 8000,
            participants: int | None = None, console: Console | None = None) -> int:
    console = console or Console()
    stack = prepare_stack(load_workshop(root), facility=facility, state_dir=state_dir, port=port,
                          participants=participants)
    with stop_on_sigterm():
        try:
            with console.status("starting the identity provider, the proxy and the hub"):
                stack.start()
            describe(console, stack)
            return wait_for_hub(stack)
        finally:
            stack.stop()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib's name)
        pass


@contextmanager
def serve_folder(folder: Path, port: int = 0) -> Iterator[str]:
    """Serve a folder of HTML on 127.0.0.1 in a thread; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, name="casabook-book", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
