# The JupyterHub configuration of a casabook facility: thin on purpose.
#
# It loads the facility named by CASABOOK_FACILITY (the repository from CASABOOK_ROOT) and hands it
# to the pure functions of casabook.hub.config, which the tests check without starting a hub.
# `casabook hub` sets these variables for the embedded default; a facility admin sets them by hand:
#
#   CASABOOK_FACILITY=<name> <CLIENT_SECRET_ENV>=... jupyterhub -f hub-config/jupyterhub_config.py
import os
from pathlib import Path

from casabook.hub.config import Ports, configure, load_hub_facility, organisers_contact
from casabook.model import load_workshop

_root = Path(os.environ.get("CASABOOK_ROOT") or Path(__file__).resolve().parent.parent)
_facility = load_hub_facility(_root, os.environ.get("CASABOOK_FACILITY", "local"))
_state = Path(os.environ.get("CASABOOK_STATE") or _root / ".casabook" / "state")
# configurable-http-proxy from the repository's node_modules (`npm ci`), unless told otherwise.
_proxy = os.environ.get("CASABOOK_PROXY_COMMAND") or str(_root / "node_modules" / ".bin" / "configurable-http-proxy")

configure(
    get_config(),  # noqa: F821 (provided by JupyterHub when it loads this file)
    _facility,
    _root,
    # The "workshop full" page names the organisers of the tracks on this facility.
    contact=os.environ.get("CASABOOK_CONTACT") or organisers_contact(load_workshop(_root), _facility),
    state_dir=_state,
    ports=Ports(
        public=int(os.environ.get("CASABOOK_HUB_PORT", "8000")),
        hub=int(os.environ.get("CASABOOK_HUB_API_PORT", "8081")),
        proxy_api=int(os.environ.get("CASABOOK_PROXY_API_PORT", "8001")),
    ),
    issuer=os.environ.get("CASABOOK_OIDC_ISSUER"),
    participants=int(os.environ["CASABOOK_PARTICIPANTS"]) if os.environ.get("CASABOOK_PARTICIPANTS") else None,
    proxy_command=[_proxy],
    organiser_token=os.environ.get("CASABOOK_API_TOKEN"),
    # benchmarks/bench_hub.py --session stock compares with every server extension enabled.
    lean_session=os.environ.get("CASABOOK_STOCK_SESSION") != "1",
    # `casabook validate --hub`: its service's token and the user it runs notebooks as.
    validator_token=os.environ.get("CASABOOK_VALIDATOR_TOKEN"),
    validator_user=os.environ.get("CASABOOK_VALIDATOR_USER"),
    # Tracks may name registration lists of their own.
    tracks=load_workshop(_root).tracks.values() if _facility.registration else (),
)
