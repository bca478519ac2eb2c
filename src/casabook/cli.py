"""The `casabook` command: argument parsing only; each command calls one function of the package.

Heavy modules (jupyterhub, sphinx, coffea) are imported inside the command that needs them, so
`casabook check` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from casabook import __version__
from casabook.errors import CasabookError

err_console = Console(stderr=True)


def _root(args: argparse.Namespace) -> Path:
    from casabook.model import find_root

    return find_root(Path(args.root) if args.root else None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="casabook",
        description="Run hands-on HEP analysis workshops on coffea-casa style analysis facilities.",
    )
    parser.add_argument("--version", action="version", version=f"casabook {__version__}")
    parser.add_argument("--root", help="the workshop repository (default: found from the current folder)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # --- commands are added below, one block each -------------------------------------------

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CasabookError as error:
        err_console.print(f"[bold red]error:[/] {error.render()}", highlight=False, soft_wrap=True)
        return error.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
