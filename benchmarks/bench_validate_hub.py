"""On-hub time per notebook next to the offline matrix's time for the same notebook.

    .venv/bin/python benchmarks/bench_validate_hub.py [--track T ...]

In a copy of the workshop whose tracks all run on the embedded facility (`local`), so both runs
are of the same notebook on the same facility: first the offline matrix (`casabook validate
--force --jobs 1`, a fresh process, as a user runs it), then `casabook validate --hub` against
the embedded hub started here (a real JupyterHub, the validation user's server, nbgitpuller
pulling the copy over file://). The on-hub time of a notebook runs from its first request to the
server (the pulled notebook) to the end of its last cell; the server's start, the pulls and the
kernels' shutdowns count in the whole command's time only. Both run one notebook at a time, so
the columns compare. Prints the load average before and after: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from casabook.hub.validator import VALIDATOR_TOKEN_ENV
from casabook.testing.hub import LocalHub
from casabook.testing.workshops import copy_workshop, edit_yaml, git

CASABOOK = [sys.executable, "-m", "casabook.cli"]


def load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def on_local(root: Path) -> None:
    places = 0
    for track in (root / "tracks").glob("*.yml"):
        edit_yaml(track, lambda data: data.update(facility="local"))
        places += yaml.safe_load(track.read_text())["participant_cap"]
    # The tracks' places together, which the loader checks against the facility's cap.
    edit_yaml(root / "hub-config" / "local.yml", lambda data: data["caps"].update(participants=max(places, 100)))
    git(root, "commit", "-q", "-am", "Every track on the embedded facility")


def runs(report: Path, column: str) -> dict[str, dict]:
    data = json.loads(report.read_text())
    return {run["notebook"]: run for run in data["runs"] if run["facility"] == column}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", action="append", help="only this track (repeatable; default: all)")
    args = parser.parse_args()
    tracks = [arg for name in (args.track or []) for arg in ("--track", name)]
    print(f"load average before (1, 5, 15 min): {load()} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-validate-hub-") as tmp:
        root = copy_workshop(Path(tmp) / "workshop")
        on_local(root)
        report = root / "build" / "validate" / "report.json"
        began = time.monotonic()
        subprocess.run([*CASABOOK, "--root", str(root), "validate", "--force", "--jobs", "1", *tracks],
                       check=False, stdout=subprocess.DEVNULL)
        offline_s = time.monotonic() - began
        offline = runs(report, "local")

        token = secrets.token_hex(24)
        hub = LocalHub(root=root, state_dir=Path(tmp) / "state", extra_env={VALIDATOR_TOKEN_ENV: token}).start()
        try:
            began = time.monotonic()
            subprocess.run([*CASABOOK, "--root", str(root), "validate", "--hub", hub.hub_url, *tracks],
                           check=False, stdout=subprocess.DEVNULL, env={**os.environ, VALIDATOR_TOKEN_ENV: token})
            hub_s = time.monotonic() - began
            column = f"local @ hub {hub.hub_url.removeprefix('http://')}"
            remote = runs(report, column)
        finally:
            hub.stop()

    width = max(map(len, offline | remote), default=8)
    print(f"{'notebook':<{width}}  {'offline':>9}  {'on hub':>9}  {'ratio':>6}  status (offline / hub)")
    for notebook in dict.fromkeys([*offline, *remote]):
        here, there = offline.get(notebook, {}), remote.get(notebook, {})
        a, b = here.get("duration_s"), there.get("duration_s")
        ratio = f"{b / a:6.2f}" if a and b else "     –"
        print(f"{notebook:<{width}}  {a or 0:>8.1f}s  {b or 0:>8.1f}s  {ratio}  "
              f"{here.get('status', '–')} / {there.get('status', '–')}")
    total_a = sum(r.get("duration_s") or 0 for r in offline.values())
    total_b = sum(r.get("duration_s") or 0 for r in remote.values())
    print(f"{'notebooks, summed':<{width}}  {total_a:>8.1f}s  {total_b:>8.1f}s")
    print(f"whole command: offline {offline_s:.1f} s (process start, planning, report); on the hub {hub_s:.1f} s "
          "(also the server's start, the pulls through the launch links and the server's stop)")
    print(f"load average after (1, 5, 15 min): {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
