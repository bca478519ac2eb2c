"""CPU-seconds per attendee server start on the embedded hub, forked vs a new process (prints
figures, asserts nothing).

For each mode, on a fresh local stack, N servers start one after the other (through the hub's
API, as a launch link starts them) and each one's CPU is read when it is ready:
  server   CPU-s of the server process from its start to ready (a forked child counts from the fork)
  hub      CPU-s the hub spent meanwhile
  wall     seconds from the request to ready
Modes: process (a new Python per server, `python -m casabook.hub.session`) and fork (children of
casabook.hub.forkserver, which imported the server once; its one-off import cost is printed).

    .venv/bin/python benchmarks/bench_server_start.py [--servers 5] [--mode fork|process|both]
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
sys.path.insert(0, str(ROOT / "tests"))

from localhub import TunedStack, server_process  # noqa: E402


def cpu(process: psutil.Process, with_children: bool = True) -> float:
    try:
        t = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return t.user + t.system + ((t.children_user + t.children_system) if with_children else 0.0)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_mode(fork: bool, servers: int) -> list[dict[str, float]]:
    mode = "fork" if fork else "process"
    rows = []
    with tempfile.TemporaryDirectory(prefix="casabook-bench-start-") as tmp:
        stack = TunedStack(root=ROOT, state_dir=Path(tmp) / "state", contact="bench",
                           config=f"c.ForkedProcessSpawner.fork = {fork!r}")
        stack.start()
        try:
            hub = psutil.Process(stack.hub_process.pid)
            names = [f"starter{i}" for i in range(servers)]
            stack.api("POST", "users", json={"usernames": names}).raise_for_status()
            for name in names:
                before_hub = cpu(hub, with_children=False)
                t0 = time.perf_counter()
                stack.api("POST", f"users/{name}/server")
                stack.wait_ready(name)
                wall = time.perf_counter() - t0
                server = server_process(stack, name)
                row = {"server": cpu(server), "hub": cpu(hub, with_children=False) - before_hub, "wall": wall}
                rows.append(row)
                print(f"{mode} {name}: server {row['server']:.2f} CPU-s, hub {row['hub']:.2f} CPU-s, "
                      f"ready in {wall:.2f} s (nice {server.nice()}), {load()}")
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
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores, {load()}")
    results = {}
    for mode in (["process", "fork"] if args.mode == "both" else [args.mode]):
        results[mode] = run_mode(mode == "fork", args.servers)
    for mode, rows in results.items():
        print(f"{mode}: median over {len(rows)} servers: server {statistics.median(r['server'] for r in rows):.2f} "
              f"CPU-s, hub {statistics.median(r['hub'] for r in rows):.2f} CPU-s, "
              f"ready in {statistics.median(r['wall'] for r in rows):.2f} s")
    print(load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
