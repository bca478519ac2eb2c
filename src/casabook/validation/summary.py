"""What `casabook validate` prints once the matrix has run: the table, each failure, the counts."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from casabook.validation.report import REPORT_HTML
from casabook.validation.results import Report

_STYLE = {"passed": "green", "failed": "bold red", "cached": "cyan"}


def summary_table(report: Report) -> Table:
    """Notebooks down, facilities across; each cell the run's status, figures and first failure."""
    table = Table(title="casabook validate", show_lines=True)
    table.add_column("notebook", overflow="fold")
    for facility in report.facilities:
        table.add_column(facility, overflow="fold")
    for notebook in report.notebooks:
        row = [escape(notebook)]
        for facility in report.facilities:
            run = report.run(notebook, facility)
            if run is None:
                row.append("[dim]—[/]")
                continue
            text = f"[{_STYLE[run.status]}]{run.shown_status()}[/]"
            if figures := run.figures():
                text += f"\n{figures}"
            if run.failure is not None:
                where = run.failure.cell.describe() if run.failure.cell else ""
                text += f"\n[red]{escape(run.failure.kind)}[/] {escape(where)}"
            if run.substitutions:
                text += f"\n[dim]{len(run.substitutions)} substitution(s)[/]"
            row.append(text)
        table.add_row(*row)
    return table


def failure_lines(report: Report) -> list[str]:
    """One line per failed run: notebook, facility and what an attendee would meet first."""
    return [f"{run.notebook} on {run.facility}: {run.failure.describe()}"
            for run in report.runs if run.status == "failed" and run.failure is not None]


def environment_lines(report: Report) -> list[str]:
    """One line per facility: the environment its runs used (hash, Python, against the image's)."""
    lines: dict[str, str] = {}
    for run in report.runs:
        if run.environment is not None and run.facility not in lines:
            env = run.environment
            where = "this machine's environment" if env.key == "this-machine" else f"environment {env.key}"
            image = f" (the image: Python {env.image_python})" if env.image_python else ""
            lines[run.facility] = f"{run.facility}: {where}, Python {env.python}{image}"
    return list(lines.values())


def print_summary(report: Report, console: Console) -> None:
    """The summary table, the environment of each facility, a `failed:` line per failed run, and the counts
    with where the report is."""
    console.print(summary_table(report))
    for line in environment_lines(report):
        console.print(f"[dim]{escape(line)}[/]", highlight=False, soft_wrap=True)
    for line in failure_lines(report):
        console.print(f"[bold red]failed:[/] {escape(line)}", highlight=False, soft_wrap=True)
    console.print(f"{report.count('passed')} passed, {report.count('failed')} failed, {report.count('cached')} cached; "
                  f"report: {escape(str(report.folder / REPORT_HTML))}", highlight=False, soft_wrap=True)
