"""The embedded identity provider does what `casabook hub` says: any name typed on its page logs in
as that name, registered or not. Facilities whose identity provider sends no user name still get
the clear page."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest
from tornado import web
from traitlets.config import Config

from casabook.hub.caps import CappedGenericOAuthenticator
from casabook.hub.config import ClaimOrSubject, configure, load_hub_facility
from casabook.testing.fixtures import REPO_ROOT


@pytest.mark.parametrize(("user_info", "name"), [
    ({"sub": "a1b2", "preferred_username": "alice"}, "alice"),
    ({"sub": "zoe", "email": "zoe"}, "zoe"),
    ({"sub": "zoe", "preferred_username": ""}, "zoe"),
], ids=["claim-wins", "unregistered-name-is-the-subject", "empty-claim-falls-back"])
def test_claim_or_subject(user_info, name):
    assert ClaimOrSubject("preferred_username")(user_info) == name


@pytest.mark.parametrize(("facility", "falls_back"), [("local", True), ("atlas-af", False)],
                         ids=["local-provider-takes-the-subject", "facility-provider-keeps-its-claim"])
def test_only_the_local_provider_falls_back_to_the_subject(tmp_path, facility, falls_back):
    c = configure(Config(), load_hub_facility(REPO_ROOT, facility), REPO_ROOT, contact="Org <org@casabook.invalid>",
                  environ={"CASABOOK_OIDC_CLIENT_SECRET": "s", "ATLAS_IAM_CLIENT_SECRET": "s"}, state_dir=tmp_path,
                  issuer="http://127.0.0.1:9400")
    authenticator = CappedGenericOAuthenticator(config=c)
    assert authenticator.username_claim == "preferred_username"
    if falls_back:
        assert authenticator.user_info_to_username({"sub": "zoe", "email": "zoe"}) == "zoe"
    else:
        with pytest.raises(web.HTTPError) as refused:
            authenticator.user_info_to_username({"sub": "zoe", "email": "zoe"})
        assert refused.value.status_code == 403


def test_a_facility_whose_provider_sends_no_user_name_gets_the_clear_page():
    c = Config()
    c.GenericOAuthenticator.username_claim = "preferred_username"
    c.ParticipantCap.contact = "Org <org@casabook.invalid>"
    authenticator = CappedGenericOAuthenticator(config=c)
    with pytest.raises(web.HTTPError) as refused:
        authenticator.user_info_to_username({"sub": "x-17", "email": "someone@uni.edu"})
    assert refused.value.status_code == 403
    assert "did not send the 'preferred_username' claim" in refused.value.log_message
    assert "org@casabook.invalid" in refused.value.log_message


class _Forms(HTMLParser):
    """The provider's authorization page: each form's method and its named text inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"method": attrs.get("method", "get"), "inputs": []})
        elif tag == "input" and self.forms and attrs.get("type") == "text":
            self.forms[-1]["inputs"].append(attrs.get("name"))


@pytest.mark.hub
def test_a_name_never_registered_typed_on_the_providers_page_logs_in_as_that_name(hub_factory):  # noqa: F811
    stack = hub_factory()
    name = "newcomer-7"
    browser = httpx.Client(base_url=stack.hub_url, timeout=60, follow_redirects=False)
    to_provider = browser.get("/hub/oauth_login", params={"next": "/hub/home"})
    assert to_provider.status_code == 302
    page_url = to_provider.headers["location"]
    page = httpx.get(page_url, timeout=30)
    assert page.status_code == 200
    parser = _Forms()
    parser.feed(page.text)
    typed = [form for form in parser.forms if form["inputs"] == ["sub"]]
    assert typed and typed[0]["method"] == "post", parser.forms
    assert name not in page.text, "the name must be new to the provider"
    # The form has no action: the browser posts it back to the page's own URL.
    consent = httpx.post(page_url, data={"sub": name}, timeout=30)
    assert consent.status_code == 302, consent.text[:500]
    callback = browser.get(consent.headers["location"])
    assert callback.status_code == 302, f"HTTP {callback.status_code}: {callback.text[-800:]}"
    home = browser.get("/hub/home")
    assert home.status_code == 200 and re.search(rf"\b{name}\b", home.text)
    assert stack.api("GET", f"users/{name}").json()["name"] == name
