"""How long a facility's environment takes to build, cold and warm, and the warm `casabook validate`.

    .venv/bin/python benchmarks/bench_envs.py [--facility F ...] [--repeat N]

For each facility with image files (default: every one of the repository's): the cold build
(an empty environment cache; uv's own download cache as it is, so the figure is a build from the
registries' files already fetched once: run with UV_CACHE_DIR pointing at an empty folder for a
build with downloads too), then the warm one (the environment is there: its manifest is read). Then
the warm `casabook validate` of the repository, as a user runs it (a fresh process; its results
cached by an earlier run). Target: the warm validate under 2 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--facility", action="append", default=[], help="only this facility (repeatable)")
    parser.add_argument("--repeat", type=int, default=3, help="warm runs to time (the best is reported)")
    options = parser.parse_args(argv)

    from casabook.model import load_workshop
    from casabook.validation.environments import facility_environment

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    workshop = load_workshop(REPO)
    names = options.facility or [name for name, f in workshop.facilities.items() if f.image_files]
    with tempfile.TemporaryDirectory(prefix="casabook-bench-envs-") as scratch:
        for name in names:
            facility = workshop.facility(name)
            started = time.perf_counter()
            cold = facility_environment(facility, root=Path(scratch) / name)
            cold_s = time.perf_counter() - started
            warm_s = min(_timed(lambda: facility_environment(facility, root=Path(scratch) / name))
                         for _ in range(options.repeat))
            print(f"{name:<18} {len(facility.image.built()):>3} packages declared, {len(cold.versions):>3} installed: "
                  f"cold {cold_s:6.1f} s, warm {warm_s * 1000:6.1f} ms  (environment {cold.key})")

    # The repository's own validate, warm: its environments and results are already there.
    subprocess.run([sys.executable, "-m", "casabook.cli", "--root", str(REPO), "validate"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    runs = [_timed(lambda: subprocess.run([sys.executable, "-m", "casabook.cli", "--root", str(REPO), "validate"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False))
            for _ in range(options.repeat)]
    print(f"warm casabook validate: best {min(runs):.2f} s of {len(runs)} (target under 2 s)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


if __name__ == "__main__":
    raise SystemExit(main())
