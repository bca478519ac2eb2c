"""The workshop book: a launch button per notebook page into its track's hub, schedules from the track
files, search and plots, and a strict build that never publishes a broken page or launch link.

One real build of a throw-away workshop (real git repository, real jupyter-book) is shared by the
module; tests that break something restore it and rebuild into their own output folder.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import logging
import re
import shutil
import threading
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import nbformat
import pytest
import yaml
from casabook.testing.remotes import HOSTED, hosted_remote
from casabook.testing.workshops import copy_workshop, edit_yaml, git, make_workshop, tiny_notebook
from offline import css_urls, is_remote, remote_loads

from casabook.book import BookBuildError, build_book
from casabook.book.mathjax import SCRIPT, STATIC_FOLDER
from casabook.book.checks import launch_anchors
from casabook.book.publish import MARKER
from casabook.cli import main
from casabook.links import parse_launch_url, track_links
from casabook.model import load_workshop
from casabook.notebook_lint import lint_notebook

REPO = Path(__file__).resolve().parents[1]
PLOT_NOTEBOOK = "notebooks/opendata/02-vector-hist-mplhep.ipynb"
SEARCH_WORD = "quarkonium"
LOCAL_HUB = "http://127.0.0.1:8000"
MATH_CELL = (r"## The mass" "\n\n"
             r"The invariant mass $m_{\mu\mu} = \sqrt{2 p_{T,1} p_{T,2} (\cosh\Delta\eta - \cos\Delta\phi)}$ peaks at"
             "\n\n" r"$$ m_{J/\psi} \approx 3.097\,\mathrm{GeV} $$")


def plot_png() -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(3, 2))
    axes.plot([0, 1, 2], [0, 1, 4])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def plot_notebook() -> nbformat.NotebookNode:
    notebook = tiny_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell(f"# Vectors and plots\n\nA {SEARCH_WORD} resonance, drawn.\n\n## The plot"),
        nbformat.v4.new_code_cell("plt.plot([0, 1, 2], [0, 1, 4])", execution_count=1, outputs=[
            nbformat.v4.new_output("display_data", data={"image/png": plot_png(), "text/plain": "<Figure>"})]),
        nbformat.v4.new_markdown_cell(MATH_CELL),
    ]
    return notebook


def copy_book(root: Path) -> None:
    """The repository's hand-written book (config, landing page) into a throw-away workshop."""
    shutil.copytree(REPO / "book", root / "book", ignore=shutil.ignore_patterns("_build"))


def commit_all(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


@pytest.fixture(scope="module")
def workshop_root(tmp_path_factory) -> Path:
    root = make_workshop(tmp_path_factory.mktemp("book") / "workshop")
    copy_book(root)
    nbformat.write(plot_notebook(), root / PLOT_NOTEBOOK)
    commit_all(root, "book and a plot")
    hosted_remote(root)
    return root


@pytest.fixture(scope="module")
def built(workshop_root: Path) -> Path:
    return build_book(load_workshop(workshop_root))


class Tables(HTMLParser):
    """Rows of every table on a page, each cell as its text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None


def notebook_pages(workshop) -> dict[str, tuple]:
    return {entry.path: (track, entry) for track in workshop.tracks.values() for entry in track.notebooks}


def test_each_notebook_page_launches_into_its_track_facility(workshop_root: Path, built: Path):
    workshop = load_workshop(workshop_root)
    for path, (track, entry) in notebook_pages(workshop).items():
        facility = workshop.facility_of(track)
        buttons = [a for a in launch_anchors(built / path.replace(".ipynb", ".html")) if a.is_button]
        assert len(buttons) == 1, path
        hub_url, source, notebook = parse_launch_url(buttons[0].href)
        assert (hub_url, notebook) == (facility.hub.url, path)
        assert (source.repo, source.branch, source.targetpath) == (HOSTED, "main", "casabook")
        assert buttons[0].text == f"Launch on {facility.title}"
    facilities = {workshop.facility_of(t).hub.url for t in workshop.tracks.values()}
    assert len(facilities) == 3  # the three tracks really go to three hubs


def test_cms_button_names_the_nebraska_facility(built: Path):
    [button] = [a for a in launch_anchors(built / "notebooks/cms/01-nanoevents.html") if a.is_button]
    assert button.text == "Launch on Coffea-casa CMS AF (T2 Nebraska)"
    assert button.href.startswith("https://coffea.casa/hub/user-redirect/git-pull?")
    html = (built / "notebooks/cms/01-nanoevents.html").read_text()
    assert re.search(r'<a class="casabook-launch-button reference external" href="https://coffea\.casa/[^"]+">'
                     r"Launch on Coffea-casa CMS AF \(T2 Nebraska\)</a>", html)


def test_no_launch_button_on_other_pages(workshop_root: Path, built: Path):
    notebook_html = {p.replace(".ipynb", ".html") for p in notebook_pages(load_workshop(workshop_root))}
    others = [p for p in built.rglob("*.html") if p.relative_to(built).as_posix() not in notebook_html]
    assert {"index.html", "intro.html", "search.html", "genindex.html", "tracks/cms.html"} <= {
        p.relative_to(built).as_posix() for p in others}
    for page in others:
        assert not [a for a in launch_anchors(page) if a.is_button], page
    assert launch_anchors(built / "intro.html") == []


def test_track_pages_list_the_tracks_launch_links(workshop_root: Path, built: Path):
    workshop = load_workshop(workshop_root)
    for name, track in workshop.tracks.items():
        expected = [link.url for link in track_links(workshop, track)]
        assert [a.href for a in launch_anchors(built / f"tracks/{name}.html")] == expected


def test_schedule_tables_match_the_track_files(workshop_root: Path, built: Path):
    for track_file in sorted((workshop_root / "tracks").glob("*.yml")):
        data = yaml.safe_load(track_file.read_text())
        schedule = Tables((built / "tracks" / f"{track_file.stem}.html").read_text()).tables[0]
        header, rows = schedule[0], schedule[1:]
        assert header == ["Session", "Date", "Start", "End", "Time zone", "Notebooks"]
        assert len(rows) == len(data["schedule"]) > 0
        titles = {entry["path"]: entry["title"] for entry in data["notebooks"]}
        for row, session in zip(rows, data["schedule"]):
            start = dt.datetime.fromisoformat(f"{session['date']}T{session['start']}").replace(
                tzinfo=ZoneInfo(session["timezone"]))
            end = start + dt.timedelta(minutes=session["minutes"])
            assert row[0] == session["title"]
            assert row[1].endswith(str(session["date"]))
            assert (row[2], row[3]) == (session["start"], end.strftime("%H:%M"))
            assert row[4].startswith(session["timezone"]) and start.strftime("%z")[:3] in row[4]
            assert row[5] == ", ".join(titles[path] for path in session["notebooks"])


def test_landing_page_links_every_track(workshop_root: Path, built: Path):
    html = (built / "intro.html").read_text()
    for name in load_workshop(workshop_root).tracks:
        assert f'href="tracks/{name}.html"' in html
    assert "How to launch a notebook" in html


def test_hand_written_pages_follow_the_tracks_in_the_navigation(built: Path):
    # book/rehearsal.md is in no track: the generated table of contents still takes it in.
    html = (built / "intro.html").read_text()
    assert 'href="rehearsal.html"' in html
    assert html.index('href="rehearsal.html"') > max(html.index(f'href="tracks/{name}.html"')
                                                      for name in ("opendata", "cms", "atlas"))


def test_search_page_and_index_find_notebook_text(built: Path):
    search = (built / "search.html").read_text()
    assert 'src="searchindex.js"' in search and 'id="search-results"' in search
    text = (built / "searchindex.js").read_text()
    index = json.loads(text[text.index("(") + 1: text.rindex(")")])
    page = index["docnames"].index(PLOT_NOTEBOOK.removesuffix(".ipynb"))
    found = index["terms"][SEARCH_WORD]
    assert page in (found if isinstance(found, list) else [found])


def test_plots_are_png_images_with_alt_text(built: Path):
    page = built / PLOT_NOTEBOOK.replace(".ipynb", ".html")
    images = re.findall(r'<img alt="([^"]*)" src="([^"]+)"', page.read_text())
    assert images, "the plot is missing from its page"
    for alt, src in images:
        assert src.endswith(".png") and (page.parent / src).resolve().is_file()
        assert alt == "Output of code cell 2 in section “The plot” of “Vectors and plots”"


def test_published_folder_is_marked_and_complete(built: Path):
    assert (built / MARKER).is_file() and (built / "index.html").is_file()
    assert not list(built.parent.glob(f".{built.name}.*"))  # no staging copy left beside it


def test_hub_override_changes_every_link(workshop_root: Path, built: Path, tmp_path: Path):
    out = tmp_path / "local-book"
    assert main(["--root", str(workshop_root), "book", "--hub-override", LOCAL_HUB, "--output", str(out)]) == 0
    anchors = [a for page in out.rglob("*.html") for a in launch_anchors(page)]
    assert len([a for a in anchors if a.is_button]) == len(notebook_pages(load_workshop(workshop_root)))
    assert anchors and {parse_launch_url(a.href)[0] for a in anchors} == {LOCAL_HUB}


def test_repo_option_sets_where_every_link_pulls_from(workshop_root: Path, built: Path, tmp_path: Path):
    out = tmp_path / "local-book"
    repo = workshop_root.resolve().as_uri()  # what `casabook up` gives: the local hub clones this repository
    assert main(["--root", str(workshop_root), "book", "--hub-override", LOCAL_HUB, "--repo", repo,
                 "--output", str(out)]) == 0
    anchors = [a for page in out.rglob("*.html") for a in launch_anchors(page)]
    assert anchors and {parse_launch_url(a.href)[1].repo for a in anchors} == {repo}
    assert {a.text for a in anchors} == {"Launch on Embedded default (this machine)"}
    # The default build is another folder and keeps the facilities' hubs.
    assert {parse_launch_url(a.href)[0] for a in launch_anchors(built / "tracks/cms.html")} == {"https://coffea.casa"}


def test_uncommitted_notebook_fails_the_build_naming_it(workshop_root: Path, built: Path, capsys):
    before = (built / "tracks/cms.html").read_text()
    new = "notebooks/cms/05-uncommitted.ipynb"
    nbformat.write(tiny_notebook(), workshop_root / new)
    track_file = workshop_root / "tracks/cms.yml"
    original = track_file.read_text()
    edit_yaml(track_file, lambda d: d["notebooks"].append({"path": new, "title": "Not committed", "minutes": 5}))
    try:
        assert main(["--root", str(workshop_root), "book"]) == 1
        error = " ".join(capsys.readouterr().err.split())
        assert f"{new} is not committed on branch 'main'" in error
        assert "(its launch button on notebooks/cms/05-uncommitted.html" in error
        assert "[book-broken-link]" in error
        assert (built / "tracks/cms.html").read_text() == before
    finally:
        track_file.write_text(original)
        (workshop_root / new).unlink()


def test_missing_notebook_is_a_user_mistake(workshop_root: Path, built: Path, capsys):
    track_file = workshop_root / "tracks/atlas.yml"
    original = track_file.read_text()
    edit_yaml(track_file, lambda d: d["notebooks"].append(
        {"path": "notebooks/atlas/09-missing.ipynb", "title": "Missing", "minutes": 5}))
    try:
        assert main(["--root", str(workshop_root), "book"]) == 2
        error = capsys.readouterr().err
        assert "tracks/atlas.yml" in error and "notebooks[3].path" in error and "does not exist" in error
    finally:
        track_file.write_text(original)


def test_broken_internal_link_fails_until_fixed_and_keeps_the_published_book(workshop_root: Path, built: Path,
                                                                                tmp_path: Path):
    out = tmp_path / "book"
    workshop = load_workshop(workshop_root)
    assert build_book(workshop, output=out) == out
    good = (out / "notebooks/atlas/01-physlite-coffea.html").read_text()
    path = workshop_root / "notebooks/atlas/01-physlite-coffea.ipynb"
    original = path.read_bytes()
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_markdown_cell("Next: [the fit](03-no-such-notebook.ipynb)."))
    nbformat.write(notebook, path)
    try:
        for attempt in range(2):  # a failed page must fail again on the next (incremental) build
            with pytest.raises(BookBuildError) as failure:
                build_book(workshop, output=out)
            message = failure.value.render()
            assert "notebooks/atlas/01-physlite-coffea.ipynb" in message, attempt
            assert "03-no-such-notebook.ipynb" in message and "the published book is unchanged" in message
            assert failure.value.exit_code == 1
            assert (out / "notebooks/atlas/01-physlite-coffea.html").read_text() == good
    finally:
        path.write_bytes(original)
    assert build_book(workshop, output=out) == out


def test_refused_build_names_the_notebook_cell_and_keeps_library_warnings_out(workshop_root: Path, built: Path,
                                                                               recwarn, caplog):
    name = "notebooks/cms/02-coffea-processor-dask.ipynb"
    path = workshop_root / name
    original = path.read_bytes()
    # nbformat 4.5 without cell ids, as older tools write it: nbformat warns (MissingIDFieldWarning) on reading it.
    metadata = json.loads(original)["metadata"]
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# Answers\n\nIntro words"},
        {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": [], "execution_count": None},
        {"cell_type": "markdown", "metadata": {}, "source": ["Some words first\n", "\n", "#### Too deep"]},
    ]}))
    try:
        with caplog.at_level(logging.DEBUG, logger="casabook.book.sphinx_run"), \
                pytest.raises(BookBuildError) as failure:
            build_book(load_workshop(workshop_root))
        linted = lint_notebook(path, name)  # what `casabook check` says without building
    finally:
        path.write_bytes(original)
    problems = failure.value.render().splitlines()[1:]
    assert [line.strip() for line in problems] == [
        f"{name}: cell 3 (“Some words first”), line 3: Non-consecutive header level increase; H1 to H4 "
        "[myst.header] [book-failed]"]
    assert [(problem.place, problem.rule) for problem in linted] == [
        ("cell 3 (“Some words first”), line 3", "heading-jump")]
    assert [w for w in recwarn if w.category.__name__ == "MissingIDFieldWarning"] == []
    assert any("MissingIDFieldWarning" in record.getMessage() for record in caplog.records)  # kept, at debug level


def test_malformed_notebook_fails_the_build_naming_it(workshop_root: Path, built: Path, capsys):
    path = workshop_root / "notebooks/cms/03-ttbar-selection.ipynb"
    original = path.read_bytes()
    path.write_text("{not json")
    try:
        assert main(["--root", str(workshop_root), "book"]) == 1
        error = " ".join(capsys.readouterr().err.split())
        assert "notebooks/cms/03-ttbar-selection.ipynb: Sphinx stopped: NotJSONError" in error
    finally:
        path.write_bytes(original)


def test_unknown_extension_in_book_config_is_a_user_mistake(workshop_root: Path, built: Path, capsys):
    config = workshop_root / "book/_config.yml"
    original = config.read_text()
    edit_yaml(config, lambda d: d["sphinx"].update(extra_extensions=["no_such_extension"]))
    try:
        assert main(["--root", str(workshop_root), "book"]) == 2
        error = " ".join(capsys.readouterr().err.split())
        assert "book/_config.yml: Sphinx cannot start" in error and "no_such_extension" in error
    finally:
        config.write_text(original)


def test_output_folder_that_is_not_a_book_is_never_replaced(workshop_root: Path, built: Path, tmp_path: Path, capsys):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("keep me")
    assert main(["--root", str(workshop_root), "book", "--output", str(precious)]) == 2
    assert "not empty and holds no casabook book" in capsys.readouterr().err
    assert [p.name for p in precious.iterdir()] == ["chapter1.tex"]


def _page_times(root: Path) -> dict[str, int]:
    """When each page of the work folder was last written (index.html is a fixed redirect to intro.html)."""
    html = root / "book/_build/.work/html"
    return {p.relative_to(html).as_posix(): p.stat().st_mtime_ns for p in html.rglob("*.html")
            if not p.relative_to(html).as_posix().startswith("_") and p.name != "index.html"}


def test_rebuilds_rewrite_only_what_changed_but_every_page_when_navigation_changes(workshop_root: Path, built: Path):
    workshop = load_workshop(workshop_root)
    build_book(workshop)  # settle after the other tests' builds
    settled = _page_times(workshop_root)
    build_book(workshop)
    assert _page_times(workshop_root) == settled

    notebook = workshop_root / "notebooks/opendata/01-uproot-awkward-dimuons.ipynb"
    original = notebook.read_bytes()
    edited = nbformat.read(notebook, as_version=4)
    edited.cells[0].source += "\n\nOne more sentence."
    nbformat.write(edited, notebook)
    try:
        build_book(workshop)
        after_edit = _page_times(workshop_root)
        changed = {page for page in after_edit if after_edit[page] != settled[page]}
        # Sphinx always rewrites the root page and the index pages along with any other.
        assert changed - {"intro.html", "genindex.html", "search.html"} == {
            "notebooks/opendata/01-uproot-awkward-dimuons.html"}
        assert "One more sentence." in (built / "notebooks/opendata/01-uproot-awkward-dimuons.html").read_text()
    finally:
        notebook.write_bytes(original)

    track_file = workshop_root / "tracks/cms.yml"
    original_track = track_file.read_text()
    edit_yaml(track_file, lambda d: d.update(title="CMS track, renamed"))
    try:
        before = _page_times(workshop_root)
        build_book(load_workshop(workshop_root))
        after = _page_times(workshop_root)
        assert [page for page in before if after[page] == before[page]] == []  # the sidebar is on every page
        assert "CMS track, renamed" in (built / "notebooks/atlas/01-physlite-coffea.html").read_text()
    finally:
        track_file.write_text(original_track)
    build_book(load_workshop(workshop_root))


@pytest.mark.parametrize("argv, message", [
    (["--hub-override", "coffea.casa"], "is not a hub URL"),
    (["--hub-override", "ftp://coffea.casa"], "is not a hub URL"),
], ids=["hub-without-scheme", "hub-not-http"])
def test_bad_arguments_exit_2(workshop_root: Path, capsys, argv, message):
    assert main(["--root", str(workshop_root), "book", *argv]) == 2
    assert message in capsys.readouterr().err


def test_markdown_special_characters_in_track_text_are_shown_as_written():
    from casabook.book.pages import md_text

    assert md_text("H->ZZ* with $1 and [links](x) | pipes") == (
        r"H\-\>ZZ\* with \$1 and \[links\]\(x\) \| pipes")


# --- a book whole offline ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repository_book(tmp_path_factory) -> Path:
    """The repository's own book (its notebooks with their outputs and math), built in a copy."""
    root = copy_workshop(tmp_path_factory.mktemp("repository") / "workshop")
    hosted_remote(root)  # published as an attendee's hub would clone it
    return build_book(load_workshop(root))


def files(html: Path, suffix: str) -> list[Path]:
    return sorted(html.rglob(f"*{suffix}"))


@pytest.mark.parametrize("book", ["built", "repository_book"], ids=["test-workshop", "repository"])
def test_no_page_loads_a_script_stylesheet_or_font_from_the_network(book: str, request):
    html = request.getfixturevalue(book)
    pages = files(html, ".html")
    assert len(pages) > 10
    remote = {page.relative_to(html).as_posix(): loads for page in pages
              if (loads := remote_loads(page.read_text(encoding="utf-8")))}
    assert remote == {}
    stylesheets = files(html, ".css")
    assert any(sheet.name == "casabook.css" for sheet in stylesheets)
    remote_css = {sheet.relative_to(html).as_posix(): urls for sheet in stylesheets
                  if (urls := [url for url in css_urls(sheet.read_text(encoding="utf-8")) if is_remote(url)])}
    assert remote_css == {}


def test_math_pages_load_mathjax_and_its_fonts_from_the_book(workshop_root: Path, built: Path):
    page = built / PLOT_NOTEBOOK.replace(".ipynb", ".html")
    text = page.read_text()
    assert '<span class="math notranslate nohighlight">' in text  # inline math
    assert '<div class="math notranslate nohighlight">' in text  # display math
    script = re.search(rf'<script defer="defer" src="([^"?]*{STATIC_FOLDER}/{SCRIPT})\?v=\w+"', text)
    assert script, "the page does not load MathJax from the book's _static folder"
    mathjax = (page.parent / script.group(1)).resolve().parent
    assert mathjax == (built / "_static" / STATIC_FOLDER).resolve()
    # CHTML draws with these fonts, fetched relative to the script; TeX loads its extensions likewise.
    assert (mathjax / "output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff").is_file()
    assert (mathjax / "input/tex/extensions/mhchem.js").is_file()
    # Rebuilds skip the copy while it is there; a copy gone from the work folder comes back.
    shutil.rmtree(workshop_root / "book/_build/.work/html/_static" / STATIC_FOLDER)
    build_book(load_workshop(workshop_root))
    assert (built / "_static" / STATIC_FOLDER / SCRIPT).is_file()


MATH_PAGE = "notebooks/opendata/01-uproot-awkward-dimuons.html"
TYPESET = r"""() => MathJax.startup.promise.then(() => {
  const math = [...document.querySelectorAll('article .math')];
  return {math: math.length,
          typeset: math.filter(el => el.querySelector(':scope > mjx-container[jax="CHTML"]')).length,
          display: document.querySelectorAll('article mjx-container[display="true"]').length,
          raw: math.filter(el => /\\[()[\]]/.test(el.textContent)).map(el => el.textContent.slice(0, 60)),
          fonts: [...document.fonts].filter(f => f.family.startsWith('MJXTEX') && f.status === 'loaded').length};
})"""


@pytest.mark.browser
def test_chromium_with_no_network_typesets_the_math_of_a_notebook_page(repository_book: Path):
    from browser import launch_chromium, new_person, screenshot, screenshot_on_failure
    from playwright.sync_api import sync_playwright

    from casabook.hub.serve import serve_folder

    expected = len(re.findall(r'<(?:span|div) class="math notranslate nohighlight">',
                              (repository_book / MATH_PAGE).read_text()))
    assert expected > 3
    refused: list[str] = []

    def loopback_only(route):
        if is_remote(route.request.url):
            refused.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    with serve_folder(repository_book) as url, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = new_person(browser)
            page.context.route("**/*", loopback_only)
            with screenshot_on_failure(page, "book-math-offline"):
                page.goto(url + MATH_PAGE, wait_until="load")
                page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
                found = page.evaluate(TYPESET)
                page.locator('article mjx-container[display="true"]').first.scroll_into_view_if_needed()
                screenshot(page, "book-math-offline")
        finally:
            browser.close()
    assert found["math"] == expected
    assert found["typeset"] == expected and found["raw"] == []
    assert found["display"] >= 1 and found["fonts"] >= 1  # drawn with MathJax's own fonts, served by the book
    assert refused == []


# --- a person with a keyboard and a browser ------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"  # Debian's; `make browser-deps` installs it


class _RecordingHub(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (the http.server API)
        type(self).requests.append(self.path)
        body = b"<title>hub</title>the hub"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def recording_hub():
    _RecordingHub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _RecordingHub.requests
    server.shutdown()
    server.server_close()


@pytest.mark.browser
def test_launch_button_is_the_first_link_of_the_page_by_keyboard_and_opens_the_hub(
        workshop_root: Path, built: Path, tmp_path: Path, recording_hub):
    from playwright.sync_api import sync_playwright

    hub_url, requests = recording_hub
    out = build_book(load_workshop(workshop_root), hub_override=hub_url, hub_title="the workshop hub",
                     output=tmp_path / "book")
    notebook = "notebooks/cms/01-nanoevents.ipynb"
    [expected] = [link.url for link in track_links(load_workshop(workshop_root),
                                                   load_workshop(workshop_root).tracks["cms"], hub_url=hub_url)
                  if link.notebook == notebook]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto((out / notebook.replace(".ipynb", ".html")).as_uri())
            focused = "() => [document.activeElement.tagName, document.activeElement.className, document.activeElement.textContent.trim()]"
            page.keyboard.press("Tab")
            assert page.evaluate(focused)[2] == "Skip to main content"
            page.keyboard.press("Enter")
            for _ in range(10):  # past the page's tool buttons to the first link of the content
                page.keyboard.press("Tab")
                tag, classes, text = page.evaluate(focused)
                if tag == "A":
                    break
            assert "casabook-launch-button" in classes.split()
            assert text == "Launch on the workshop hub"
            with page.expect_navigation():
                page.keyboard.press("Enter")
            assert page.url == expected
        finally:
            browser.close()
    assert [r for r in requests if r != "/favicon.ico"] == [expected.removeprefix(hub_url)]


# --- execution through jupyter-cache (a real kernel) -------------------------------------------


@pytest.fixture
def one_notebook_workshop(tmp_path: Path) -> Path:
    root = make_workshop(tmp_path / "workshop", commit=False)
    for track_file in (root / "tracks").glob("*.yml"):
        if track_file.stem != "atlas":
            track_file.unlink()
    edit_yaml(root / "tracks/atlas.yml", lambda d: d.update(notebooks=d["notebooks"][:1], schedule=[]))
    notebook = tiny_notebook("print(6 * 7)")
    notebook.cells[0].source = "# Answer"
    nbformat.write(notebook, root / "notebooks/atlas/01-physlite-coffea.ipynb")
    copy_book(root)
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "one notebook")
    hosted_remote(root)
    return root


@pytest.mark.notebooks
def test_execute_cache_runs_the_notebook_once_through_jupyter_cache(one_notebook_workshop: Path):
    from jupyter_cache import get_cache

    root = one_notebook_workshop
    page = root / "book/_build/html/notebooks/atlas/01-physlite-coffea.html"
    build_book(load_workshop(root), execute="off")
    assert ">42" not in page.read_text()  # committed without outputs: off shows none
    build_book(load_workshop(root), execute="cache")
    assert re.search(r">42\s*\n?</", page.read_text())
    cache = get_cache(root / "book/_build/.work/jupyter_cache")
    assert len(cache.list_cache_records()) == 1


@pytest.mark.notebooks
def test_failing_cell_under_execute_fails_the_build_naming_the_notebook(one_notebook_workshop: Path):
    root = one_notebook_workshop
    nbformat.write(tiny_notebook("raise RuntimeError('the fit did not converge')"),
                   root / "notebooks/atlas/01-physlite-coffea.ipynb")
    with pytest.raises(BookBuildError) as failure:
        build_book(load_workshop(root), execute="force")
    assert "notebooks/atlas/01-physlite-coffea.ipynb" in failure.value.render()
    assert not (root / "book/_build/html").exists()
