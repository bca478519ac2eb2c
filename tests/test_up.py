"""`casabook up`, the README's main job, as a newcomer runs it: a process that prints the book's and
the hub's addresses, serves a book whose launch buttons lead into the local hub and pull this very
repository, and stops everything on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from casabook.hub.browser import Browser
from casabook.links import parse_launch_url
from casabook.testing.workshops import copy_workshop

pytestmark = pytest.mark.hub

BUTTON_HREF = re.compile(r'href="([^"]*/hub/user-redirect/git-pull\?[^"]+)"')


def _lines(process: subprocess.Popen[str]) -> "queue.Queue[str]":
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(process: subprocess.Popen[str], lines: "queue.Queue[str]", pattern: str, seen: list[str],
              timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        if match := re.search(pattern, line):
            return match
    raise AssertionError(f"no line matching {pattern!r} (exit {process.poll()}); printed:\n{''.join(seen)}")


def test_up_serves_the_book_into_the_local_hub_and_stops_cleanly(tmp_path: Path):
    workshop = copy_workshop(tmp_path / "workshop")
    process = subprocess.Popen(
        [sys.executable, "-m", "casabook.cli", "--root", str(workshop), "up", "--port", "0",
         "--state", str(tmp_path / "state")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
    )
    seen: list[str] = []
    try:
        lines = _lines(process)
        hub_url = _wait_for(process, lines, r"^hub\s+(http://127\.0\.0\.1:\d+)", seen, timeout=400).group(1)
        book_url = _wait_for(process, lines, r"^book\s+(http://127\.0\.0\.1:\d+/)", seen, timeout=60).group(1)
        children = process_tree(process.pid)

        with httpx.Client(follow_redirects=True, timeout=30) as client:
            intro = client.get(book_url + "intro.html")
            assert intro.status_code == 200 and "CMS track" in intro.text
            page = client.get(book_url + "notebooks/cms/01-nanoevents.html")
            assert page.status_code == 200
            links = BUTTON_HREF.findall(page.text)
            assert links, "no launch button on a notebook page"
            hub, source, notebook = parse_launch_url(links[0].replace("&amp;", "&"))
            assert hub == hub_url
            assert source.repo == workshop.resolve().as_uri()  # the local hub pulls this repository
            assert notebook == "notebooks/cms/01-nanoevents.ipynb"
        # The launch link starts at the hub's log-in (the attendee is not logged in yet): the
        # identity provider's form, on this machine.
        login = asyncio.run(_visit(links[0].replace("&amp;", "&")))
        assert login.status_code == 200 and 'name="sub"' in login.text, login.url
        assert login.url.host == "127.0.0.1" and login.url.path.endswith("/oauth2/authorize"), login.url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError("casabook up did not stop within 60 s of Ctrl-C:\n" + "".join(seen))
    assert code == 0, "".join(seen)
    assert "ConfigProxy" not in "".join(seen), "the proxy's log belongs in the state folder, not on the console"
    survivors = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not survivors, f"left running after Ctrl-C: {[p.cmdline() for p in survivors]}"


async def _visit(url: str) -> httpx.Response:
    """Where a newcomer's browser lands on clicking `url`."""
    browser = Browser("newcomer")
    try:
        return await browser.navigate(url)
    finally:
        await browser.close()


def process_tree(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)
