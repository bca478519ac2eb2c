"""A rehearsal's results for the organisers: a rich table (or its figures as JSON), rehearsal.json
and a PNG of the time to notebook and what the crowd met at the door (matplotlib's Agg backend: no
display needed)."""

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
PARTS = {"hub": "hub", "proxy": "proxy", "identity": "identity provider", "servers": "servers"}


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
    table.add_row("error pages met", _error_pages(s))
    table.add_row("retries (reloads after an error page)", f"{s['retries']}" + (
        f" (and {s['transport_retries']} connections the browser retried itself)" if s["transport_retries"] else ""))
    full = s["time_to_full_page_s"]
    if full["n"]:
        table.add_row("refused: time to the full page", f"p50 {_seconds(full['p50'])} · p95 {_seconds(full['p95'])} · "
                                                        f"max {_seconds(full['max'])} (of the {full['n']} refused)")
    table.add_row("place in line", _place_in_line(s["place_in_line"]))
    if plan.run_first_cell:
        table.add_row("first cell run", f"p50 {_seconds(s['first_cell_s']['p50'])} · p95 {_seconds(s['first_cell_s']['p95'])}")
    fp = rehearsal.footprint
    if fp:
        cpu = fp["cpu_seconds"]
        idp = f", identity provider {cpu['identity']:.0f}" if cpu.get("identity") else ""
        table.add_row("CPU seconds", f"{fp['cpu_seconds_total']:.0f} (hub {cpu['hub']:.0f}, proxy {cpu['proxy']:.0f}, "
                                     f"servers {cpu['servers']:.0f}{idp}) = {fp['cpu_seconds_per_attendee']:.1f} "
                                     "per attendee")
        per = fp.get("cpu_seconds_per_attendee_by_part")
        if per:
            table.add_row("  CPU-s per attendee by part", " · ".join(
                f"{PARTS[part]} {per[part]:.2f}" for part in PARTS if part in per))
        peak = fp["rss_mib_peak"]
        table.add_row("memory (peak RSS)", f"servers {peak['servers']:.0f} MiB = {fp['server_rss_mib_per_attendee']:.0f} "
                                           f"MiB per attendee; hub {peak['hub']:.0f} MiB, proxy {peak['proxy']:.0f} MiB")
    table.add_row("wall time", _seconds(s["seconds"]))
    return table


def _error_pages(s: dict[str, Any]) -> str:
    if not s["error_pages"]:
        return "none"
    statuses = ", ".join(f"HTTP {status}: {n}" for status, n in s["error_pages_by_status"].items())
    return (f"{s['error_pages']} ({statuses}; {s['error_pages_too_many_users']} of JupyterHub's 'Too many users' "
            f"pages), met by {s['attendees_meeting_error_pages']} attendees, at most "
            f"{s['error_pages_max_per_attendee']} by one")


def _place_in_line(place: dict[str, Any]) -> str:
    if not place["waited"]:
        return "nobody was told a place in a spawn line"
    return (f"{place['waited']} attendees waited in line; the largest place {place['max']} ahead "
            f"(p50 {place['p50']}, p95 {place['p95']})")


def figures(rehearsal: Rehearsal, **paths: Path) -> dict[str, Any]:
    """What the table shows, for `--format json`: the summary, the footprint and the hub's count."""
    return {"summary": rehearsal.summary(), "footprint": rehearsal.footprint, "hub_view": rehearsal.hub_view,
            **{name: str(path) for name, path in paths.items()}}


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


def error_pages_table(rehearsal: Rehearsal, limit: int = 10) -> Table | None:
    """The attendees who met error pages, whatever their outcome: each page as they read it."""
    met = [a for a in rehearsal.attendees if a.error_pages]
    if not met:
        return None
    table = Table(title=f"Attendees who met error pages ({len(met)})", title_justify="left")
    for column in ("attendee", "outcome", "pages", "the first"):
        table.add_column(column)
    for a in met[:limit]:
        first = a.error_pages[0]
        table.add_row(a.name, a.outcome, str(len(a.error_pages)),
                      f"HTTP {first.status} at {first.at_s:.1f} s, {first.path}: {first.message}")
    return table


def render(rehearsal: Rehearsal, console: Console, title: str = "Rehearsal") -> None:
    console.print(summary_table(rehearsal, title))
    for table in (error_pages_table(rehearsal), failures_table(rehearsal)):
        if table:
            console.print(table)


def _figure(panels: int) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, panels, figsize=(5.5 * panels, 4.5), constrained_layout=True)


def _save(fig: Any, path: Path, title: str) -> Path:
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=110)
    plt.close(fig)
    return atomic.write_bytes(path, image.getvalue())


def plot_time_to_notebook(series: dict[str, list[float]], path: Path, *, title: str,
                          totals: dict[str, int] | None = None) -> Path:
    """Histogram and cumulative share of attendees with their notebook open, one line per run.

    `totals` gives each run's number of attendees, so a run where some never got in stays below 1.
    """
    fig, (hist, ecdf) = _figure(2)
    _draw_time_to_notebook(hist, ecdf, series, totals)
    return _save(fig, path, title)


def plot_rehearsal(rehearsal: Rehearsal, path: Path, *, title: str) -> Path:
    """The time to notebook of the admitted, and a third panel for the door: the refused's time to
    the full page, and the error pages, retries and places in line the crowd met."""
    s = rehearsal.summary()
    fig, (hist, ecdf, door) = _figure(3)
    times = [a.time_to_notebook for a in rehearsal.attendees if a.time_to_notebook is not None]
    _draw_time_to_notebook(hist, ecdf, {"rehearsal": times}, {"rehearsal": s["participants"] - s["refused"]})
    refused = sorted(a.time_to_full_page for a in rehearsal.attendees if a.time_to_full_page is not None)
    if refused:
        full = s["time_to_full_page_s"]
        line, = door.step([0.0, *refused], [0.0] + [(i + 1) / len(refused) for i in range(len(refused))],
                          where="post", label=f"refused: p95 {full['p95']:.1f} s")
        door.axvline(full["p95"], color=line.get_color(), linestyle=":", linewidth=1)
        door.set_xlim(0, refused[-1] * 1.05 or 1.0)
        door.legend(loc="lower right", fontsize="small")
    door.set_ylim(0, 1.02)
    door.set_xlabel("time to the workshop-full page (s)")
    door.set_ylabel("share of the refused told")
    door.grid(alpha=0.3)
    met = (f"error pages: {s['error_pages']} ({s['error_pages_too_many_users']} 'Too many users')\n"
           f"met by {s['attendees_meeting_error_pages']} attendees\nretries: {s['retries']}\n"
           + _place_in_line(s["place_in_line"]).replace("; ", "\n"))
    door.text(0.03, 0.97, met, transform=door.transAxes, va="top", fontsize="small",
              bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8})
    door.set_title("at the door", fontsize="medium")
    return _save(fig, path, title)


def _draw_time_to_notebook(hist: Any, ecdf: Any, series: dict[str, list[float]], totals: dict[str, int] | None) -> None:
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


def write_outputs(rehearsal: Rehearsal, output: Path, *, extra: dict[str, Any] | None = None) -> tuple[Path, Path]:
    output.mkdir(parents=True, exist_ok=True)
    data = rehearsal.to_json()
    if extra:
        data.update(extra)
    json_path = atomic.write_text(output / JSON_NAME, json.dumps(data, indent=2) + "\n")
    s = rehearsal.summary()
    title = (f"{s['participants']} attendees within {rehearsal.plan.ramp_s:g} s: "
             f"{s['admitted']} admitted, {s['refused']} refused")
    return json_path, plot_rehearsal(rehearsal, output / PLOT_NAME, title=title)
