"""How the organisers' commands (rehearse, prewarm, stats) reach a hub: its URL, the organisers'
admin token, the identity provider behind it, and narrow tokens for single jobs."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from casabook.errors import CasabookError
from casabook.hub.api import HubAPI, is_loopback, require_loopback
from casabook.model import Facility

ORGANISER_TOKEN_ENV = "CASABOOK_API_TOKEN"
TOKEN_FILE = "organiser-token"


def hub_url_for(facility: Facility, override: str | None) -> str:
    """--hub-url, else the facility's own URL; on this machine either way."""
    return require_loopback(override or facility.hub.url, "--hub-url")


def organiser_token(root: Path, environ: dict[str, str] | None = None) -> str | None:
    """The organisers' admin token: $CASABOOK_API_TOKEN, else the one `casabook hub` wrote to its
    state folder (readable by its owner only)."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get(ORGANISER_TOKEN_ENV):
        return environ[ORGANISER_TOKEN_ENV].strip()
    from casabook.hub.serve import default_state_dir

    path = default_state_dir(root) / TOKEN_FILE
    return path.read_text().strip() if path.is_file() else None


def require_organiser_token(root: Path, job: str) -> str:
    token = organiser_token(root)
    if not token:
        raise CasabookError("no-token", f"{job} needs the organisers' API token: set {ORGANISER_TOKEN_ENV}, or run the "
                            f"embedded hub with `casabook hub` (it writes .casabook/state/{TOKEN_FILE})")
    return token


async def identity_provider_of(hub_url: str) -> str:
    """The identity provider a hub sends attendees to: where its OAuth login redirects."""
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
        try:
            response = await client.get(f"{hub_url}/hub/oauth_login")
        except httpx.TransportError:
            raise CasabookError("hub-unreachable", f"no hub answers at {hub_url}: is it running?", key="--hub-url") from None
    location = response.headers.get("location", "")
    parts = urlsplit(location)
    if response.status_code not in (302, 303) or not parts.netloc:
        raise CasabookError("no-identity-provider", f"{hub_url}/hub/oauth_login does not redirect to an identity "
                            f"provider (HTTP {response.status_code})", key="--hub-url")
    provider = f"{parts.scheme}://{parts.netloc}"
    if not is_loopback(provider):
        raise CasabookError("not-loopback", f"this hub logs attendees in at {provider}, not on this machine: "
                            "simulated attendees cannot log in there; use --login token", key="--login")
    return provider


async def narrow_token(hub_url: str, admin_token: str, *, owner: str, scopes: tuple[str, ...], note: str,
                       expires_in: int = 3600) -> str:
    """A short-lived token holding only `scopes`, issued with the admin token to an organiser
    (where the hub has no service registered for the job)."""
    async with HubAPI(hub_url, admin_token) as api:
        body = {"note": note, "expires_in": expires_in, "scopes": list(scopes)}
        return (await api.request("POST", f"users/{owner}/tokens", json=body)).json()["token"]
