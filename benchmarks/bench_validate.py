"""How long the validation matrix takes: cold with one job and with two, and warm with nothing changed.

    .venv/bin/python benchmarks/bench_validate.py [--facility F ...] [--repeat N]

Runs the repository's real notebooks, each on its track's facility, through `casabook validate`
as a user runs it (a fresh process each time, output in a temporary folder). Targets: cold
jobs=1 / jobs=2 >= 1.7 on two cores; warm under 2 s. When some notebooks a track lists do not
exist yet, it says so and runs the ones that do, in a temporary copy of the workshop whose tracks
list only those; with none at all it runs generated stand-ins and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CASABOOK = [sys.executable, "-m", "casabook.cli"]


def existing_notebooks_workshop(folder: Path) -> tuple[Path, list[str], list[str]]:
    """A copy of the workshop whose tracks list only the notebooks that exist (the loader refuses missing ones)."""
    present, missing = [], []
    shutil.copytree(REPO / "hub-config", folder / "hub-config")
    (folder / "tracks").mkdir(parents=True)
    for track_file in sorted((REPO / "tracks").glob("*.yml")):
        track = yaml.safe_load(track_file.read_text())
        kept = [entry for entry in track["notebooks"] if (REPO / entry["path"]).is_file()]
        present += [entry["path"] for entry in kept]
        missing += [entry["path"] for entry in track["notebooks"] if entry not in kept]
        if not kept:
            continue
        paths = {entry["path"] for entry in kept}
        track["notebooks"] = kept
        track["schedule"] = [dict(s, notebooks=[p for p in s.get("notebooks", []) if p in paths])
                             for s in track.get("schedule", [])]
        (folder / "tracks" / track_file.name).write_text(yaml.safe_dump(track, sort_keys=False))
    ignore = shutil.ignore_patterns("output", ".ipynb_checkpoints")
    shutil.copytree(REPO / "notebooks", folder / "notebooks", ignore=ignore)
    # The copy reads the repository's data folder: the local facility's data_root, made absolute.
    local = folder / "hub-config" / "local.yml"
    data = yaml.safe_load(local.read_text())
    data["data_root"] = str((REPO / data["data_root"]).resolve())
    local.write_text(yaml.safe_dump(data, sort_keys=False))
    return folder, present, missing


def generated_workshop(folder: Path, count: int = 8) -> Path:
    from casabook.testing.matrix import make_workshop, notebook

    work = "import numpy as np\nrng = np.random.default_rng(1)\ntotal = float(rng.normal(size=2_000_000).sum())"
    return make_workshop(folder, {f"stand-in-{i}": notebook(work) for i in range(count)})


def timed(args: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    result = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started, result.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--facility", action="append", default=[], help="also validate on this facility")
    parser.add_argument("--repeat", type=int, default=3, help="warm runs to time (the best is reported)")
    parser.add_argument("--stand-ins", action="store_true", help="time generated stand-ins, not the real notebooks")
    parser.add_argument("--cold-repeat", type=int, default=1,
                        help="cold runs per job count, alternating 1 and 2 (the best of each is reported)")
    options = parser.parse_args(argv)

    # Other work on the machine takes cores from the parallel run: the load puts the speed-up in context.
    print("load average at start: {:.1f} {:.1f} {:.1f} on {} core(s)".format(*os.getloadavg(), os.cpu_count()))
    with tempfile.TemporaryDirectory(prefix="casabook-bench-validate-") as tmp:
        tmp_path = Path(tmp)
        root, present, missing = existing_notebooks_workshop(tmp_path / "workshop")
        if missing and not options.stand_ins:
            print(f"{len(missing)} notebook(s) the tracks list do not exist yet: {', '.join(missing)}")
        if present and not options.stand_ins:
            print(f"real notebooks: {len(present)} ({', '.join(present)})")
        else:
            shutil.rmtree(root)
            root = generated_workshop(tmp_path / "workshop")
            why = "asked for" if options.stand_ins else "no real notebooks exist yet"
            print(f"{why}: timing 8 generated stand-ins (numpy, 2M normal draws each)")

        extra = [arg for name in options.facility for arg in ("--facility", name)]
        figures: dict[str, float] = {}
        codes: dict[str, int] = {}
        for attempt in range(options.cold_repeat):
            for jobs in (1, 2):  # alternating, so a change in the machine's other load hits both alike
                output = tmp_path / f"out-jobs{jobs}"
                shutil.rmtree(output, ignore_errors=True)
                seconds, codes[f"cold jobs={jobs}"] = timed(
                    [*CASABOOK, "--root", str(root), "validate", "--jobs", str(jobs), "--output", str(output), *extra])
                figures[f"cold jobs={jobs}"] = min(seconds, figures.get(f"cold jobs={jobs}", seconds))
        warm = []
        for _ in range(options.repeat):
            seconds, codes["warm"] = timed([*CASABOOK, "--root", str(root), "validate", "--jobs", "2",
                                            "--output", str(tmp_path / "out-jobs2"), *extra])
            warm.append(seconds)
        figures["warm"] = min(warm)

        report = json.loads((tmp_path / "out-jobs2" / "report.json").read_text())
        statuses = [run["status"] for run in report["runs"]]
        cold_report = json.loads((tmp_path / "out-jobs1" / "report.json").read_text())
        print(f"matrix: {len(report['runs'])} run(s) over {', '.join(report['facilities'])}")
        for run in cold_report["runs"]:
            failure = run.get("failure") or {}
            detail = f"  {failure.get('kind')}: {failure.get('message', '')[:100]}" if failure else ""
            print(f"  {run['notebook']} on {run['facility']}: {run['status']} {run['duration_s']} s "
                  f"({run['cpu_s']} s CPU), peak {run['peak_memory_mib']} MiB{detail}")
        ratio = figures["cold jobs=1"] / figures["cold jobs=2"]
        cpu = sum(run["cpu_s"] or 0 for run in cold_report["runs"])
        wall = sum(run["duration_s"] or 0 for run in cold_report["runs"])
        print(f"kernels' CPU time {cpu:.1f} s over {wall:.1f} s of run time with --jobs 1 "
              f"({100 * cpu / wall if wall else 0:.0f}%: the rest is waiting, for a core or for I/O)")
        parallel = json.loads((tmp_path / "out-jobs2" / "report.json").read_text())
        wall2 = sum(run["duration_s"] or 0 for run in parallel["runs"])
        cpu2 = sum(run["cpu_s"] or 0 for run in parallel["runs"])
        print(f"with --jobs 2: {cpu2:.1f} s CPU over {wall2:.1f} s of run time, each run {wall2 / wall if wall else 0:.2f}x "
              "as long as alone (1.0: the two jobs never waited for each other)")
        print("load average at end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
        print(f"cold, --jobs 1:   {figures['cold jobs=1']:7.2f} s (exit {codes['cold jobs=1']})")
        print(f"cold, --jobs 2:   {figures['cold jobs=2']:7.2f} s (exit {codes['cold jobs=2']})")
        print(f"speed-up:         {ratio:7.2f} x   (target >= 1.7)")
        print(f"warm, unchanged:  {figures['warm']:7.2f} s (best of {options.repeat}; target < 2 s; "
              f"statuses {sorted(set(statuses))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
