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

With a registration list (registrants_file, casabook.hub.registrants reads it) the places go to
the people on it: registrants always get in and hold a place, others (walk_ins) only while the
cap, less every registrant's place, has room. The list is read again when its file changes, and
organisers admit someone from the waiting list by POSTing to the organisers' page.

This module imports nothing from casabook but casabook.hub.registrants, which imports nothing
from it either: `casabook hub render` inlines both sources into the Helm chart's hub.extraConfig,
where only JupyterHub and OAuthenticator are installed.
"""

import functools
import json
import logging
import os
import time

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.auth import Authenticator
from oauthenticator.cilogon import CILogonOAuthenticator
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.github import GitHubOAuthenticator
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from traitlets import Bool, Dict, Enum, Integer, Set, Unicode, default, validate
from traitlets.utils.importstring import import_item

try:
    from casabook.hub.registrants import modified, normalise, pseudonym, read_mapping, read_registrants
except ImportError:  # inlined into the Helm chart's hub.extraConfig, after casabook.hub.registrants' own source
    pass

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
    registrants_file = Unicode(
        "", config=True,
        help="The registration list (Indico JSON or CSV export, or one address a line): registrants always get "
             "in and hold a place. Re-read when it changes. Empty: places go to whoever logs in first.")
    track_registrants_files = Dict(
        {}, config=True,
        help="Tracks' own registration lists, track name -> file: their registrants get in as the "
             "registrants_file's do, and the organisers' page counts them per track.")
    registrants_mapping_file = Unicode(
        "", config=True,
        help="'address,username' lines turning the list's addresses into hub user names (match by user name).")
    match_claim = Unicode(
        "email", config=True,
        help="The identity provider's claim compared with the registration list (without a mapping file).")
    walk_ins = Enum(
        ["none", "up-to-cap"], "none", config=True,
        help="Who else gets in beside registrants: none, or anyone while places are left once every "
             "registrant's place is reserved.")
    admissions_file = Unicode(
        "", config=True,
        help="JSON-lines file of participants' logins (name, a digest of the matched identity, time): tells "
             "registrants from walk-ins after a restart, and gives `casabook stats` its connections.")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._admitted = set()
        self._organisers = set(self.admin_users)
        self._refused = self._read_waitlist()
        self._registered = set()
        self._by_list = {}
        self._registrants_stamp = None
        self._identity_of, self._invited, self._logins = self._read_admissions()

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
        return self.take_place(username, self.identity(username, authentication))

    def _is_organiser(self, username, authentication):
        return username in self.admin_users or bool((authentication or {}).get("admin"))

    def take_place(self, username, identity=None):
        """Admit a returning participant, or reserve a place for a new one, or refuse.

        Synchronous on purpose: no await between the count and the reservation (the registration
        list is re-read synchronously too), so concurrent logins on the hub's event loop cannot
        overshoot the cap.
        """
        if username in self._admitted:
            self._record_login(username)
            return True
        if self.registration_lists():
            self._admit_registered(username, identity)
        elif self.participants and len(self._admitted) >= self.participants:
            self._record_refusal(username)
            raise refusal(403, self.full_message(), reason="Workshop full")
        self._admitted.add(username)
        self._record_login(username)
        return True

    # --- the cap with a registration list --------------------------------------------------

    def identity(self, username, authentication=None):
        """What the registration list is compared with: the user name where a mapping file turned
        addresses into user names, else the identity provider's match_claim (the user name when it
        sends none)."""
        if not self.registration_lists():
            return None
        if self.registrants_mapping_file:
            return username
        auth_state = (authentication or {}).get("auth_state") or {}
        user_info = auth_state.get(getattr(self, "user_auth_state_key", "oauth_user")) or {}
        value = user_info.get(self.match_claim) if isinstance(user_info, dict) else None
        return normalise(value if value else username, self.match_claim)

    def is_registrant(self, username, identity=None, listed=None):
        return username in self._invited or self._pseudonym(username, identity) in (
            self.registered if listed is None else listed)

    def _pseudonym(self, username, identity=None):
        """The identity the user logged in with, as the hub keeps it; for a user created before any
        login (prewarm --registered, where the user name is the registered address), the user name's."""
        known = self._identity_of.get(username)
        if known is None:
            known = pseudonym(identity if identity is not None else normalise(username, self.match_claim))
        return known

    def registration_lists(self):
        """Every list the hub reads: "" for the facility's own, else the track's name."""
        lists = {"": self.registrants_file} if self.registrants_file else {}
        lists.update(self.track_registrants_files)
        return lists

    @property
    def registered(self):
        """The registration lists' identities, read again when a file (or the mapping) changed."""
        lists = self.registration_lists()
        stamp = (tuple(modified(path) for path in lists.values()),
                 modified(self.registrants_mapping_file or os.devnull))
        if stamp == self._registrants_stamp:
            return self._registered
        try:
            mapping = None
            if self.registrants_mapping_file:
                mapping, problems = read_mapping(self.registrants_mapping_file)
                for row, message in problems:
                    self.log.warning("%s:%d: %s", self.registrants_mapping_file, row, message)
            found = {label: read_registrants(path, self.match_claim, mapping) for label, path in lists.items()}
        except (OSError, ValueError) as error:
            # Half-written while the organisers save it, or gone: keep the lists read before, try again next login.
            self.log.log(logging.ERROR, "Cannot read a registration list (%s): keeping the %d registrants read "
                         "before", error, len(self._registered))
            return self._registered
        for one in found.values():
            for row, message in one.problems:
                self.log.warning("%s:%d: %s", one.path, row, message)
        # Kept as pseudonyms, as the admissions file keeps who logged in: no address in the hub's state.
        by_list = {label: {pseudonym(i) for i in one.identities} for label, one in found.items()}
        registered = set().union(*by_list.values())
        if self._registrants_stamp is not None:
            self.log.info("Registration lists read again: %d registrants (were %d)", len(registered),
                          len(self._registered))
        self._by_list = by_list
        self._registered, self._registrants_stamp = registered, stamp
        return self._registered

    def places_for_walk_ins(self):
        """Places left for people not on the list: the cap, less every registrant's place (taken or
        not), less the walk-ins already in."""
        if self.walk_ins == "none":
            return 0
        listed = self.registered
        reserved = self.registered_count()
        walk_ins = sum(not self.is_registrant(name, listed=listed) for name in self._admitted)
        return max(0, self.participants - reserved - walk_ins) if self.participants else 1

    def _admit_registered(self, username, identity):
        if self.is_registrant(username, identity):
            self._identity_of.setdefault(username, self._pseudonym(username, identity))
            if self.participants and len(self._admitted) >= self.participants:
                # Registrants always get in: the organisers put them on the list.
                self.log.warning("Registrant %s admitted beyond the cap of %d places", username, self.participants)
            return
        if self.places_for_walk_ins() > 0:
            self._identity_of.setdefault(username, self._pseudonym(username, identity))
            return
        self._record_refusal(username)
        raise refusal(403, self.not_registered_message(identity), reason="Not registered")

    def not_registered_message(self, identity):
        message = (f"Places at this workshop go to the people who registered, and {identity} is not on its "
                   "registration list")
        message += "." if self.walk_ins == "none" else (f"; the places left for others ({self.participants} "
                                                        "in all) are taken.")
        message += " You are on the waiting list."
        if self.contact:
            message += (f" If you registered with another address, or to ask for a place, contact the "
                        f"organisers: {self.contact}.")
        return message

    def invite(self, username):
        """An organiser admits someone from the waiting list: they count as a registrant from now on."""
        self._invited.add(username)
        self._refused.pop(username, None)
        self._append(self.admissions_file, {"name": username, "invited": True, "time": time.time()})

    def _record_login(self, username):
        now = time.time()
        self._logins.append((username, now))
        entry = {"name": username, "time": now}
        if username in self._identity_of:
            entry["identity"] = self._identity_of[username]
        self._append(self.admissions_file, entry)

    def _read_admissions(self):
        identity_of, invited, logins = {}, set(), []
        for entry in self._read_lines(self.admissions_file):
            if entry.get("invited"):
                invited.add(entry["name"])
                continue
            if entry.get("identity") is not None:
                identity_of.setdefault(entry["name"], entry["identity"])
            logins.append((entry["name"], entry["time"]))
        return identity_of, invited, logins

    def registration_view(self):
        """The registration's figures for the organisers' page."""
        if not self.registration_lists():
            return None
        listed = self.registered
        registrants = [name for name in self._admitted if self.is_registrant(name, listed=listed)]
        # Connected: logged in at least once (prewarm --registered may create a registrant's user before that).
        logged_in = {name for name, _ in self._logins}
        connected = [name for name in registrants if name in logged_in]
        identities = [self._pseudonym(name) for name in connected]
        tracks = {label: {"registered": len(members), "connected": sum(i in members for i in identities)}
                  for label, members in self._by_list.items() if label}
        return {
            "registered": self.registered_count(),
            "registered_connected": len(connected),
            "connected": sorted(connected),
            "walk_ins": len(self._admitted) - len(registrants),
            "walk_ins_allowed": self.walk_ins,
            "places_for_walk_ins": self.places_for_walk_ins(),
            "tracks": tracks,
        }

    @property
    def logins(self):
        return [{"name": name, "time": when} for name, when in self._logins]

    def registered_count(self):
        """Registrants on the list, and those the organisers admitted from the waiting list."""
        listed = self.registered
        return len(listed) + sum(self._pseudonym(name) not in listed for name in self._invited)

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
        # In the order they were refused; those given a place since (list updated, admitted) are no longer waiting.
        return [{"name": name, "time": when} for name, when in sorted(self._refused.items(), key=lambda kv: kv[1])
                if name not in self._admitted and name not in self._invited]

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
        for entry in self._read_lines(self.waitlist_file):
            refused.setdefault(entry["name"], entry["time"])
        return refused

    @staticmethod
    def _read_lines(path):
        if not (path and os.path.exists(path)):
            return []
        with open(path, encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]

    @staticmethod
    def _append(path, entry):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")

    def _record_refusal(self, username):
        if username in self._refused:
            return
        self._refused[username] = time.time()
        why = "not registered" if self.registration_lists() else "workshop full"
        self.log.warning("%s refused (%s, %d places) and put on the waiting list", username, why, self.participants)
        self._append(self.waitlist_file, {"name": username, "time": self._refused[username]})

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
            "registration": cap.registration_view(),
            "logins": cap.logins,
        }, indent=1))

    def post(self):
        """{"admit": name}: an organiser gives a place to someone on the waiting list, without a restart."""
        if "admin:users" not in self.expanded_scopes:
            raise web.HTTPError(403, "Only the workshop organisers can admit someone from the waiting list.")
        body = self.get_json_body() or {}
        name = body.get("admit")
        if not isinstance(name, str) or not name:
            raise web.HTTPError(400, 'expected {"admit": "<user name>"}')
        self.authenticator.invite(name)
        self.set_status(204)


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
