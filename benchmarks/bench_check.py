"""How long `casabook check` takes on the repository, as an instructor runs it (a new process each time).

Run: python benchmarks/bench_check.py [--runs N]. Target: under 2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    command = [sys.executable, "-m", "casabook.cli", "--root", str(REPO), "check"]
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if result.returncode not in (0, 1):
            print(result.stderr, file=sys.stderr)
            return result.returncode
    print(f"casabook check on {REPO.name}: exit {result.returncode}, {args.runs} runs")
    print(f"  median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s (target < 2 s)")
    # Other work on the machine slows every run: the figure means little without it.
    print("  load average (1, 5, 15 min): " + ", ".join(f"{load:.2f}" for load in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
