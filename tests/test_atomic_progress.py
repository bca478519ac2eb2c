"""The one atomic writer and the one progress display."""

from __future__ import annotations

import io
import os
import stat

import pytest
from rich.console import Console

from casabook.atomic import leftovers, replacing, write_bytes, write_text
from casabook.progress import progress_bar


def test_write_text_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "report.json"
    write_text(target, "old\n")
    write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert leftovers(target.parent, target.name) == []
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "values.yaml"
    write_text(target, "kept\n")
    with pytest.raises(RuntimeError):
        with replacing(target) as stream:
            stream.write("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "kept\n"
    assert leftovers(tmp_path, target.name) == []


def test_new_file_has_ordinary_permissions_not_mkstemps_private_ones(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_bytes(tmp_path / "data.root", b"\x00\x01")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_bytes() == b"\x00\x01"


def test_progress_without_a_console_does_nothing():
    with progress_bar(None, "validate", 3) as bar:
        bar.advance()
        bar.status("running 01.ipynb")
        bar.print("[green]passed[/]")
        bar.line("download", 10).advance(5)


def test_progress_prints_lines_above_the_bar_and_escapes_status():
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=False, width=120)
    with progress_bar(console, "attendees", 2, transient=False) as bar:
        bar.status("[not markup]")
        bar.print("[green]passed[/] a.ipynb")
        bar.advance(2)
    text = stream.getvalue()
    assert "passed a.ipynb" in text
    assert "attendees" in text and "2/2" in text
