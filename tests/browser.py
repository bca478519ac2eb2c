"""What the browser tests need around Playwright: Debian's Chromium, JupyterLab read as a person reads it, and the book's accessibility checks.

Playwright drives /usr/bin/chromium (Debian's package): a browser downloaded by a test tool cannot
be fetched here. Every host but 127.0.0.1 resolves to nothing, so no page reaches past this machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "build" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-proxy-server",
    # Nothing an attendee is shown may load from beyond this machine: any other host fails at once.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
VIEWPORT = {"width": 1280, "height": 900}
# Everything here runs on 2 shared cores: a first JupyterLab load or a coffea import can take a while.
ACTION_TIMEOUT_MS = 60_000
KERNEL_TIMEOUT_MS = 240_000


def launch_chromium(playwright):
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: the browser tests drive Debian's chromium "
                           "(`make browser-deps`, or apt-get install chromium fonts-dejavu-core)")
    # Playwright gives the browser a new, empty profile of its own.
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)


def new_person(browser):
    """A page in a fresh browser context: no cookies, as a person arriving for the first time."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    return context.new_page()


@contextmanager
def screenshot_on_failure(page, name: str) -> Iterator[None]:
    """On failure, keep what the browser showed next to the other screenshots; the error goes on."""
    try:
        yield
    except BaseException:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=str(SCREENSHOTS / f"failed-{name}.png"))
        except Exception:  # noqa: BLE001 (the page may be gone; the original error matters)
            pass
        raise


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


# --- a notebook in JupyterLab -----------------------------------------------------------------


@dataclass(frozen=True)
class FirstOutput:
    """The code cells to run (in order) up to the first one whose committed output shows text."""

    cells_to_run: list[int]
    text: str

    @property
    def cell(self) -> int:
        return self.cells_to_run[-1]


def _output_text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return "".join(output.get("text", ""))
    if output.get("output_type") in ("execute_result", "display_data"):
        return "".join(output.get("data", {}).get("text/plain", ""))
    return ""


def first_output(notebook: nbformat.NotebookNode) -> FirstOutput:
    """The imports cell usually prints nothing; the first cell that printed something when the
    notebook was committed must print it again, after the code cells before it have run."""
    code_cells: list[int] = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        code_cells.append(index)
        for output in cell.get("outputs", []):
            line = next((line.strip() for line in _output_text(output).splitlines() if line.strip()), "")
            if line:
                return FirstOutput(code_cells, line)
    raise AssertionError("no code cell of this notebook has a committed text output to compare with")


NOTEBOOK = ".jp-NotebookPanel"
CELLS = f"{NOTEBOOK} .jp-Cell"
KERNEL_READY = """() => {
  const name = document.querySelector('.jp-NotebookPanel-toolbar .jp-KernelName');
  const status = document.querySelector('.jp-NotebookPanel-toolbar [data-status]');
  return !!name && !!status && name.textContent.trim() !== '' && name.textContent.trim() !== 'No Kernel'
    && status.dataset.status === 'idle';
}"""
MARK_STALE = "outputs => outputs.forEach(output => output.setAttribute('data-casabook-stale', ''))"


def wait_for_notebook(page, file_name: str, cell_count: int) -> None:
    """The notebook panel, its tab named after the file, every cell drawn and its kernel idle."""
    page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current", has_text=file_name).wait_for(
        timeout=KERNEL_TIMEOUT_MS)
    page.wait_for_function(f"n => document.querySelectorAll('{CELLS}').length === n", arg=cell_count,
                           timeout=KERNEL_TIMEOUT_MS)
    page.wait_for_function(KERNEL_READY, timeout=KERNEL_TIMEOUT_MS)


def run_to_first_output(page, first: FirstOutput):
    """Click into each code cell and press Shift+Enter; returns the target cell's fresh output.

    The committed outputs are on screen before anything runs, so they are marked first: only an
    output drawn by this run (JupyterLab replaces the output nodes when a cell runs) counts.
    """
    cells = page.locator(CELLS)
    target = cells.nth(first.cell)
    target.locator(".jp-OutputArea-output").evaluate_all(MARK_STALE)
    for index in first.cells_to_run:
        cells.nth(index).locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
    fresh = target.locator(".jp-OutputArea-output:not([data-casabook-stale])", has_text=first.text)
    fresh.first.wait_for(timeout=KERNEL_TIMEOUT_MS)
    target.scroll_into_view_if_needed()
    return target


def decline_news(page) -> None:
    """JupyterLab asks once whether to fetch Jupyter news; an attendee answers No (it hides the notebook's corner)."""
    answer = page.locator(".jp-toastContainer").get_by_role("button", name="No", exact=True)
    if answer.is_visible():
        answer.click()
        answer.wait_for(state="detached")


# --- accessibility of the book's pages ---------------------------------------------------------

# Elements the browser does not draw (display: none, hidden, aria-hidden) are not read out either.
_SHOWN = """el => el.checkVisibility({visibilityProperty: true}) && !el.closest('[aria-hidden="true"]')"""

IMAGES_WITHOUT_ALT = f"""() => {{
  const shown = {_SHOWN};
  return [...document.querySelectorAll('img')].filter(shown)
    .filter(img => !(img.getAttribute('alt') || '').trim())
    .map(img => img.outerHTML.slice(0, 160));
}}"""

HEADINGS = f"""() => {{
  const shown = {_SHOWN};
  return [...document.querySelectorAll('h1, h2, h3, h4, h5, h6, [role="heading"]')].filter(shown)
    .map(h => [h.getAttribute('aria-level') ? Number(h.getAttribute('aria-level')) : Number(h.tagName.slice(1)),
               h.textContent.replace(/\\s+/g, ' ').replace(/#$/, '').trim().slice(0, 80)]);
}}"""

FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  return {tag: el.tagName.toLowerCase(), classes: [...el.classList], href: el.getAttribute('href'),
          text: (el.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 60),
          ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0};
}"""


def tab_until(page, css_class: str, max_tabs: int) -> tuple[dict | None, list[str]]:
    """Press Tab from where the focus is until an element with `css_class` has it.

    Returns that element's description (or None) and what had the focus on the way.
    """
    visited = []
    for _ in range(max_tabs):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused and css_class in focused["classes"]:
            return focused, visited
        visited.append(f"<{focused['tag']}> {focused['text']!r}" if focused else "(nothing)")
    return None, visited


def heading_problems(headings: list[tuple[int, str]]) -> list[str]:
    """Going down, one level at a time from h1; going back up any number of levels is fine."""
    if not headings:
        return ["no heading at all (expected an h1 with the page title)"]
    problems = []
    previous_level, previous_text = 0, "the top of the page"
    for level, text in headings:
        if level > previous_level + 1:
            where = f"h{previous_level} “{previous_text}”" if previous_level else previous_text
            problems.append(f"h{level} “{text}” follows {where}: h{previous_level + 1} skipped")
        previous_level, previous_text = level, text
    return problems


def is_redirect(page_file: Path) -> bool:
    """Sphinx's index.html only sends the reader on to the landing page (which is checked itself)."""
    head = page_file.read_text(encoding="utf-8", errors="replace")[:600].lower()
    return 'http-equiv="refresh"' in head
