"""The participant cap: the first N distinct participants get in, nobody after them.

Organisers (admins) and returning participants always get in. Participant N+1 gets a 403 page
"This workshop is full (N places)" naming the organisers' contact, and lands on a waiting list the
organisers can read (a JSON-lines file, and the admin-only page /hub/api/casabook/cap).

The cap composes with any Authenticator class: `capped(cls)` is `cls` with the cap mixed in first,
so a facility's own subclass (coffea-casa's CoffeaOAuthenticator) keeps everything it adds. It is a
mixin rather than a `post_auth_hook` because of what JupyterHub documents for each: check_allowed is
the method subclasses override to decide who may log in (and allow_all skips it, hence the guard
below); post_auth_hook is one configurable slot "for bootstrapping work" after every check has
passed, which a facility may already fill, and a hook cannot reach add_user (called for every user
in the database when the hub starts: how the count survives a restart), delete_user (how organisers
free a place), get_handlers (the organisers' page) or the OAuth callback handler (the state check).

This module imports nothing from casabook: `casabook hub render` inlines its source into the Helm
chart's hub.extraConfig, where only JupyterHub and OAuthenticator are installed.
"""

import functools
import json
import os
import time

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.auth import Authenticator
from oauthenticator.cilogon import CILogonOAuthenticator
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.github import GitHubOAuthenticator
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from traitlets import Bool, Integer, Set, Unicode, default, validate
from traitlets.utils.importstring import import_item

CAP_PAGE = "/api/casabook/cap"


def refusal(status, message, reason):
    """An HTTPError whose page has `reason` as its short heading and `message` below it."""
    error = web.HTTPError(status, message, reason=reason)
    # JupyterHub 5 shows the reason alone when there is one (6 shows both); both show jupyterhub_message.
    error.jupyterhub_message = message
    return error


class ParticipantCap(Authenticator):
    """Mixed in before an Authenticator class (see capped): identity checks first, then the cap."""

    participants = Integer(
        0, config=True,
        help="Distinct participants admitted; organisers are not counted. 0 means no cap.")
    contact = Unicode(
        "", config=True,
        help="How to reach the organisers, shown on the 'workshop full' page.")
    waitlist_file = Unicode(
        "", config=True,
        help="JSON-lines file where refused participants are recorded for the organisers.")
    open_to_any_identity = Bool(
        False, config=True,
        help="Anyone the identity provider authenticates is eligible (the cap still applies).",
    ).tag(allow_config=True)
    uncounted_users = Set(
        set(), config=True,
        help="Users the hub's config creates for casabook's own jobs (the validation user): never counted, "
             "never refused.")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._admitted = set()
        self._organisers = set(self.admin_users)
        self._refused = self._read_waitlist()

    @default("http_client")
    def _crowd_sized_http_client(self):
        # Tornado's shared client runs 10 requests at a time and fails one that queued 20 s: a crowd
        # logging in at the start of a session got HTTP 500 instead of a notebook (17 of 100 in a
        # rehearsal). OAuthenticator's calls to the identity provider get a client of their own.
        return AsyncHTTPClient(force_instance=True, max_clients=64, defaults={"connect_timeout": 60,
                                                                             "request_timeout": 60})

    @validate("allow_all")
    def _never_allow_all(self, proposal):
        # allow_all=True makes JupyterHub skip check_allowed entirely, which would bypass the cap.
        # It keeps its meaning (any identity is eligible) through open_to_any_identity.
        if proposal.value:
            self.open_to_any_identity = True
        return False

    # --- who gets in ----------------------------------------------------------------------

    async def check_allowed(self, username, authentication=None):
        if username in self.uncounted_users:
            return True
        if self._is_organiser(username, authentication):
            self._organisers.add(username)
            self._admitted.discard(username)
            return True
        # A subclass's check_allowed only adds who may come in (OAuthenticator's contract for it), so
        # when any identity is eligible there is nothing for it to add.
        if not self.open_to_any_identity and not await super().check_allowed(username, authentication):
            return False
        return self.take_place(username)

    def _is_organiser(self, username, authentication):
        return username in self.admin_users or bool((authentication or {}).get("admin"))

    def take_place(self, username):
        """Admit a returning participant, or reserve a place for a new one, or refuse.

        Synchronous on purpose: no await between the count and the reservation, so concurrent
        logins on the hub's event loop cannot overshoot the cap.
        """
        if username in self._admitted:
            return True
        if self.participants and len(self._admitted) >= self.participants:
            self._record_refusal(username)
            raise refusal(403, self.full_message(), reason="Workshop full")
        self._admitted.add(username)
        return True

    def full_message(self):
        message = f"This workshop is full ({self.participants} places). You are on the waiting list."
        if self.contact:
            message += f" To ask for a place, contact the organisers: {self.contact}."
        return message

    @property
    def admitted(self):
        return sorted(self._admitted)

    @property
    def waitlist(self):
        return [{"name": name, "time": when} for name, when in sorted(self._refused.items(), key=lambda kv: kv[1])]

    # --- the count survives restarts: JupyterHub calls add_user for every user in its database

    def add_user(self, user):
        result = super().add_user(user)
        if not (getattr(user, "admin", False) or user.name in self._organisers or user.name in self.uncounted_users):
            self._admitted.add(user.name)
        return result

    def delete_user(self, user):
        # Organisers free a place by deleting the participant (admin page or REST API).
        super().delete_user(user)
        self._admitted.discard(user.name)

    # --- the waiting list -----------------------------------------------------------------

    def _read_waitlist(self):
        refused = {}
        if self.waitlist_file and os.path.exists(self.waitlist_file):
            with open(self.waitlist_file, encoding="utf-8") as lines:
                for line in lines:
                    if line.strip():
                        entry = json.loads(line)
                        refused.setdefault(entry["name"], entry["time"])
        return refused

    def _record_refusal(self, username):
        if username in self._refused:
            return
        self._refused[username] = time.time()
        self.log.warning("Workshop full (%d places): %s refused and put on the waiting list",
                         self.participants, username)
        if self.waitlist_file:
            os.makedirs(os.path.dirname(os.path.abspath(self.waitlist_file)), exist_ok=True)
            with open(self.waitlist_file, "a", encoding="utf-8") as out:
                out.write(json.dumps({"name": username, "time": self._refused[username]}) + "\n")

    # --- identity providers that send no user name ----------------------------------------

    def user_info_to_username(self, user_info):
        # Stock OAuthenticator answers 500 "No preferred_username found in {...}": a bug page for
        # what is a mismatch between the identity provider and the facility's configuration.
        try:
            return super().user_info_to_username(user_info)
        except web.HTTPError as error:
            if error.status_code < 500:
                raise
        except (ValueError, KeyError, TypeError):
            pass
        claim = getattr(self, "username_claim", "")
        claim = claim if isinstance(claim, str) and claim else "user name"
        message = (f"Your identity provider did not send the '{claim}' claim this workshop uses as your "
                   "user name, so you cannot be logged in.")
        if self.contact:
            message += f" Please contact the organisers: {self.contact}."
        raise refusal(403, message, reason="No user name from your identity provider")

    def get_handlers(self, app):
        return [*super().get_handlers(app), (CAP_PAGE, CapHandler)]


class CapHandler(APIHandler):
    """The organisers' view of the cap: places, who holds them, who was refused."""

    def get(self):
        if "admin:users" not in self.expanded_scopes:
            raise web.HTTPError(403, "Only the workshop organisers can read the waiting list.")
        cap = self.authenticator
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps({
            "participants": cap.participants,
            "admitted": cap.admitted,
            "waitlist": cap.waitlist,
        }, indent=1))


class StateCheckingCallback:
    """Mixed into an OAuth callback handler: a tampered state is a 400, never a 500."""

    def check_state(self):
        # Stock _deserialize_state raises on non-ASCII and assumes a JSON object, so an altered
        # state parameter turns into an unhandled exception.
        try:
            super().check_state()
        except web.HTTPError:
            raise
        except Exception:
            raise web.HTTPError(400, "This login link was altered (invalid OAuth state). "
                                     "Start again from the workshop page.") from None


@functools.cache
def capped(base):
    """`base` (any Authenticator class) with the participant cap, and for an OAuthenticator the safe
    callback. The same class for the same base: configuring twice names one class."""
    if issubclass(base, ParticipantCap):
        return base
    namespace = {"__module__": __name__}
    if getattr(base, "callback_handler", None) is not None:
        namespace["callback_handler"] = type(f"Capped{base.callback_handler.__name__}",
                                             (StateCheckingCallback, base.callback_handler), {})
    return type(f"Capped{base.__name__}", (ParticipantCap, base), namespace)


def capped_class(path):
    """The class at a dotted path (a facility's own authenticator), capped."""
    base = import_item(path)
    if not (isinstance(base, type) and issubclass(base, Authenticator)):
        raise TypeError(f"{path} is not a JupyterHub Authenticator class")
    return capped(base)


CappedGenericOAuthenticator = capped(GenericOAuthenticator)
CappedCILogonOAuthenticator = capped(CILogonOAuthenticator)
CappedGitHubOAuthenticator = capped(GitHubOAuthenticator)
