"""Event rate of the Open Data flagship analysis against the raw read rate of the same branches.

The four-lepton selection of notebooks/opendata/03-hzz-columnar-selection.ipynb (reproduced in
`four_lepton_selection` below, histogram fill included) runs over uproot-HZZ.root tiled to about a
million events and written with uproot into a temporary folder. The same branches are also only
read, chunk by chunk, the same way. If the analysis runs at half the read rate or better, the
columnar code costs no more than the I/O it needs.

Run: python benchmarks/bench_analysis.py [--events N] [--repeats N]. Target: ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import awkward as ak
import hist
import numpy as np
import uproot
import vector
from rich.console import Console

from casabook.data import default_data_dir, fetch

REPO = Path(__file__).resolve().parents[1]
SAMPLE = "uproot-HZZ.root"
BRANCHES = [f"{prefix}_{field}" for prefix in ("Electron", "Muon") for field in ("Px", "Py", "Pz", "E", "Charge")] + ["EventWeight"]
STEP_SIZE = 200_000
FLAVOUR_SUMS = {"4e": 44, "4mu": 52, "2e2mu": 48}

vector.register_awkward()


def lepton_collection(events, prefix, pdg_id):
    return ak.zip(
        {
            "px": events[f"{prefix}_Px"], "py": events[f"{prefix}_Py"], "pz": events[f"{prefix}_Pz"],
            "E": events[f"{prefix}_E"], "charge": events[f"{prefix}_Charge"],
            "flavour": ak.full_like(events[f"{prefix}_Charge"], pdg_id),
        },
        with_name="Momentum4D",
    )


def four_lepton_selection(events):
    """The notebook's selection: exactly four leptons, total charge zero, flavour sum 44, 48 or 52."""
    electrons = lepton_collection(events, "Electron", 11)
    muons = lepton_collection(events, "Muon", 13)
    n_leptons = ak.num(electrons) + ak.num(muons)
    total_charge = ak.sum(electrons.charge, axis=1) + ak.sum(muons.charge, axis=1)
    flavour_sum = 11 * ak.num(electrons) + 13 * ak.num(muons)

    cuts = {"exactly four leptons": n_leptons == 4}
    cuts["total charge zero"] = cuts["exactly four leptons"] & (total_charge == 0)
    valid = (flavour_sum == 44) | (flavour_sum == 52) | (flavour_sum == 48)
    cuts["4e, 4mu or 2e2mu"] = cuts["total charge zero"] & valid
    selected = cuts["4e, 4mu or 2e2mu"]

    four = ak.concatenate([electrons[selected], muons[selected]], axis=1)
    m4l = (four[:, 0] + four[:, 1] + four[:, 2] + four[:, 3]).mass
    return {"cuts": cuts, "leptons": four, "m4l": m4l, "flavour_sum": flavour_sum[selected],
            "weight": events.EventWeight[selected]}


def new_histogram():
    return (hist.Hist.new.Reg(34, 80, 250, name="m4l", label=r"$m_{4\ell}$ [GeV]")
            .StrCat(list(FLAVOUR_SUMS), name="channel").Weight())


CHANNEL_BY_FLAVOUR_SUM = np.full(4 * 13 + 1, "", dtype=object)
for _name, _value in FLAVOUR_SUMS.items():
    CHANNEL_BY_FLAVOUR_SUM[_value] = _name


def fill(histogram, selection) -> None:
    channel = CHANNEL_BY_FLAVOUR_SUM[ak.to_numpy(selection["flavour_sum"])]
    histogram.fill(m4l=selection["m4l"], channel=channel, weight=selection["weight"])


def tiled_file(source: Path, folder: Path, n_events: int) -> tuple[Path, int]:
    """Write `source`'s analysis branches repeated up to about `n_events` events; return path and count."""
    original = uproot.open(source)["events"].arrays(BRANCHES)
    copies_per_chunk = max(1, STEP_SIZE // len(original))
    chunk = ak.concatenate([original] * copies_per_chunk)
    n_chunks = max(1, round(n_events / len(chunk)))
    columns = {
        prefix: ak.zip({field: chunk[f"{prefix}_{field}"] for field in ("Px", "Py", "Pz", "E", "Charge")})
        for prefix in ("Electron", "Muon")
    }
    columns["EventWeight"] = chunk.EventWeight
    path = folder / "hzz-tiled.root"
    with uproot.recreate(path) as out:
        # field_name keeps the original branch names (Electron_Px), one counter per collection.
        tree = out.mktree("events", {name: column.type for name, column in columns.items()},
                          field_name=lambda outer, inner: f"{outer}_{inner}")
        for _ in range(n_chunks):
            tree.extend(columns)
    return path, n_chunks * len(chunk)


def read_only(path: Path) -> int:
    """Events read; the arrays are materialised and dropped."""
    n_read = 0
    for events in uproot.iterate(f"{path}:events", BRANCHES, step_size=STEP_SIZE):
        n_read += len(events)
    return n_read


def analysis(path: Path) -> int:
    """Events selected; the m4l histogram is filled as in the notebook."""
    histogram, n_selected = new_histogram(), 0
    for events in uproot.iterate(f"{path}:events", BRANCHES, step_size=STEP_SIZE):
        selection = four_lepton_selection(events)
        fill(histogram, selection)
        n_selected += len(selection["m4l"])
    return n_selected


def timed(function, path: Path, repeats: int) -> tuple[float, float, int]:
    """Median wall and CPU seconds over `repeats` runs, and what the function returned."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        returned = function(path)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), returned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_200_000, help="events in the tiled file (default 1.2 million)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement; the median is shown")
    args = parser.parse_args(argv)

    console = Console()
    data = default_data_dir(REPO)
    fetch(data, console=Console(file=io.StringIO()))
    with tempfile.TemporaryDirectory(prefix="casabook-bench-analysis-") as folder:
        with console.status(f"writing {SAMPLE} tiled to about {args.events:,} events"):
            path, n_events = tiled_file(data / SAMPLE, Path(folder), args.events)
        size_mb = path.stat().st_size / 1e6
        with console.status("reading the branches"):
            read_wall, read_cpu, n_read = timed(read_only, path, args.repeats)
        with console.status("running the four-lepton analysis"):
            analysis_wall, analysis_cpu, n_selected = timed(analysis, path, args.repeats)

    # Notebook 03 selects 40 of the sample's 2421 events; every copy must select as many.
    expected_selected = 40 * n_events // 2421
    if n_read != n_events or n_selected != expected_selected:
        print(f"wrong counts: read {n_read} of {n_events}, selected {n_selected}, expected {expected_selected}", file=sys.stderr)
        return 1

    read_rate, analysis_rate = n_events / read_wall, n_events / analysis_wall
    print(f"tiled {SAMPLE}: {n_events:,} events, {len(BRANCHES)} branches, {size_mb:.0f} MB, chunks of {STEP_SIZE:,} events; "
          f"{n_selected:,} selected")
    print(f"  raw uproot read      : {read_rate / 1e6:6.2f} M events/s  (wall {read_wall:.2f} s, CPU {read_cpu:.2f} s)")
    print(f"  four-lepton analysis : {analysis_rate / 1e6:6.2f} M events/s  (wall {analysis_wall:.2f} s, CPU {analysis_cpu:.2f} s)")
    print(f"  analysis / read rate : {analysis_rate / read_rate:.2f}  (target >= 0.5); CPU-time ratio {read_cpu / analysis_cpu:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
