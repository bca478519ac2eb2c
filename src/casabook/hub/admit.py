"""`casabook admit`: organisers give a place to people on the waiting list, during the workshop,
without a restart (the cap's organisers' page, POST /hub/api/casabook/cap)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console

from casabook.errors import CasabookError
from casabook.hub.api import HubAPI, HubAPIError

CAP_PATH = "casabook/cap"  # casabook.hub.caps.CAP_PAGE, under /hub/api/


async def admit(hub_url: str, token: str, names: list[str]) -> list[str]:
    """Admit each of `names`; returns the waiting list left (in order)."""
    async with HubAPI(hub_url, token) as api:
        for name in names:
            try:
                await api.request("POST", CAP_PATH, json={"admit": name})
            except HubAPIError as error:
                raise CasabookError("admit-refused", f"the hub did not admit {name!r} (HTTP {error.status}: "
                                    f"{error.message}): is its cap casabook's?", key="USER") from None
        return [entry["name"] for entry in (await api.request("GET", CAP_PATH)).json()["waitlist"]]


def run_command(root: Path, *, facility_name: str, names: list[str], hub_url: str | None, console: Console) -> int:
    from casabook.hub.organiser import hub_url_for, require_organiser_token
    from casabook.model import load_workshop

    workshop = load_workshop(root)
    url = hub_url_for(workshop.facility(facility_name), hub_url)
    waiting = asyncio.run(admit(url, require_organiser_token(workshop.root, "admit"), names))
    console.print(f"admitted {len(names)}: they hold a place as registrants do; {len(waiting)} still on the "
                  "waiting list", highlight=False)
    return 0
