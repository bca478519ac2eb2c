"""The answer at the door while servers start: how long the refused wait for the full page, and
what lowering the servers' CPU priority costs the admitted (prints figures, asserts nothing).

On a fresh local stack capped at --admitted places, that many attendees log in; then all their
servers are asked for at once and, half a second later, --refused newcomers log in together.
  refused   seconds from a newcomer's first click to the workshop-full page
  admitted  seconds from asking for a server to its being ready
once per --niceness value (the servers' steps below the hub), with servers forked or started as
processes of their own (--mode).

    .venv/bin/python benchmarks/bench_door.py [--admitted 10] [--refused 10] [--niceness 0 10] [--mode process]

Measured on the 2-core machine (20 admitted, 10 refused, load average 2-3 from other work):
  fork, niceness 0:     refused to the full page p50 2.00 s, p95 3.57 s; admitted ready p50 5.60 s
  fork, niceness 10:    refused to the full page p50 1.22 s, p95 1.27 s; admitted ready p50 4.64 s
  process, niceness 0:  refused p50 12.9 s; admitted p50 13.7 s (20 new Pythons at once)
  process, niceness 10: refused p50 15.4 s; admitted p50 16.6 s, while other work took the load
                        average from 7 to 12: no gain shown for processes of their own
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from casabook.testing.hub import LoginRefused

ROOT = Path(__file__).resolve().parents[1]
from casabook.testing.tuned import TunedStack


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def one_round(niceness: int, fork: bool, admitted: int, refused: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="casabook-bench-door-") as tmp:
        stack = TunedStack(root=ROOT, state_dir=Path(tmp) / "state", contact="bench", participants=admitted,
                           config=f"c.ForkedProcessSpawner.niceness = {niceness}\nc.ForkedProcessSpawner.fork = {fork}")
        stack.start()
        try:
            names = [f"in{i}" for i in range(admitted)]
            for name in names:
                stack.login(name)
            ready: list[float] = []
            full: list[float] = []
            errors: list[str] = []

            def admit(name: str) -> None:
                t0 = time.perf_counter()
                stack.api("POST", f"users/{name}/server")
                stack.wait_ready(name, timeout=300)
                ready.append(time.perf_counter() - t0)

            def refuse(name: str) -> None:
                t0 = time.perf_counter()
                try:
                    stack.login(name)
                    errors.append(f"{name} was admitted")
                except LoginRefused as page:
                    if "This workshop is full" not in page.page:
                        errors.append(f"{name}: HTTP {page.status}")
                full.append(time.perf_counter() - t0)

            threads = [threading.Thread(target=admit, args=(n,)) for n in names]
            for thread in threads:
                thread.start()
            time.sleep(0.5)
            later = [threading.Thread(target=refuse, args=(f"out{i}",)) for i in range(refused)]
            for thread in later:
                thread.start()
            for thread in threads + later:
                thread.join()
            if errors:
                print("  not as expected:", "; ".join(errors))
            return {"refused": full, "admitted": ready}
        finally:
            stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admitted", type=int, default=10)
    parser.add_argument("--refused", type=int, default=10)
    parser.add_argument("--niceness", type=int, nargs="+", default=[0, 10])
    parser.add_argument("--mode", choices=["fork", "process"], default="fork")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores, {load()}")
    for niceness in args.niceness:
        figures = one_round(niceness, args.mode == "fork", args.admitted, args.refused)
        print(f"niceness {niceness} ({args.mode}): refused to the full page median "
              f"{statistics.median(figures['refused']):.2f} s, p95 {p95(figures['refused']):.2f} s; "
              f"admitted to ready median {statistics.median(figures['admitted']):.2f} s, "
              f"p95 {p95(figures['admitted']):.2f} s; {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
