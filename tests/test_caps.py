"""The participant cap on the real authenticator classes, decided case by case with no hub running.

The same cases run against a real hub in test_hub_integration.py (races, restarts, the 403 page).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from tornado import web
from traitlets.config import Config
from traitlets.utils.importstring import import_item

import coffea_hub_extra
from casabook.hub.caps import CappedGenericOAuthenticator, CappedGitHubOAuthenticator
from casabook.hub.config import configure, load_hub_facility

REPO = Path(__file__).resolve().parents[1]
CONTACT = "Org <org@casabook.invalid>"
SECRETS = {"CASABOOK_OIDC_CLIENT_SECRET": "s", "CMS_IAM_CLIENT_SECRET": "s", "CILOGON_CLIENT_SECRET": "s"}
FACILITIES = ["local", "coffea-casa-cms", "coffea-opendata"]
CILOGON_IDP = "http://orcid.org/oauth/authorize"


@pytest.fixture(autouse=True)
def coffea_authenticator(monkeypatch):
    """hub-config/coffea-casa-cms.yml names coffea-casa's own authenticator: its stand-in takes its place."""
    coffea_hub_extra.install(monkeypatch)


def authenticator(facility: str, tmp_path: Path, participants: int):
    c = configure(Config(), load_hub_facility(REPO, facility), REPO, contact=CONTACT, environ=SECRETS,
                  state_dir=tmp_path, issuer="http://127.0.0.1:9400", participants=participants)
    return configured_class(c)(config=c)


def configured_class(c: Config) -> type:
    """The class the hub would instantiate: a name, or (a facility's own class, capped) the class."""
    named = c.JupyterHub.authenticator_class
    return import_item(named) if isinstance(named, str) else named


def auth_model(name: str, *, admin: bool | None = None, groups: list[str] | None = None) -> dict:
    """What OAuthenticator hands to check_allowed after talking to the identity provider."""
    user_info = {"preferred_username": name, "email": name, "idp": CILOGON_IDP, "groups": groups or []}
    model = {"name": name, "admin": admin, "auth_state": {"oauth_user": user_info, "cilogon_user": user_info}}
    if groups is not None:
        model["groups"] = groups
    return model


async def login(auth, name: str, **model) -> str:
    """'admitted', 'full' (the 403 page) or 'refused' (not eligible)."""
    try:
        return "admitted" if await auth.check_allowed(name, auth_model(name, **model)) else "refused"
    except web.HTTPError as error:
        assert error.status_code == 403
        return "full"


# id, facility, cap, participants already in, who logs in, their auth model, expected
CASES = [
    ("cap-open-new-participant-admitted", "local", 2, ["alice"], "bob", {}, "admitted"),
    ("cap-full-new-participant-refused", "local", 2, ["alice", "bob"], "carol", {}, "full"),
    ("cap-full-returning-participant-admitted", "local", 2, ["alice", "bob"], "alice", {}, "admitted"),
    ("cap-full-organiser-from-admin-users-admitted", "local", 2, ["alice", "bob"], "organiser", {"admin": True}, "admitted"),
    ("cap-full-organiser-from-admin-group-admitted", "coffea-casa-cms", 1, ["alice"], "olga",
     {"admin": True, "groups": ["cms", "cms/casabook-organisers"]}, "admitted"),
    ("cms-member-admitted", "coffea-casa-cms", 2, [], "alice", {"groups": ["cms"]}, "admitted"),
    ("not-a-cms-member-refused-before-the-cap", "coffea-casa-cms", 2, [], "mallory", {"groups": ["atlas"]}, "refused"),
    ("cap-full-not-a-member-refused-not-waitlisted", "coffea-casa-cms", 1, ["alice"], "mallory", {"groups": ["atlas"]}, "refused"),
    ("cilogon-allowed-idp-admitted", "coffea-opendata", 2, [], "alice@uni.edu", {}, "admitted"),
    ("cilogon-cap-full-refused", "coffea-opendata", 1, ["alice@uni.edu"], "bob@uni.edu", {}, "full"),
    ("cilogon-cap-full-organiser-admitted", "coffea-opendata", 1, ["alice@uni.edu"],
     "organisers@casabook.example.org", {"admin": True}, "admitted"),
]


@pytest.mark.parametrize(("facility", "cap", "before", "name", "model", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_cap_decision(tmp_path, facility, cap, before, name, model, expected):
    auth = authenticator(facility, tmp_path, cap)
    for earlier in before:
        earlier_model = {"groups": ["cms"]} if facility == "coffea-casa-cms" else {}
        assert asyncio.run(login(auth, earlier, **earlier_model)) == "admitted"
    assert asyncio.run(login(auth, name, **model)) == expected
    waitlisted = [entry["name"] for entry in auth.waitlist]
    assert waitlisted == ([name] if expected == "full" else [])
    assert len(auth.admitted) <= cap


def test_organisers_do_not_take_places(tmp_path):
    auth = authenticator("local", tmp_path, 1)
    assert asyncio.run(login(auth, "organiser", admin=True)) == "admitted"
    assert asyncio.run(login(auth, "alice")) == "admitted"
    assert auth.admitted == ["alice"]


def test_full_page_names_the_places_and_the_organisers(tmp_path):
    auth = authenticator("local", tmp_path, 1)
    asyncio.run(login(auth, "alice"))
    with pytest.raises(web.HTTPError) as error:
        asyncio.run(auth.check_allowed("bob", auth_model("bob")))
    assert error.value.status_code == 403
    assert error.value.log_message.startswith("This workshop is full (1 places).")
    assert CONTACT in error.value.log_message
    # JupyterHub 5 puts only the short reason on the page unless the message is jupyterhub_message.
    assert error.value.reason == "Workshop full" and error.value.jupyterhub_message == error.value.log_message


@pytest.mark.parametrize("facility", ["local", "coffea-opendata"])
def test_concurrent_logins_never_overshoot(tmp_path, facility):
    auth = authenticator(facility, tmp_path, 3)

    async def crowd():
        return await asyncio.gather(*(login(auth, f"user{i}@uni.edu") for i in range(9)))

    outcomes = asyncio.run(crowd())
    assert outcomes.count("admitted") == 3 and outcomes.count("full") == 6
    assert len(auth.admitted) == 3


def test_allow_all_is_forced_off_and_kept_as_any_identity(tmp_path):
    c = Config()
    c.Authenticator.allow_all = True
    c.ParticipantCap.participants = 1
    auth = CappedGenericOAuthenticator(config=c)
    assert auth.allow_all is False
    assert auth.open_to_any_identity is True
    auth.allow_all = True
    assert auth.allow_all is False


def test_count_is_rebuilt_from_the_hub_database_at_start(tmp_path):
    auth = authenticator("local", tmp_path, 2)
    # JupyterHub calls add_user for every user in its database when it starts.
    for user in (SimpleNamespace(name="alice", admin=False), SimpleNamespace(name="organiser", admin=True),
                 SimpleNamespace(name="bob", admin=False)):
        auth.add_user(user)
    assert auth.admitted == ["alice", "bob"]
    assert asyncio.run(login(auth, "carol")) == "full"
    assert asyncio.run(login(auth, "bob")) == "admitted"


def test_deleting_a_participant_frees_the_place(tmp_path):
    auth = authenticator("local", tmp_path, 1)
    asyncio.run(login(auth, "alice"))
    auth.delete_user(SimpleNamespace(name="alice", admin=False))
    assert asyncio.run(login(auth, "bob")) == "admitted"


def test_waitlist_file_has_each_refused_person_once_and_survives_a_restart(tmp_path):
    auth = authenticator("local", tmp_path, 1)
    for name in ("alice", "bob", "bob", "carol"):
        asyncio.run(login(auth, name))
    lines = [json.loads(line) for line in (tmp_path / "waitlist.jsonl").read_text().splitlines()]
    assert [entry["name"] for entry in lines] == ["bob", "carol"]
    restarted = authenticator("local", tmp_path, 1)
    assert [entry["name"] for entry in restarted.waitlist] == ["bob", "carol"]


# id, authenticator class, the user info the provider sends, expected status
NO_NAME_CASES = [
    ("generic-no-preferred-username-403", "local", {"email": "x@uni.edu"}, 403),
    ("cilogon-no-email-claim-403", "coffea-opendata", {"idp": CILOGON_IDP, "sub": "x"}, 403),
    ("cilogon-unlisted-idp-stays-403", "coffea-opendata", {"idp": "https://idp.example/idp", "email": "x"}, 403),
]


@pytest.mark.parametrize(("facility", "user_info", "status"), [c[1:] for c in NO_NAME_CASES],
                         ids=[c[0] for c in NO_NAME_CASES])
def test_identity_without_a_user_name_is_a_clear_4xx(tmp_path, facility, user_info, status):
    auth = authenticator(facility, tmp_path, 5)
    with pytest.raises(web.HTTPError) as error:
        auth.user_info_to_username(user_info)
    assert error.value.status_code == status


def test_missing_claim_page_names_the_claim_and_the_organisers(tmp_path):
    auth = authenticator("local", tmp_path, 5)
    with pytest.raises(web.HTTPError) as error:
        auth.user_info_to_username({"email": "x@uni.edu"})
    assert "'preferred_username' claim" in error.value.log_message and CONTACT in error.value.log_message


def test_github_authenticator_takes_the_cap_too(tmp_path):
    c = Config()
    c.GitHubOAuthenticator.allowed_organizations = {"casabook-workshop"}
    c.ParticipantCap.participants = 1
    auth = CappedGitHubOAuthenticator(config=c)
    model = {"name": "octo", "admin": None, "auth_state": {"github_user": {"login": "octo"}}}
    assert auth.open_to_any_identity is False
    # Organisation membership is asked of GitHub's API, out of reach here: take any identity.
    auth.open_to_any_identity = True
    assert asyncio.run(auth.check_allowed("octo", model)) is True
    with pytest.raises(web.HTTPError):
        asyncio.run(auth.check_allowed("hubot", {**model, "name": "hubot"}))


@pytest.mark.parametrize("facility", FACILITIES)
def test_identity_provider_calls_have_a_client_sized_for_a_crowd(tmp_path, facility):
    # Tornado's shared client (10 at a time, 20 s queue limit) turned a crowd's logins into HTTP 500s.
    client = authenticator(facility, tmp_path, participants=3).http_client
    assert client.max_clients >= 64
    assert client.defaults["request_timeout"] >= 60


# --- the cap on a facility's own authenticator class ------------------------------------------


def test_a_facilitys_own_authenticator_keeps_its_behaviour_and_the_cap(tmp_path):
    # hub-config/coffea-casa-cms.yml names coffea-casa's CoffeaOAuthenticator (its stand-in here),
    # which writes each user's token before their server starts.
    c = configure(Config(), load_hub_facility(REPO, "coffea-casa-cms"), REPO, contact=CONTACT, environ=SECRETS,
                  state_dir=tmp_path, participants=1)
    c.CoffeaOAuthenticator.secrets_dir = str(tmp_path / "secrets")
    auth = configured_class(c)(config=c)
    assert isinstance(auth, coffea_hub_extra.CoffeaOAuthenticator)
    assert type(auth).__mro__[1:3] == (CappedGenericOAuthenticator.__mro__[1], coffea_hub_extra.CoffeaOAuthenticator)
    assert asyncio.run(login(auth, "alice", groups=["cms"])) == "admitted"
    user = SimpleNamespace(name="alice", get_auth_state=lambda: asyncio.sleep(0, {"access_token": "tok-alice"}))
    asyncio.run(auth.pre_spawn_start(user, SimpleNamespace(user=user)))
    assert coffea_hub_extra.token_file(tmp_path / "secrets", "alice").read_text() == "tok-alice"
    assert asyncio.run(login(auth, "bob", groups=["cms"])) == "full"
    assert asyncio.run(login(auth, "mallory", groups=["atlas"])) == "refused"
    assert [entry["name"] for entry in auth.waitlist] == ["bob"]


# id, authenticator.class_name, the error code
OWN_CLASS_ERRORS = [
    ("no-such-module", "oauthenticator.nowhere.NoAuthenticator", "unknown-authenticator-class"),
    ("no-such-class", "oauthenticator.generic.NoAuthenticator", "unknown-authenticator-class"),
    ("not-an-authenticator", "os.path.join", "unknown-authenticator-class"),
    ("another-kind", "oauthenticator.github.GitHubOAuthenticator", "authenticator-class-kind"),
]


@pytest.mark.parametrize(("class_name", "code"), [e[1:] for e in OWN_CLASS_ERRORS], ids=[e[0] for e in OWN_CLASS_ERRORS])
def test_an_unusable_own_authenticator_class_is_a_clear_error(tmp_path, class_name, code):
    from casabook.errors import CasabookError

    facility = load_hub_facility(REPO, "coffea-casa-cms")
    facility = facility.model_copy(update={"authenticator": facility.authenticator.model_copy(
        update={"class_name": class_name})})
    with pytest.raises(CasabookError) as error:
        configure(Config(), facility, REPO, contact=CONTACT, environ=SECRETS, state_dir=tmp_path)
    assert error.value.code == code
    assert error.value.key == "authenticator.class_name" and class_name in error.value.message


def test_capping_is_idempotent_and_any_authenticator_takes_it():
    from jupyterhub.auth import DummyAuthenticator

    from casabook.hub.caps import ParticipantCap, capped

    capped_dummy = capped(DummyAuthenticator)
    assert capped(DummyAuthenticator) is capped_dummy and capped(capped_dummy) is capped_dummy
    auth = capped_dummy(config=Config({"ParticipantCap": {"participants": 1, "open_to_any_identity": True}}))
    assert isinstance(auth, ParticipantCap)
    assert asyncio.run(login(auth, "alice")) == "admitted" and asyncio.run(login(auth, "bob")) == "full"
