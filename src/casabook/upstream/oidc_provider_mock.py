"""oidc-provider-mock: its pages (the login form of the local identity provider) styled from a local copy.

Its templates link Pico CSS on a CDN, so with no network the page an attendee logs in on is
unstyled, and a browser waits on the CDN before drawing it. The same stylesheet comes from npm's
`@picocss/pico` (package.json locks it) and is served by the provider itself.

Run the provider as `python -m casabook.upstream.oidc_provider_mock` with oidc-provider-mock's
own options: its command line, with the workaround applied to the app it creates.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

from casabook.node_packages import find_node_package
from casabook.upstream import applies

DISTRIBUTION = "oidc-provider-mock"
# Pico 2 from jsDelivr in _base.html and error.html since 0.1; checked on 0.3.4.
VERSIONS = ">=0.1,<0.4"

STYLESHEET_PACKAGE = "@picocss/pico"
LOCAL_PREFIX = "/casabook-static/pico/"
# The stylesheet link the templates carry: any Pico 2 file on jsDelivr.
CDN_STYLESHEET = re.compile(r"https://cdn\.jsdelivr\.net/npm/@picocss/pico@2[^/\"']*/css/(?P<file>[\w.-]+\.css)")

log = logging.getLogger(__name__)


def local_stylesheets(source: str) -> str:
    """A template's source with each Pico link on the CDN pointing at the provider's own copy."""
    return CDN_STYLESHEET.sub(lambda m: LOCAL_PREFIX + m.group("file"), source)


def serve_stylesheet_locally(app, css_folder: Path | None) -> None:
    """Make the provider's Flask `app` render its pages with Pico from `css_folder` (the npm
    package's css/ folder), served at /casabook-static/pico/.

    Upstream: oidc-provider-mock's templates (_base.html, error.html) hard-code a jsDelivr link to
    Pico CSS; there is no setting for it. Not reported. Applies to oidc-provider-mock 0.1 to 0.3.
    The CDN link goes even when `css_folder` is None (the package not installed): an unstyled page
    at once is better than a browser waiting on a network that is not there.
    """
    if not applies("serve_stylesheet_locally", DISTRIBUTION, VERSIONS):
        return
    import flask
    from jinja2 import BaseLoader

    inner = app.jinja_loader

    class LocalStylesheets(BaseLoader):
        def get_source(self, environment, template):
            source, filename, uptodate = inner.get_source(environment, template)
            return local_stylesheets(source), filename, uptodate

    # Before the first page is rendered: Flask builds its Jinja environment from this on first use.
    app.jinja_loader = LocalStylesheets()

    def stylesheet(name: str):
        if css_folder is None:
            flask.abort(404)
        return flask.send_from_directory(css_folder, name, mimetype="text/css")

    app.add_url_rule(f"{LOCAL_PREFIX}<path:name>", "casabook_stylesheet", stylesheet)
    if css_folder is None:
        log.warning("%s is not installed (run `npm ci`): the login page is unstyled", STYLESHEET_PACKAGE)


def with_local_stylesheet(make_app: Callable, css_folder: Path | None) -> Callable:
    """oidc-provider-mock's app factory, with `serve_stylesheet_locally` applied to each app it makes."""
    def make(*args, **kwargs):
        app = make_app(*args, **kwargs)
        serve_stylesheet_locally(app, css_folder)
        return app
    return make


def pico_css_folder() -> Path | None:
    package = find_node_package(STYLESHEET_PACKAGE, Path.cwd())
    return package / "css" if package is not None else None


def main(argv: list[str] | None = None) -> None:
    """oidc-provider-mock's command line (`python -m oidc_provider_mock`), with its pages styled locally."""
    import oidc_provider_mock.__main__ as provider_cli

    provider_cli.app = with_local_stylesheet(provider_cli.app, pico_css_folder())
    provider_cli.run(args=argv)


if __name__ == "__main__":
    main()
