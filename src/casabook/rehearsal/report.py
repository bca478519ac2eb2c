"""A rehearsal's results for the organisers: a rich table, rehearsal.json and a PNG of the time to
notebook (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from casabook import atomic
from casabook.rehearsal.results import Rehearsal

JSON_NAME = "rehearsal.json"
PLOT_NAME = "time-to-notebook.png"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def summary_table(rehearsal: Rehearsal, title: str = "Rehearsal") -> Table:
    s = rehearsal.summary()
    plan = rehearsal.plan
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    ttn = s["time_to_notebook_s"]
    table.add_row("attendees", f"{s['participants']} clicking within {plan.ramp_s:g} s ({plan.login} login)")
    cap = f" (cap {s['cap']})" if s["cap"] else ""
    table.add_row("admitted / refused", f"{s['admitted']} / {s['refused']}{cap}")
    if rehearsal.hub_view:
        view = rehearsal.hub_view
        table.add_row("the hub's count", f"{view['admitted']} places taken of {view['participants']}, "
                                          f"{view['waitlist']} on the waiting list")
    table.add_row("notebook open", str(s["in"]))
    table.add_row("time to notebook", f"p50 {_seconds(ttn['p50'])} · p95 {_seconds(ttn['p95'])} · max {_seconds(ttn['max'])}"
                                      f" (of the {ttn['n']} who reached it)")
    if s["login_s"]["n"]:
        table.add_row("  of which logging in", f"p50 {_seconds(s['login_s']['p50'])} · p95 {_seconds(s['login_s']['p95'])}"
                                              " (identity provider and the hub's OAuth callback)")
        table.add_row("  after the login", f"p50 {_seconds(s['after_login_s']['p50'])} · "
                                           f"p95 {_seconds(s['after_login_s']['p95'])} (spawn, pull, JupyterLab)")
    table.add_row("servers started by the crowd", str(s["spawned"]))
    table.add_row("spawn failures", str(s["spawn_failures"]))
    if s["other_failures"]:
        table.add_row("other outcomes", ", ".join(f"{k}: {v}" for k, v in s["other_failures"].items()))
    table.add_row("429 'try again' / retries", f"{s['http_429']} / {s['retries']}")
    if plan.run_first_cell:
        table.add_row("first cell run", f"p50 {_seconds(s['first_cell_s']['p50'])} · p95 {_seconds(s['first_cell_s']['p95'])}")
    fp = rehearsal.footprint
    if fp:
        cpu = fp["cpu_seconds"]
        idp = f", identity provider {cpu['identity']:.0f}" if cpu.get("identity") else ""
        table.add_row("CPU seconds", f"{fp['cpu_seconds_total']:.0f} (hub {cpu['hub']:.0f}, proxy {cpu['proxy']:.0f}, "
                                     f"servers {cpu['servers']:.0f}{idp}) = {fp['cpu_seconds_per_attendee']:.1f} "
                                     "per attendee")
        peak = fp["rss_mib_peak"]
        table.add_row("memory (peak RSS)", f"servers {peak['servers']:.0f} MiB = {fp['server_rss_mib_per_attendee']:.0f} "
                                           f"MiB per attendee; hub {peak['hub']:.0f} MiB, proxy {peak['proxy']:.0f} MiB")
    table.add_row("wall time", _seconds(s["seconds"]))
    return table


def failures_table(rehearsal: Rehearsal, limit: int = 10) -> Table | None:
    failed = [a for a in rehearsal.attendees if a.outcome not in ("in", "refused")]
    if not failed:
        return None
    table = Table(title=f"Attendees who did not reach the notebook ({len(failed)})", title_justify="left")
    for column in ("attendee", "outcome", "detail"):
        table.add_column(column)
    for a in failed[:limit]:
        table.add_row(a.name, a.outcome, a.detail)
    return table


def render(rehearsal: Rehearsal, console: Console, title: str = "Rehearsal") -> None:
    console.print(summary_table(rehearsal, title))
    failures = failures_table(rehearsal)
    if failures:
        console.print(failures)


def plot_time_to_notebook(series: dict[str, list[float]], path: Path, *, title: str,
                          totals: dict[str, int] | None = None) -> Path:
    """Histogram and cumulative share of attendees with their notebook open, one line per run.

    `totals` gives each run's number of attendees, so a run where some never got in stays below 1.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (hist, ecdf) = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    upper = max((max(v) for v in series.values() if v), default=1.0)
    bins = [upper * i / 30 for i in range(31)]
    for label, values in series.items():
        if not values:
            continue
        ordered = sorted(values)
        total = (totals or {}).get(label, len(ordered))
        hist.hist(ordered, bins=bins, alpha=0.6, label=f"{label} ({len(ordered)} of {total})")
        share = [0.0] + [(i + 1) / total for i in range(len(ordered))]
        # p95 of all attendees: the time by which 95% had their notebook, if that many ever did.
        rank = math.ceil(0.95 * total)
        p95 = ordered[rank - 1] if rank <= len(ordered) else None
        legend = f"{label}: p95 {p95:.1f} s" if p95 is not None else f"{label}: p95 never ({len(ordered)} of {total} in)"
        line, = ecdf.step([0.0, *ordered], share, where="post", label=legend)
        if p95 is not None:
            ecdf.axvline(p95, color=line.get_color(), linestyle=":", linewidth=1)
    hist.set_xlabel("time to notebook (s)")
    hist.set_ylabel("attendees")
    hist.legend(fontsize="small")
    ecdf.set_xlabel("time to notebook (s)")
    ecdf.set_ylabel("share of attendees with the notebook open")
    ecdf.set_ylim(0, 1.02)
    ecdf.set_xlim(0, upper * 1.05)
    hist.yaxis.get_major_locator().set_params(integer=True)
    ecdf.grid(alpha=0.3)
    ecdf.legend(loc="lower right", fontsize="small")
    fig.suptitle(title)
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=110)
    plt.close(fig)
    return atomic.write_bytes(path, image.getvalue())


def write_outputs(rehearsal: Rehearsal, output: Path, *, extra: dict[str, Any] | None = None) -> tuple[Path, Path]:
    output.mkdir(parents=True, exist_ok=True)
    data = rehearsal.to_json()
    if extra:
        data.update(extra)
    json_path = atomic.write_text(output / JSON_NAME, json.dumps(data, indent=2) + "\n")
    s = rehearsal.summary()
    times = [a.time_to_notebook for a in rehearsal.attendees if a.time_to_notebook is not None]
    title = (f"{s['participants']} attendees within {rehearsal.plan.ramp_s:g} s: "
             f"{s['admitted']} admitted, {s['refused']} refused")
    plot = plot_time_to_notebook({"rehearsal": times}, output / PLOT_NAME, title=title,
                                 totals={"rehearsal": s["participants"] - s["refused"]})
    return json_path, plot
