"""`casabook up`: the whole workshop on this machine, above both the book and the hub.

It fetches the data, builds the book with its launch links pointed at the local hub, serves the
book and runs the hub (casabook.hub.serve) until Ctrl-C, which stops both in order.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from casabook.book import build_book
from casabook.data import default_data_dir, fetch
from casabook.hub.local import free_port
from casabook.hub.serve import describe, prepare_stack, serve_folder, stop_on_sigterm, wait_for_hub
from casabook.model import load_workshop


def up(root: Path, *, state_dir: Path | None = None, port: int = 8000, book_port: int = 0,
       participants: int | None = None, console: Console | None = None) -> int:
    """The whole workshop on this machine: data, the book pointed at the local hub, the hub."""
    console = console or Console()
    workshop = load_workshop(root)
    stack = prepare_stack(workshop, state_dir=state_dir, port=port or free_port(), participants=participants)
    fetch(default_data_dir(workshop.root), console=console)
    # The local hub clones this very repository (file:// clones shallow, as nbgitpuller needs), not
    # its origin: what the instructor has committed here is what attendees of the rehearsal get.
    # Its own output folder, so the facilities' book in book/_build/html stays as it was.
    html = build_book(workshop, hub_override=stack.hub_url, repo=workshop.root.resolve().as_uri(),
                      output=workshop.root / "book" / "_build" / "html-local", console=console)
    with stop_on_sigterm():
        try:
            with serve_folder(html, book_port) as book_url:
                with console.status("starting the identity provider, the proxy and the hub"):
                    stack.start()
                describe(console, stack, book_url)
                return wait_for_hub(stack)
        finally:
            stack.stop()
