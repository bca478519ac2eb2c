"""Does the embedded hub hold the planned crowd on this machine? (prints figures, asserts nothing)

Three runs of `casabook.rehearsal.crowd` on fresh local stacks (JupyterHub, configurable-http-proxy, the
OIDC provider), N attendees clicking one launch link evenly within a ramp:

  cold      cap N: every attendee logs in, the hub spawns N servers, nbgitpuller clones N times.
            Done when: all N in, none refused, no spawn failure. Target: p95 time to notebook <= 60 s.
  prewarm   the same hub, the next day: the servers were stopped, the organisers ran prewarm
            (servers started and materials pulled through the REST API with the prewarm
            service's token), then the same N attendees click again. Target: p95 <= 5 s.
  cap       cap C < N on a fresh hub: exactly C in, N - C refused with the workshop-full page.

    .venv/bin/python benchmarks/bench_rehearse.py [--participants 100] [--ramp 10] [--cap 60]
        [--runs cold,prewarm,cap] [--run-first-cell] [--output DIR]

Each run's figures, besides the time to notebook and the CPU-s per attendee by part (hub, proxy,
identity provider, servers), are what a person meets: the error pages (JupyterHub's 'Too many
users' among them; goal 0), the reloads after them, the refused's time to the full page (goal p95
<= 5 s) and the largest place in the spawn line shown.

Writes DIR/<run>.json (casabook.rehearsal.crowd's rehearsal.json), DIR/bench.json (the figures below) and
DIR/time-to-notebook.png (cold against prewarmed). The machine is shared: the load average at the
start and end of each run is printed with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from casabook import atomic
from casabook.hub.api import HubAPI
from casabook.hub.prewarm import prewarm
from casabook.rehearsal.crowd import rehearse_crowd
from casabook.rehearsal.report import plot_time_to_notebook, write_outputs
from casabook.rehearsal.results import CrowdPlan, Rehearsal
from casabook.rehearsal.stack import RehearsalStack
from casabook.testing.materials import MaterialsRepo

ROOT = Path(__file__).resolve().parents[1]

CONTACT = "casabook benchmark <bench@casabook.invalid>"


def materials(folder: Path) -> tuple[MaterialsRepo, str]:
    """A git repository of materials: the workshop's notebooks as they are on disk (real sizes).
    Returns the repo and the notebook to open."""
    files: dict[str, str | None] = {"README.md": "# Workshop materials\n"}
    for path in sorted((ROOT / "notebooks").rglob("*.ipynb")):
        if ".ipynb_checkpoints" not in path.parts:
            files[str(path.relative_to(ROOT))] = path.read_text()
    notebooks = [name for name in files if name.endswith(".ipynb")]
    return MaterialsRepo.create(folder, files), notebooks[0]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def figures(name: str, rehearsal: Rehearsal, load_before: str) -> dict[str, object]:
    s = rehearsal.summary()
    ttn = s["time_to_notebook_s"]
    fp = rehearsal.footprint or {}
    row = {
        "run": name, "participants": s["participants"], "cap": s["cap"], "ramp_s": rehearsal.plan.ramp_s,
        "in": s["in"], "admitted": s["admitted"], "refused": s["refused"], "spawn_failures": s["spawn_failures"],
        "other_failures": s["other_failures"], "spawned": s["spawned"],
        # What a person meets: error pages (JupyterHub's 'Too many users' among them), reloads after
        # them, the refused's wait for the full page, the largest place in the spawn line shown.
        "error_pages": s["error_pages"], "too_many_users_pages": s["error_pages_too_many_users"],
        "attendees_meeting_error_pages": s["attendees_meeting_error_pages"],
        "error_pages_max_per_attendee": s["error_pages_max_per_attendee"], "http_429": s["http_429"],
        "retries": s["retries"], "refused_full_page_p50_s": s["time_to_full_page_s"]["p50"],
        "refused_full_page_p95_s": s["time_to_full_page_s"]["p95"],
        "waited_in_line": s["place_in_line"]["waited"], "place_in_line_max": s["place_in_line"]["max"],
        "p50_s": ttn["p50"], "p95_s": ttn["p95"], "max_s": ttn["max"],
        "login_p95_s": s["login_s"]["p95"], "after_login_p95_s": s["after_login_s"]["p95"],
        "spawn_p95_s": s["spawn_s"]["p95"], "pull_p95_s": s["pull_s"]["p95"],
        "cpu_s_per_attendee": fp.get("cpu_seconds_per_attendee"),
        "cpu_s_per_attendee_by_part": fp.get("cpu_seconds_per_attendee_by_part"),
        "server_rss_mib_per_attendee": fp.get("server_rss_mib_per_attendee"),
        "rss_mib_peak": fp.get("rss_mib_peak"), "cpu_seconds": fp.get("cpu_seconds"),
        "hub_view": rehearsal.hub_view, "wall_s": s["seconds"], "load_before": load_before, "load_after": load(),
    }
    refused_pages = {a.detail for a in rehearsal.attendees if a.outcome == "refused"}
    row["refused_page"] = sorted(refused_pages)[:1]
    print(json.dumps(row), flush=True)
    return row


def crowd(stack: RehearsalStack, link: str, args: argparse.Namespace, cap: int) -> Rehearsal:
    done: list[str] = []

    def tick(result: object) -> None:
        done.append(getattr(result, "outcome"))
        if len(done) % 10 == 0 or len(done) == args.participants:
            print(f"  {len(done)}/{args.participants} done ({time.strftime('%H:%M:%S')})", flush=True)

    plan = CrowdPlan(hub_url=stack.hub_url, launch_url=link, participants=args.participants, ramp_s=args.ramp,
                     cap=cap, oidc_url=stack.oidc_url, api_token=stack.api_token,
                     run_first_cell=args.run_first_cell, attendee_timeout_s=args.timeout,
                     hub_pid=stack.hub_process.pid if stack.hub_process else None, idp_pid=stack.idp_pid)
    return asyncio.run(rehearse_crowd(plan, on_done=tick))


async def stop_all(stack: RehearsalStack) -> None:
    async with HubAPI(stack.hub_url, stack.api_token) as api:
        names = [u["name"] for u in await api.users(state="active")]
        gate = asyncio.Semaphore(10)

        async def stop(name: str) -> None:
            async with gate:
                await api.stop_server(name)

        await asyncio.gather(*(stop(n) for n in names))
        await api.wait_stopped(names, timeout=300)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--ramp", type=float, default=10.0)
    parser.add_argument("--cap", type=int, default=60, help="the cap of the 'cap' run (default: 60)")
    parser.add_argument("--runs", default="cold,prewarm,cap")
    parser.add_argument("--run-first-cell", action="store_true")
    parser.add_argument("--timeout", type=float, default=900.0, help="per attendee (default: 900 s)")
    parser.add_argument("--output", type=Path, default=ROOT / ".casabook" / "bench-rehearse")
    parser.add_argument("--nice", type=int, default=0, metavar="N",
                        help="try out: start attendees' servers at this niceness, so the hub and the identity "
                             "provider keep their share of the CPU while servers start (default: 0, as configured)")
    parser.add_argument("--concurrent-spawns", type=int, metavar="N",
                        help="try out: servers started at once, the rest waiting in the spawn line (default: the facility's)")
    parser.add_argument("--retry-range", metavar="LOW,HIGH",
                        help="try out: the seconds a 429 page asks attendees to wait (JupyterHub's default: 30,60)")
    parser.add_argument("--oauth-timeout", type=float, metavar="SECONDS",
                        help="try out: the hub's calls to the identity provider may queue and take this long, "
                             "64 at once (OAuthenticator's default: 20 s, 10 at once)")
    args = parser.parse_args(argv)
    trials = []
    if args.oauth_timeout:
        trials.append("from tornado.httpclient import AsyncHTTPClient")
        trials.append("AsyncHTTPClient.configure(None, max_clients=64)")
        trials.append(f"c.OAuthenticator.http_request_kwargs = {{'connect_timeout': {args.oauth_timeout}, "
                      f"'request_timeout': {args.oauth_timeout}}}")
    if args.nice:
        trials.append(f"c.Spawner.cmd = ['nice', '-n', '{args.nice}', *c.Spawner.cmd]")
    if args.concurrent_spawns:
        trials.append(f"c.SpawnLine.concurrent_spawns = {args.concurrent_spawns}")
    if args.retry_range:
        low, high = (int(v) for v in args.retry_range.split(","))
        trials.append(f"c.JupyterHub.spawn_throttle_retry_range = ({low}, {high})")
    extra_config = "\n".join(trials)
    if trials:
        print("trying out:", "; ".join(trials), flush=True)
    runs = set(args.runs.split(","))
    args.output.mkdir(parents=True, exist_ok=True)
    print(f"{args.participants} attendees within {args.ramp:g} s on {os.cpu_count()} cores; load {load()}", flush=True)
    rows: list[dict[str, object]] = []
    series: dict[str, list[float]] = {}

    with tempfile.TemporaryDirectory(prefix="casabook-bench-rehearse-") as tmp:
        repo, notebook = materials(Path(tmp) / "upstream")
        if runs & {"cold", "prewarm"}:
            stack = RehearsalStack(root=ROOT, state_dir=Path(tmp) / "hub", participants=args.participants,
                                   contact=CONTACT, extra_config=extra_config)
            stack.start()
            try:
                link = repo.launch_url(stack.hub_url, notebook)
                print(f"cold: cap {args.participants}", flush=True)
                before = load()
                cold = crowd(stack, link, args, args.participants)
                write_outputs(cold, args.output / "cold")
                rows.append(figures("cold", cold, before))
                series["cold"] = [a.time_to_notebook for a in cold.attendees if a.time_to_notebook is not None]
                if "prewarm" in runs:
                    asyncio.run(stop_all(stack))
                    print("prewarm: servers stopped; prewarming every registered participant", flush=True)
                    began = time.monotonic()
                    report = asyncio.run(prewarm(stack.hub_url, stack.prewarm_token, repo.source,
                                                 concurrency=10, spawn_timeout=600))
                    prewarm_s = round(time.monotonic() - began, 1)
                    print(json.dumps({"prewarm_s": prewarm_s, "ready": report.ready, "of": len(report.users)}),
                          flush=True)
                    before = load()
                    warm = crowd(stack, link, args, args.participants)
                    write_outputs(warm, args.output / "prewarmed")
                    row = figures("prewarmed", warm, before)
                    row.update({"prewarm_s": prewarm_s, "prewarm_ready": report.ready})
                    rows.append(row)
                    series["after prewarm"] = [a.time_to_notebook for a in warm.attendees
                                               if a.time_to_notebook is not None]
                shutil.copy(stack.log_path, args.output / "hub-cold-prewarm.log")
                shutil.copy(stack.state_dir / "logs" / "oidc.log", args.output / "oidc-cold-prewarm.log")
            finally:
                stack.stop()
        if "cap" in runs:
            stack = RehearsalStack(root=ROOT, state_dir=Path(tmp) / "hub-cap", participants=args.cap,
                                   contact=CONTACT, extra_config=extra_config)
            stack.start()
            try:
                print(f"cap: cap {args.cap}", flush=True)
                before = load()
                capped = crowd(stack, repo.launch_url(stack.hub_url, notebook), args, args.cap)
                write_outputs(capped, args.output / f"cap{args.cap}")
                rows.append(figures(f"cap {args.cap}", capped, before))
                shutil.copy(stack.log_path, args.output / "hub-cap.log")
                shutil.copy(stack.state_dir / "logs" / "oidc.log", args.output / "oidc-cap.log")
            finally:
                stack.stop()

    if series:
        plot_time_to_notebook(series, args.output / "time-to-notebook.png",
                              totals={label: args.participants for label in series},
                              title=f"{args.participants} attendees clicking within {args.ramp:g} s "
                                    f"({os.cpu_count()} cores)")
    atomic.write_text(args.output / "bench.json", json.dumps({"trying_out": trials, "runs": rows}, indent=2) + "\n")
    print(f"figures: {args.output / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
