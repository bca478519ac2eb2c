"""What an attendee sees, in a real browser: Debian's Chromium driven by Playwright.

The book is built with its launch links pointed at the local hub (JupyterHub, configurable-http-proxy
and the identity provider on free loopback ports) and served on another. For one notebook of each
track an attendee clicks the launch button on the notebook's page, logs in on the identity
provider's own page, sees JupyterLab open the notebook and runs its first cells with Shift+Enter.
The attendees fill the hub's small cap, so the next person sees the "workshop full" page. The same
run checks every page of the book for image alt texts, heading order and a launch button reachable
with the Tab key.

One stack, one book and one browser for the module. Screenshots go to build/screenshots/.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin, urlsplit

import nbformat
import pytest
from browser import (FOCUSED, HEADINGS, IMAGES_WITHOUT_ALT, SCREENSHOTS, decline_news, first_output, heading_problems,
                     is_redirect, launch_chromium, new_person, run_to_first_output, screenshot,
                     screenshot_on_failure, tab_until, wait_for_notebook)

from casabook.book import build_book
from casabook.book.checks import pages
from casabook.book.launch import BUTTON_CLASS
from casabook.book.pages import docname
from casabook.hub.local import DEMO_USERS, DemoUser
from casabook.hub.serve import serve_folder
from casabook.links import default_source
from casabook.model import Workshop, load_workshop
from casabook.testing.fixtures import TEST_CONTACT
from casabook.testing.workshops import copy_workshop

pytestmark = pytest.mark.browser

# One attendee per track takes one of the CAP places; the latecomer finds the workshop full.
ATTENDEES = {"opendata": "alice", "cms": "bob", "atlas": "carol"}
CAP = len(ATTENDEES)
LATECOMER = "dave"
MAX_TABS = 100
CONTACT_EMAIL = TEST_CONTACT.split("<")[1].rstrip(">")


class Book:
    """The built book, served on a loopback port."""

    def __init__(self, url: str, html: Path) -> None:
        self.url = url
        self.html = html

    def page_url(self, page: str) -> str:
        return urljoin(self.url, page)

    def notebook_page(self, notebook_path: str) -> str:
        return f"{docname(notebook_path)}.html"


@pytest.fixture(scope="module")
def workshop(tmp_path_factory) -> Workshop:
    workshop = load_workshop(copy_workshop(tmp_path_factory.mktemp("browser") / "workshop"))
    assert set(ATTENDEES) <= set(workshop.tracks), f"tracks in the repository: {', '.join(workshop.tracks)}"
    return workshop


@pytest.fixture(scope="module")
def stack(hub_factory):
    users = (*DEMO_USERS, *(DemoUser(name) for name in ("carol", LATECOMER)))
    return hub_factory(participants=CAP, users=users)


@pytest.fixture(scope="module")
def book(workshop, stack, tmp_path_factory):
    html = build_book(workshop, hub_override=stack.hub_url, output=tmp_path_factory.mktemp("book") / "html")
    with serve_folder(html) as url:
        yield Book(url=url, html=html)


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def person(chromium):
    page = new_person(chromium)
    yield page
    page.context.close()


def launch_and_log_in(page, stack, name: str, *, login_shot: str | None = None) -> None:
    """On a notebook's page: its launch button, then the identity provider's form, submitted as `name`."""
    button = page.locator(f"a.{BUTTON_CLASS}")
    assert button.count() == 1, f"{page.url}: expected one launch button, found {button.count()}"
    button.click()
    page.get_by_role("textbox").wait_for()
    assert page.url.startswith(stack.oidc_url + "/"), f"the launch button led to {page.url}, not the identity provider"
    page.get_by_placeholder("sub").fill(name)
    if login_shot:
        screenshot(page, login_shot)
    page.get_by_role("button", name="Authorize").click()


# --- attendees -------------------------------------------------------------------------------


@pytest.mark.parametrize("track", list(ATTENDEES))
def test_attendee_launches_a_notebook_from_the_book_and_runs_it_in_jupyterlab(track, workshop, stack, book, person):
    page, attendee = person, ATTENDEES[track]
    entry = workshop.tracks[track].notebooks[0]
    notebook = nbformat.read(workshop.root / entry.path, as_version=4)
    first = first_output(notebook)
    targetpath = default_source(workshop.root, workshop.tracks[track]).targetpath
    first_attendee = track == next(iter(ATTENDEES))

    with screenshot_on_failure(page, f"jupyterlab-{track}"):
        # As a reader finds it: the landing page, the track's page, the notebook's page.
        page.goto(book.url)
        page.get_by_role("main").get_by_role("link", name=workshop.tracks[track].title, exact=True).click()
        page.get_by_role("main").get_by_role("link", name=entry.title, exact=True).first.click()
        assert page.url == book.page_url(book.notebook_page(entry.path))
        if first_attendee:
            screenshot(page, "book")
        launch_and_log_in(page, stack, attendee, login_shot="login" if first_attendee else None)

        wait_for_notebook(page, Path(entry.path).name, len(notebook.cells))
        assert urlsplit(page.url).path == f"/user/{attendee}/lab/tree/{targetpath}/{entry.path}"
        cell = run_to_first_output(page, first)
        prompt = cell.locator(".jp-InputArea-prompt").inner_text().strip()
        assert prompt == f"[{len(first.cells_to_run)}]:", f"{entry.path}: cell {first.cell} ran as {prompt}"
        decline_news(page)
        screenshot(page, f"jupyterlab-{track}")

    assert attendee in stack.cap_status()["admitted"]


def test_past_the_cap_a_new_participant_sees_the_workshop_full_page(workshop, stack, book, person):
    # The attendees above hold the places; run alone, this test lets them take their places first.
    for name in ATTENDEES.values():
        if name not in stack.cap_status()["admitted"]:
            stack.login(name)
    assert len(stack.cap_status()["admitted"]) == CAP

    page = person
    entry = workshop.tracks[next(iter(ATTENDEES))].notebooks[0]
    with screenshot_on_failure(page, "workshop-full"):
        page.goto(book.page_url(book.notebook_page(entry.path)))
        with page.expect_response(lambda response: "/hub/oauth_callback" in response.url) as callback:
            launch_and_log_in(page, stack, LATECOMER)
        assert callback.value.status == 403
        page.get_by_role("heading").filter(has_text="Workshop full").wait_for()
        body = page.locator("body").inner_text()
        assert body.count(f"This workshop is full ({CAP} places)") == 1, body  # said once, under a short heading
        assert CONTACT_EMAIL in body
        screenshot(page, "workshop-full")

    assert LATECOMER not in stack.cap_status()["admitted"]
    assert LATECOMER in [entry["name"] for entry in stack.cap_status()["waitlist"]]


# --- accessibility of every page of the book ------------------------------------------------


def book_pages(book: Book) -> list[str]:
    return [name for name, path in pages(book.html).items() if not is_redirect(path)]


def test_every_image_in_the_book_has_an_alt_text(book, person):
    problems = []
    for name in book_pages(book):
        person.goto(book.page_url(name))
        problems += [f"{name}: {image}" for image in person.evaluate(IMAGES_WITHOUT_ALT)]
    assert not problems, "images without an alt text:\n" + "\n".join(problems)


def test_headings_in_the_book_go_down_one_level_at_a_time(book, person):
    problems = []
    for name in book_pages(book):
        person.goto(book.page_url(name))
        problems += [f"{name}: {problem}" for problem in heading_problems(person.evaluate(HEADINGS))]
    assert not problems, "headings out of order:\n" + "\n".join(problems)


def test_the_launch_button_of_every_notebook_page_is_reached_with_the_tab_key(workshop, book, person):
    problems = []
    notebook_pages = [book.notebook_page(entry.path) for track in workshop.tracks.values() for entry in track.notebooks]
    assert notebook_pages
    for name in notebook_pages:
        person.goto(book.page_url(name))
        button, visited = tab_until(person, BUTTON_CLASS, MAX_TABS)
        if button is None:
            problems.append(f"{name}: the launch button is not reached in {MAX_TABS} Tab presses; "
                            f"the focus went to {', '.join(visited[:12])}, ...")
        elif not button["ring"]:
            problems.append(f"{name}: the launch button has the focus after {len(visited) + 1} Tab presses "
                            "but shows no focus ring")
    assert not problems, "\n".join(problems)


BROKEN_PAGE = """<!doctype html><html lang="en"><body>
<h1>A page</h1><h3>A skipped level</h3><h2>Back in order</h2>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="1" height="1"><img src="x.png" alt="a plot">
<a href="#one">one</a> <a href="#two">two</a>
</body></html>"""


def test_the_page_checks_report_what_a_broken_page_gets_wrong(person):
    """The checks above can fail: a page with an image without alt, a skipped heading level and
    no launch button is reported on each count."""
    person.set_content(BROKEN_PAGE)
    assert len(person.evaluate(IMAGES_WITHOUT_ALT)) == 1
    assert heading_problems(person.evaluate(HEADINGS)) == ["h3 “A skipped level” follows h1 “A page”: h2 skipped"]
    button, visited = tab_until(person, BUTTON_CLASS, 5)
    assert button is None and visited[:2] == ["<a> 'one'", "<a> 'two'"]
    assert heading_problems([(2, "Starts low")]) == ["h2 “Starts low” follows the top of the page: h1 skipped"]
