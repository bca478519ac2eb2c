"""Errors a user can act on, and the one list of their codes.

A user mistake is a :class:`CasabookError`: a stable code (one of :data:`CODES`) and a one-line
message that names the file, the key and what was expected. Several mistakes found together are
one :class:`Mistakes`, printed one line each. The CLI prints them and exits 2; tracebacks are for bugs.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# Every code casabook reports, with what it means. A test scans src/ so that every code raised is
# listed here and every code listed is raised somewhere: the list is what a script may match on.
CODES: dict[str, str] = {
    # reading a YAML file
    "file-missing": "a file casabook needs is not there",
    "file-unreadable": "a file exists but cannot be read as UTF-8 text",
    "bad-yaml": "a file is not valid YAML",
    "duplicate-key": "a key appears twice in one mapping (the first value would be lost)",
    # track and facility files
    "no-workshop": "no workshop repository (tracks/ and hub-config/) at or above the folder",
    "no-tracks": "tracks/ holds no track file",
    "no-facilities": "hub-config/ holds no facility file",
    "not-a-mapping": "a track or facility file is not a mapping of keys",
    "name-from-file": "a file sets `name`, which is the file name",
    "bad-file-name": "a file name is not lower-case letters, digits and dashes",
    "invalid": "a key is unknown, missing, or has a value of the wrong kind",
    "several-mistakes": "more than one mistake, each reported on its own line",
    "unknown-track": "no track of that name",
    "unknown-facility": "no facility of that name",
    "cap-above-facility": "tracks admit more participants than their facility's cap",
    "duplicate-notebook": "a track lists a notebook twice",
    "notebook-in-two-tracks": "a notebook is listed by two tracks",
    "notebook-missing": "a listed notebook does not exist",
    "unscheduled-notebook": "a session lists a notebook its track does not",
    "schedule-overflow": "a session's notebooks take longer than the session",
    "bad-image-file": "a facility's image file is not one of the formats casabook reads",
    # launch links and git
    "no-branch": "the branch attendees pull cannot be told from git",
    "broken-link": "a launch link points at something its hub cannot clone (a folder, an unpushed branch or file)",
    # the sample data
    "bad-manifest": "the sample data manifest is unreadable or inconsistent",
    "archive-checksum": "the package index served an archive other than the pinned one",
    "registry-unreachable": "a pinned archive is neither downloadable nor in the cache",
    "missing-in-archive": "a cached archive lacks a listed sample file",
    "bad-archive": "a cached archive cannot be read",
    "checksum-mismatch": "an extracted sample file does not match its sha256",
    # the book
    "bad-execute": "--execute is not one of off, cache, force",
    "bad-hub-url": "--hub-override is not a hub URL",
    "no-book-config": "book/_config.yml is missing",
    "no-landing-page": "the book's landing page is missing",
    "bad-book-config": "book/_config.yml holds something casabook cannot use",
    "book-name-reserved": "a file in book/ has a name casabook generates",
    "book-name-clash": "a notebook folder clashes with a page of the book",
    "output-not-folder": "--output names a file, not a folder",
    "output-not-book": "--output is a non-empty folder that holds no casabook book",
    "book-crashed": "Sphinx stopped with an exception while building the book",
    "book-broken-link": "a launch button of the book points at something its hub cannot clone",
    "book-failed": "Sphinx reported errors or warnings",
    "book-launch-links": "the built pages' launch links do not match the tracks",
    # the validation matrix
    "bad-notebook": "a notebook is not a readable notebook file",
    "unknown-kernel": "a facility's kernel is not installed on this machine",
    "bad-option": "a command-line number is out of range",
    "environment-build": "uv could not build a facility's environment from its image files",
    # hubs
    "not-a-local-facility": "the facility does not run on this machine",
    "not-kubernetes": "Helm values were asked for a facility that does not run on kubernetes",
    "refused-by-chart": "rendered Helm values do not pass the chart's own schema",
    "unknown-chart": "--chart names no chart casabook renders values for",
    "unknown-authenticator-class": "a facility's authenticator class_name cannot be imported",
    "authenticator-class-kind": "a facility's authenticator class is not a subclass of its kind's class",
    "not-loopback": "a hub or identity provider address is not on this machine",
    "hub-start": "a part of the local stack (identity provider, proxy, hub) did not start",
    "missing-client-secret": "the OAuth client secret's environment variable is not set",
    "no-issuer": "the local identity provider's URL is not known at start",
    "no-proxy": "configurable-http-proxy is not installed (npm ci)",
    "no-node-package": "an npm package casabook serves (MathJax, the login page stylesheet) is not installed (npm ci)",
    "hub-unreachable": "no hub answers at the URL",
    "hub-token": "the hub does not accept the API token",
    "hub-scope": "the API token may not do what was asked",
    "no-token": "no API token to ask the hub with",
    "no-identity-provider": "the hub's login does not lead to an identity provider",
    "no-prewarm-token": "no token to prewarm servers with",
    "unknown-participant": "a user never logged in to this hub",
    # validate --hub
    "not-a-hub": "the URL answers, but not as JupyterHub does",
    "hub-api": "the hub refused a REST call of the day-before run",
    "no-validation-user": "the hub has no validation user (its config creates it through a role)",
    "hub-spawn": "the validation user's server did not start",
    "hub-stop": "the validation user's server was still running after it was asked to stop",
    "which-facility": "the hub's URL matches no facility, or several: --facility says which",
    "track-not-on-hub": "a --track runs on another facility than the hub's",
    # registration
    "registration-unset": "the environment variable naming the registration list (or its mapping) is not set",
    "registration-in-repository": "the registration list is inside the repository (it holds personal data)",
    "registration-unreadable": "the registration list or its mapping file cannot be read",
    "registrant-row": "a row of the registration list is unreadable, a duplicate, or lacks the matching field",
    "admit-refused": "the hub did not give the place `casabook admit` asked for",
    "mapping-row": "a line of the registrants' mapping file is not 'address,username', or maps an address twice",
    # rehearsals
    "bad-participants": "a rehearsal needs at least one attendee",
    "cap-with-hub-url": "--cap cannot change the cap of a hub already running",
}


class CasabookError(Exception):
    """A mistake in the user's input, safe to show as one line."""

    exit_code = 2

    def __init__(self, code: str, message: str, *, file: Path | str | None = None,
                 key: str | None = None, line: int | None = None) -> None:
        self.code = code
        self.message = message
        self.file = str(file) if file is not None else None
        self.key = key
        self.line = line
        super().__init__(self.render())

    @property
    def mistakes(self) -> list[CasabookError]:
        """Each mistake this error reports (one, for a plain error)."""
        return [self]

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        if self.key:
            where += f"{self.key}: "
        return f"{where}{self.message} [{self.code}]"


class Mistakes(CasabookError):
    """Several mistakes found in one go, so a user can mend them all before running again."""

    def __init__(self, mistakes: Iterable[CasabookError]) -> None:
        self._mistakes = [one for error in mistakes for one in error.mistakes]
        first = self._mistakes[0]
        self.exit_code = max(one.exit_code for one in self._mistakes)
        super().__init__("several-mistakes", f"{len(self._mistakes)} mistakes", file=first.file)

    @property
    def mistakes(self) -> list[CasabookError]:
        return list(self._mistakes)

    def render(self) -> str:
        return "\n".join(one.render() for one in self._mistakes)


def collect(errors: Iterable[CasabookError]) -> CasabookError:
    """One error for everything found: the error itself when there is one, else :class:`Mistakes`."""
    found = [one for error in errors for one in error.mistakes]
    if not found:
        raise ValueError("collect() needs at least one error")
    return found[0] if len(found) == 1 else Mistakes(found)
