"""casabook.upstream: each workaround's upstream behaviour is still there on the installed version,
and the workaround mends it; outside the versions known to need it, a workaround does nothing.

When a "still there" test fails, upstream has fixed the bug: remove the workaround it names (and
its tests), or narrow its VERSIONS to the releases that still need it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlencode

import docutils.core
import pytest
import tornado.gen
from docutils import nodes
from offline import is_remote, page_loads, remote_loads

from casabook import upstream
from casabook.upstream import jsonschema as for_jsonschema
from casabook.upstream import jupyterlab as for_jupyterlab
from casabook.upstream import myst_parser as for_myst_parser
from casabook.upstream import nbgitpuller as for_nbgitpuller
from casabook.upstream import oidc_provider_mock as for_oidc_provider_mock
from casabook.upstream import sphinx as for_sphinx

REPO = Path(__file__).resolve().parents[1]

WORKAROUNDS = [
    pytest.param(for_jsonschema, for_jsonschema.import_without_iri_grammar, id="jsonschema-iri-grammar"),
    pytest.param(for_jupyterlab, for_jupyterlab.skip_yarn_config, id="jupyterlab-yarn-config"),
    pytest.param(for_nbgitpuller, for_nbgitpuller.quicker_pull_polling, id="nbgitpuller-pull-polling"),
    pytest.param(for_myst_parser, for_myst_parser.unescape_link_urls, id="myst-parser-link-urls"),
    pytest.param(for_sphinx, for_sphinx.rewrite_all_when_navigation_changes, id="sphinx-stale-navigation"),
    pytest.param(for_sphinx, for_sphinx.skip_parent_rewrites, id="sphinx-parent-rewrites"),
    pytest.param(for_oidc_provider_mock, for_oidc_provider_mock.serve_stylesheet_locally,
                 id="oidc-provider-mock-cdn-stylesheet"),
]


def fixed(what: str, module, workaround) -> str:
    installed = upstream.installed_version(module.DISTRIBUTION)
    return (f"upstream fixed {what} in {module.DISTRIBUTION} {installed}: remove the workaround "
            f"{workaround.__module__}.{workaround.__qualname__}")


def fresh_python(code: str) -> object:
    """Run `code` in a new interpreter (nothing imported yet) and return the JSON it prints last."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the guard -----------------------------------------------------------------------------------

@pytest.mark.parametrize("module, workaround", WORKAROUNDS)
def test_installed_version_is_one_the_workaround_applies_to(module, workaround):
    installed = upstream.installed_version(module.DISTRIBUTION)
    assert upstream.applies(f"{workaround.__qualname__}-range-check", module.DISTRIBUTION, module.VERSIONS), (
        f"{module.DISTRIBUTION} {installed} is outside {module.VERSIONS}, so {workaround.__module__}."
        f"{workaround.__qualname__} is off: if its 'still there' test passes, extend {module.__name__}.VERSIONS")


@pytest.mark.parametrize("distribution, versions, why", [
    pytest.param("jsonschema", "<1", "outside <1, the versions known to need it", id="version-outside-range"),
    pytest.param("casabook-no-such-distribution", ">=0", "is not installed", id="distribution-not-installed"),
])
def test_guard_refuses_and_says_why_at_debug_level(distribution, versions, why, caplog):
    with caplog.at_level(logging.DEBUG, logger="casabook.upstream"):
        assert not upstream.applies(f"guard-{distribution}", distribution, versions)
    assert any(why in record.getMessage() and record.levelno == logging.DEBUG for record in caplog.records)


@pytest.fixture
def original_yarn_config():
    import jupyterlab.commands

    original = jupyterlab.commands._yarn_config
    yield original
    jupyterlab.commands._yarn_config = original


@pytest.fixture
def original_handler_gen():
    import nbgitpuller.handlers

    original = nbgitpuller.handlers.gen
    yield original
    nbgitpuller.handlers.gen = original


def test_workarounds_do_nothing_outside_their_versions(monkeypatch, caplog, original_yarn_config,
                                                       original_handler_gen):
    import jupyterlab.commands
    import nbgitpuller.handlers

    monkeypatch.setattr(for_jupyterlab, "VERSIONS", "<1")
    monkeypatch.setattr(for_nbgitpuller, "VERSIONS", "<1")
    with caplog.at_level(logging.DEBUG, logger="casabook.upstream"):
        for_jupyterlab.skip_yarn_config()
        for_nbgitpuller.quicker_pull_polling()
    assert jupyterlab.commands._yarn_config is original_yarn_config
    assert nbgitpuller.handlers.gen is original_handler_gen
    skipped = [record.getMessage() for record in caplog.records if record.levelno == logging.DEBUG]
    assert any(message.startswith("skip_yarn_config skipped: jupyterlab ") for message in skipped), skipped
    assert any(message.startswith("quicker_pull_polling skipped: nbgitpuller ") for message in skipped), skipped


# --- jsonschema ----------------------------------------------------------------------------------

def test_jsonschema_still_compiles_the_iri_grammar_on_import():
    imported = fresh_python("""
        import json, sys
        import jsonschema
        print(json.dumps("rfc3987_syntax" in sys.modules))
    """)
    assert imported, fixed("the eager import of rfc3987_syntax", for_jsonschema,
                           for_jsonschema.import_without_iri_grammar)


def test_jsonschema_imported_without_the_iri_grammar():
    found = fresh_python("""
        import json, sys
        from casabook.upstream.jsonschema import import_without_iri_grammar
        import_without_iri_grammar()
        import jsonschema
        grammar_skipped = "rfc3987_syntax" not in sys.modules
        checks = jsonschema.Draft7Validator.FORMAT_CHECKER.checkers
        import rfc3987_syntax  # still importable for anyone who wants it
        print(json.dumps([grammar_skipped, "iri" in checks, "email" in checks]))
    """)
    assert found == [True, False, True]


# --- JupyterLab ----------------------------------------------------------------------------------

YARN_CALLS = """
    import json, sys
    spawned = []
    sys.addaudithook(lambda event, args: spawned.append([str(a) for a in args[1]])
                     if event == "subprocess.Popen" else None)
    {before}
    from jupyterlab.commands import YARN_DEFAULT_REGISTRY, AppOptions, _AppHandler
    handler = _AppHandler(AppOptions())  # what every JupyterLab server start builds
    yarn = [args for args in spawned if any(a.endswith("yarn.js") for a in args) and "config" in args]
    print(json.dumps([len(yarn), handler.registry == YARN_DEFAULT_REGISTRY]))
"""


def test_jupyterlab_still_runs_yarn_config_at_every_start():
    assert shutil.which("node"), "JupyterLab asks yarn only where node is on PATH; the test needs node"
    yarn_calls, _ = fresh_python(YARN_CALLS.format(before=""))
    assert yarn_calls == 1, fixed("the yarn config subprocess at start", for_jupyterlab,
                                  for_jupyterlab.skip_yarn_config)


def test_jupyterlab_starts_without_running_yarn_and_keeps_the_default_registry():
    found = fresh_python(YARN_CALLS.format(
        before="from casabook.upstream.jupyterlab import skip_yarn_config; skip_yarn_config()"))
    assert found == [0, True]


# --- nbgitpuller ---------------------------------------------------------------------------------

def test_nbgitpuller_still_polls_git_every_half_second():
    import inspect

    import nbgitpuller.handlers

    source = inspect.getsource(nbgitpuller.handlers.SyncHandler)
    sleeps = [float(seconds) for seconds in re.findall(r"gen\.sleep\(([0-9.]+)\)", source)]
    assert any(seconds > for_nbgitpuller.PULL_POLL_SECONDS for seconds in sleeps), fixed(
        "the 0.5 s poll of the pull handler", for_nbgitpuller, for_nbgitpuller.quicker_pull_polling)


def test_nbgitpuller_handler_sleeps_are_capped_and_tornado_is_untouched(original_handler_gen):
    import nbgitpuller.handlers

    tornado_sleep = tornado.gen.sleep
    for_nbgitpuller.quicker_pull_polling()

    async def a_long_poll():
        # A 30 s sleep cut to the poll interval finishes well inside the 10 s allowed.
        await asyncio.wait_for(nbgitpuller.handlers.gen.sleep(30), timeout=10)

    asyncio.run(a_long_poll())
    assert tornado.gen.sleep is tornado_sleep
    assert nbgitpuller.handlers.gen.with_timeout is tornado.gen.with_timeout


# --- myst-parser ---------------------------------------------------------------------------------

LINK = "[x](https://hub.invalid/?a=1&b=2)"


def myst_doctree(text: str) -> nodes.document:
    from myst_parser.parsers.docutils_ import Parser

    return docutils.core.publish_doctree(text, parser=Parser(), settings_overrides={"report_level": 5})


def html_of(doctree: nodes.document) -> str:
    return docutils.core.publish_from_doctree(doctree, writer_name="html5").decode()


def test_myst_parser_still_escapes_link_urls_twice():
    assert for_myst_parser.escapes_link_urls.__wrapped__(), fixed(
        "the escaping of link URLs (issue 760)", for_myst_parser, for_myst_parser.unescape_link_urls)
    assert 'href="https://hub.invalid/?a=1&amp;amp;b=2"' in html_of(myst_doctree(LINK))


def test_myst_link_urls_escaped_once_in_html():
    doctree = myst_doctree(LINK)
    for_myst_parser.unescape_link_urls(doctree)
    assert [ref["refuri"] for ref in doctree.findall(nodes.reference)] == ["https://hub.invalid/?a=1&b=2"]
    assert 'href="https://hub.invalid/?a=1&amp;b=2"' in html_of(doctree)


# --- Sphinx --------------------------------------------------------------------------------------

CONF = """
extensions = []
html_theme = "alabaster"
html_sidebars = {{"**": ["navigation.html"]}}
{setup}
"""
CONNECT = {
    "none": "",
    "navigation": textwrap.dedent("""
        def setup(app):
            from casabook.upstream.sphinx import rewrite_all_when_navigation_changes
            app.connect("env-get-updated", rewrite_all_when_navigation_changes)
    """),
    "parents": textwrap.dedent("""
        def setup(app):
            from casabook.upstream.sphinx import skip_parent_rewrites
            app.connect("write-started", skip_parent_rewrites)
    """),
}


def sphinx_project(root: Path, connect: str) -> Path:
    source = root / "src"
    source.mkdir()
    (source / "conf.py").write_text(CONF.format(setup=CONNECT[connect]))
    # As in the book: the root, a track page holding a hidden toctree, the track's pages.
    (source / "index.rst").write_text("Book\n====\n\n.. toctree::\n   :hidden:\n\n   track\n")
    (source / "track.rst").write_text("Track\n=====\n\n.. toctree::\n   :hidden:\n\n   a\n   b\n")
    (source / "a.rst").write_text("Alpha\n=====\n\nText.\n")
    (source / "b.rst").write_text("Beta\n====\n\nText.\n")
    return source


def edit(path: Path, text: str) -> None:
    path.write_text(text)
    later = path.stat().st_mtime + 10  # certainly newer than the last build, whatever the clock's grain
    os.utime(path, (later, later))


def build(source: Path) -> list[str]:
    """Build the project's HTML incrementally; the pages written, in order."""
    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    written: list[str] = []
    out = source.parent / "out"
    with patch_docutils(source), docutils_namespace():
        app = Sphinx(str(source), str(source), str(out / "html"), str(out / "doctrees"), "html",
                     status=None, warning=None)
        app.connect("html-page-context", lambda app, pagename, *rest: written.append(pagename))
        app.build()
    return [page for page in written if page in {"index", "track", "a", "b"}]


def stale_sidebar_after_retitling(tmp_path: Path, connect: str) -> bool:
    source = sphinx_project(tmp_path, connect)
    build(source)
    edit(source / "a.rst", "Alpha renamed\n=============\n\nText.\n")
    build(source)
    return "Alpha renamed" not in (tmp_path / "out" / "html" / "b.html").read_text()


def test_sphinx_still_leaves_other_pages_sidebars_stale(tmp_path: Path):
    assert stale_sidebar_after_retitling(tmp_path, "none"), fixed(
        "stale sidebars on incremental builds (issue 5506)", for_sphinx, for_sphinx.rewrite_all_when_navigation_changes)


def test_sphinx_rewrites_every_page_when_a_title_changes(tmp_path: Path):
    assert not stale_sidebar_after_retitling(tmp_path, "navigation")


def pages_rewritten_after_editing_a_body(tmp_path: Path, connect: str) -> list[str]:
    source = sphinx_project(tmp_path, connect)
    assert sorted(build(source)) == ["a", "b", "index", "track"]
    edit(source / "a.rst", "Alpha\n=====\n\nOther text.\n")
    return sorted(build(source))


def test_sphinx_still_rewrites_toctree_parents_of_a_changed_page(tmp_path: Path):
    assert pages_rewritten_after_editing_a_body(tmp_path, "none") == ["a", "index", "track"], fixed(
        "rewriting the toctree parents of a changed page", for_sphinx, for_sphinx.skip_parent_rewrites)


def test_sphinx_rewrites_only_the_changed_page_and_the_root(tmp_path: Path):
    # Sphinx writes its root document at every build, whatever changed.
    assert pages_rewritten_after_editing_a_body(tmp_path, "parents") == ["a", "index"]


# --- oidc-provider-mock ----------------------------------------------------------------------------

# What an attendee sees first: the provider's authorization form (any client, as the local hub's).
AUTHORIZE = ("/oauth2/authorize", {"client_id": "casabook-test", "response_type": "code", "scope": "openid",
                                   "redirect_uri": "http://127.0.0.1:9/hub/oauth_callback"})
PICO_CSS = REPO / "node_modules" / "@picocss" / "pico" / "css"


def authorization_page(app) -> str:
    path, query = AUTHORIZE
    response = app.test_client().get(path, query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def test_oidc_provider_mock_still_links_its_stylesheet_on_a_cdn():
    import oidc_provider_mock

    assert remote_loads(authorization_page(oidc_provider_mock.app())), fixed(
        "the CDN stylesheet of its pages", for_oidc_provider_mock, for_oidc_provider_mock.serve_stylesheet_locally)


def test_oidc_provider_mock_without_pico_installed_links_nothing_remote(caplog):
    import oidc_provider_mock

    with caplog.at_level(logging.WARNING, logger="casabook.upstream"):
        app = for_oidc_provider_mock.with_local_stylesheet(oidc_provider_mock.app, None)()
    page = authorization_page(app)
    assert remote_loads(page) == [] and for_oidc_provider_mock.LOCAL_PREFIX in page
    assert app.test_client().get(for_oidc_provider_mock.LOCAL_PREFIX + "pico.min.css").status_code == 404
    assert any("npm ci" in record.getMessage() for record in caplog.records)


@pytest.fixture
def provider_process(tmp_path: Path):
    """The provider as the local hub starts it, through the workaround's command line, on a free port."""
    import httpx

    from casabook.hub.local import free_port

    port = free_port()
    log = tmp_path / "provider.log"
    with open(log, "wb") as output:  # a pipe nobody reads would fill up and stop the provider
        process = subprocess.Popen([sys.executable, "-W", "ignore", "-m", "casabook.upstream.oidc_provider_mock",
                                    "--host", "127.0.0.1", "--port", str(port)], cwd=REPO,
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        # Refused connections are retried, backing off (0.5 s, 1 s, ... about a minute in all).
        with httpx.Client(transport=httpx.HTTPTransport(retries=7)) as client:
            try:
                client.get(f"{url}/.well-known/openid-configuration", timeout=5).raise_for_status()
            except httpx.HTTPError as error:
                raise AssertionError(f"the identity provider did not answer on {url}: {error}\n"
                                     f"{log.read_text(errors='replace')[-2000:]}") from error
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_oidc_provider_mock_login_page_loads_its_stylesheet_from_the_provider(provider_process: str):
    import httpx

    path, query = AUTHORIZE
    page = httpx.get(provider_process + path, params=query, timeout=10)
    assert page.status_code == 200 and "<form" in page.text
    assert remote_loads(page.text, provider_process + path) == []
    stylesheets = [url for what, url in page_loads(page.text) if what.startswith("<link rel=stylesheet")]
    assert stylesheets == [for_oidc_provider_mock.LOCAL_PREFIX + "pico.min.css"]
    served = httpx.get(provider_process + stylesheets[0], timeout=10)
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/css")
    assert served.content == (PICO_CSS / "pico.min.css").read_bytes()  # npm's file, as package-lock.json locks it


PICO_APPLIED = """() => ({
  sheets: [...document.styleSheets].filter(sheet => sheet.href && sheet.cssRules.length > 100).length,
  font: getComputedStyle(document.body).fontFamily,
})"""


@pytest.mark.browser
def test_oidc_provider_mock_login_page_is_styled_with_no_network(provider_process: str):
    from browser import launch_chromium, new_person, screenshot, screenshot_on_failure
    from playwright.sync_api import sync_playwright

    path, query = AUTHORIZE
    refused: list[str] = []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = new_person(browser)
            page.context.route("**/*", lambda route: (refused.append(route.request.url), route.abort())
                               if is_remote(route.request.url) else route.continue_())
            with screenshot_on_failure(page, "login-offline"):
                page.goto(f"{provider_process}{path}?{urlencode(query)}", wait_until="load")
                found = page.evaluate(PICO_APPLIED)
                screenshot(page, "login-offline")
        finally:
            browser.close()
    assert refused == []
    assert found["sheets"] == 1  # Pico, served by the provider and read by the browser
    assert "system-ui" in found["font"]  # Pico's font stack, not the browser's default serif
