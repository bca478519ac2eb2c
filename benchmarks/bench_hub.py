"""Time-to-notebook and CPU per attendee on the embedded hub (prints figures, asserts nothing).

For each attendee in turn, on a fresh local stack:
  login      the OAuth dance with the identity provider (the attendee's first click)
  notebook   launch link -> server started -> materials pulled by nbgitpuller -> the notebook's
             JupyterLab page (the "click to notebook ready" figure; target < 2.5 s)
  CPU        seconds of CPU spent server-side (hub + proxy + the attendee's server and its git)
             for login + spawn + pull; target 1.5 CPU-s (stock JupyterHub + jupyter_server: 3.2)

    .venv/bin/python benchmarks/bench_hub.py [--attendees 5] [--session lean|stock]

--session stock starts attendees' servers with the stock jupyterhub-singleuser command (every
server extension the environment enables, nbgitpuller's 0.5 s polling, the IRI grammar compile,
JupyterLab's yarn-config subprocess); lean (the default, what casabook configures, see
casabook.hub.session) trims those and keeps JupyterLab, nbgitpuller and terminals. Both use
casabook's spawner, which hands the server over as soon as it listens.

Measured on the 2-core machine in a quiet moment (5 attendees, medians):
  stock: click to notebook 3.84 s, 3.19 CPU-s per attendee
  lean:  click to notebook 1.41 s, 1.21 CPU-s per attendee (server 1.07, hub 0.12, proxy 0.03)
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

from casabook.testing.hub import LocalHub
from casabook.testing.materials import MaterialsRepo, notebook_text
from casabook.testing.tuned import server_process

ROOT = Path(__file__).resolve().parents[1]


def cpu(process: psutil.Process) -> float:
    try:
        t = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return t.user + t.system + t.children_user + t.children_system


def load() -> str:
    """The machine is shared: the load average says how quiet it was."""
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def materials(folder: Path) -> MaterialsRepo:
    return MaterialsRepo.create(folder, {"nb/intro.ipynb": notebook_text("x = 1\nprint(x)"), "README.md": "# materials\n"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attendees", type=int, default=5)
    parser.add_argument("--session", choices=["lean", "stock"], default="lean")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="casabook-bench-") as tmp:
        repo = materials(Path(tmp) / "upstream")
        env = {"CASABOOK_STOCK_SESSION": "1"} if args.session == "stock" else {}
        stack = LocalHub(root=ROOT, state_dir=Path(tmp) / "state", contact="bench", extra_env=env)
        t0 = time.perf_counter()
        stack.start()
        print(f"stack up in {time.perf_counter() - t0:.2f} s ({args.session} session servers); load {load()}")
        hub = psutil.Process(stack.hub_process.pid)
        proxy = next(p for p in hub.children() if "configurable-http-proxy" in " ".join(p.cmdline()))
        rows = []
        try:
            for i in range(args.attendees):
                name = f"attendee{i}"
                link = repo.launch_url(stack.hub_url, "nb/intro.ipynb")
                before_hub, before_proxy, before_own = cpu(hub), cpu(proxy), own_cpu()
                t0 = time.perf_counter()
                browser = stack.login(name)
                t1 = time.perf_counter()
                phases: dict[str, float] = {}
                page = stack.launch(browser, link, timings=phases)
                t2 = time.perf_counter()
                assert page.status_code == 200, page.status_code
                server = server_process(stack, name)  # forked from the fork server, or a child of the hub
                server_cpu = cpu(server)
                row = {"login": t1 - t0, "notebook": t2 - t1, "server": server_cpu,
                       "hub": cpu(hub) - before_hub, "proxy": cpu(proxy) - before_proxy,
                       "client+idp": own_cpu() - before_own}
                row["cpu"] = row["server"] + row["hub"] + row["proxy"]
                rows.append(row)
                print(f"{name}: login {row['login']:.2f} s, click to notebook {row['notebook']:.2f} s "
                      f"(server {phases['server']:.2f} + pull {phases['pull']:.2f} + lab {phases['lab']:.2f}); CPU-s: "
                      f"server {row['server']:.2f} + hub {row['hub']:.2f} + proxy {row['proxy']:.2f} = {row['cpu']:.2f} "
                      f"(benchmark's client and identity provider: {row['client+idp']:.2f})")
        finally:
            stack.stop()

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(f"median over {len(rows)} attendees ({args.session}): login {median('login'):.2f} s, "
          f"click to notebook {median('notebook'):.2f} s (target < 2.5 s), "
          f"login+spawn+pull {median('cpu'):.2f} CPU-s per attendee (target 1.5); load {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
