"""CPU-seconds per attendee server start on the embedded hub, forked vs a new process (prints
figures, asserts nothing).

For each mode, on a fresh local stack, N servers start one after the other (through the hub's
API, as a launch link starts them) and each one's CPU is read when it is ready:
  server   CPU-s of the server process from its start to ready (a forked child counts from the fork)
  hub      CPU-s the hub spent meanwhile (and the proxy, which routes to the server, and the
           identity provider, for the login)
  wall     seconds from the request to ready
  memory   the server's unique set size (what it does not share, with the fork server say)
Modes: process (a new Python per server, `python -m casabook.hub.session`) and fork (children of
casabook.hub.forkserver, which imported the server once; its one-off import cost is printed).
With --launch, each attendee instead logs in and follows a launch link to the notebook (server,
nbgitpuller's pull, JupyterLab's page), and the proxy's CPU is counted too: the whole cost of an
attendee's first click, server-side.

    .venv/bin/python benchmarks/bench_server_start.py [--servers 5] [--mode fork|process|both] [--launch]

Measured on the 2-core machine (5 attendees, medians, load average 2-3 from other work):
  start to ready    process: server 0.80 + hub 0.06 = 0.86 CPU-s, ready in 0.98 s, 89 MiB own
                    fork:    server 0.09 + hub 0.04 = 0.15 CPU-s, ready in 0.21 s, 28 MiB own
  first click       process: server 0.84 + hub 0.10 + proxy 0.02 + identity provider 0.04 = 1.01 CPU-s
  (--launch)        fork:    server 0.14 + hub 0.08 + proxy 0.02 + identity provider 0.04 = 0.29 CPU-s
                    (notebook in 1.14 s and 0.41 s); the fork server's imports: 0.8 CPU-s once per hub
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
from casabook.testing.materials import MaterialsRepo, notebook_text
from casabook.testing.tuned import TunedStack, server_process


def cpu(process: psutil.Process, with_children: bool = True) -> float:
    try:
        t = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return t.user + t.system + ((t.children_user + t.children_system) if with_children else 0.0)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_mode(fork: bool, servers: int, launch: bool = False) -> list[dict[str, float]]:
    mode = "fork" if fork else "process"
    rows = []
    with tempfile.TemporaryDirectory(prefix="casabook-bench-start-") as tmp:
        stack = TunedStack(root=ROOT, state_dir=Path(tmp) / "state", contact="bench",
                           config=f"c.ForkedProcessSpawner.fork = {fork!r}")
        stack.start()
        try:
            hub = psutil.Process(stack.hub_process.pid)
            proxy = next(p for p in hub.children() if "configurable-http-proxy" in " ".join(p.cmdline()))
            assert stack.idp is not None and stack.idp.process is not None
            idp = psutil.Process(stack.idp.process.pid)
            names = [f"starter{i}" for i in range(servers)]
            repo = MaterialsRepo.create(Path(tmp) / "upstream", {"nb/intro.ipynb": notebook_text("x = 1")})
            if not launch:
                stack.api("POST", "users", json={"usernames": names}).raise_for_status()
            for name in names:
                before_hub, before_proxy, before_idp = cpu(hub, with_children=False), cpu(proxy), cpu(idp)
                t0 = time.perf_counter()
                if launch:
                    page = stack.launch(stack.login(name), repo.launch_url(stack.hub_url, "nb/intro.ipynb"))
                    assert page.status_code == 200, page.status_code
                else:
                    stack.api("POST", f"users/{name}/server")
                    stack.wait_ready(name)
                wall = time.perf_counter() - t0
                server = server_process(stack, name)
                row = {"server": cpu(server), "hub": cpu(hub, with_children=False) - before_hub,
                       "proxy": cpu(proxy) - before_proxy, "idp": cpu(idp) - before_idp, "wall": wall}
                row["total"] = row["server"] + row["hub"] + row["proxy"] + row["idp"]
                # Memory the server has to itself (a forked child shares the fork server's pages).
                row["uss_mib"] = server.memory_full_info().uss / 2**20
                rows.append(row)
                print(f"{mode} {name}: server {row['server']:.2f} + hub {row['hub']:.2f} + proxy {row['proxy']:.2f} "
                      f"+ identity provider {row['idp']:.2f} "
                      f"= {row['total']:.2f} CPU-s, {'notebook' if launch else 'ready'} in {wall:.2f} s "
                      f"(nice {server.nice()}, {row['uss_mib']:.0f} MiB of its own), {load()}")
            if fork:
                forker = next(p for p in hub.children() if "casabook.hub.forkserver" in " ".join(p.cmdline()))
                print(f"fork server (once per hub): {cpu(forker, with_children=False):.2f} CPU-s of imports")
        finally:
            stack.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=5)
    parser.add_argument("--mode", choices=["fork", "process", "both"], default="both")
    parser.add_argument("--launch", action="store_true", help="log in and follow a launch link to the notebook")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores, {load()}")
    results = {}
    for mode in (["process", "fork"] if args.mode == "both" else [args.mode]):
        results[mode] = run_mode(mode == "fork", args.servers, args.launch)
    for mode, rows in results.items():
        def median(key: str, rows: list[dict[str, float]] = rows) -> float:
            return statistics.median(r[key] for r in rows)

        print(f"{mode}: median over {len(rows)} attendees: server {median('server'):.2f} + hub {median('hub'):.2f} "
              f"+ proxy {median('proxy'):.2f} + identity provider {median('idp'):.2f} = {median('total'):.2f} CPU-s; "
              f"{'notebook' if args.launch else 'ready'} in {median('wall'):.2f} s; "
              f"{median('uss_mib'):.0f} MiB of its own per server")
    print(load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
