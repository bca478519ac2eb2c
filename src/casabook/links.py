"""nbgitpuller launch links: build them, parse them back, and check each one against git.

A launch link sends an attendee through their facility's hub to nbgitpuller, which clones (or
merges into) the materials in their home and opens the notebook in JupyterLab:

    {hub}/hub/user-redirect/git-pull?repo=...&branch=...&targetpath=...&urlpath=lab/tree/<targetpath>/<path>
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from rich.console import Console
from rich.markup import escape

from casabook.errors import CasabookError
from casabook.model import Facility, Track, Workshop

LAUNCH_PATH = "/hub/user-redirect/git-pull"


@dataclass(frozen=True)
class Source:
    """Where attendees pull the materials from."""

    repo: str
    branch: str
    targetpath: str


@dataclass(frozen=True)
class LaunchLink:
    track: str
    notebook: str
    title: str
    facility: str
    hub_url: str
    source: Source

    @property
    def url(self) -> str:
        return launch_url(self.hub_url, self.source, self.notebook)


def launch_url(hub_url: str, source: Source, notebook: str) -> str:
    query = urlencode(
        {
            "repo": source.repo,
            "branch": source.branch,
            "targetpath": source.targetpath,
            "urlpath": f"lab/tree/{source.targetpath}/{notebook}",
        },
        # quote (not quote_plus): nbgitpuller's own link generator encodes spaces as %20.
        quote_via=quote,
        safe="",
    )
    return f"{hub_url.rstrip('/')}{LAUNCH_PATH}?{query}"


def parse_launch_url(url: str) -> tuple[str, Source, str]:
    """(hub_url, source, notebook) from a launch link: the inverse of launch_url."""
    parts = urlsplit(url)
    if not parts.path.endswith(LAUNCH_PATH):
        raise ValueError(f"not an nbgitpuller launch link: {url}")
    query = {key: values[0] for key, values in parse_qs(parts.query, strict_parsing=True).items()}
    source = Source(repo=query["repo"], branch=query["branch"], targetpath=query["targetpath"])
    prefix = f"lab/tree/{source.targetpath}/"
    if not query["urlpath"].startswith(prefix):
        raise ValueError(f"urlpath {query['urlpath']!r} does not open a file under {prefix!r}")
    hub_url = f"{parts.scheme}://{parts.netloc}{parts.path[: -len(LAUNCH_PATH)]}"
    return hub_url, source, query["urlpath"][len(prefix):]


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)


def default_source(root: Path, track: Track, *, repo: str | None = None, branch: str | None = None) -> Source:
    """The source for a track: command-line overrides, then the track's `materials`, then git."""
    repo = repo or track.materials.repo
    if not repo:
        origin = _git(root, "remote", "get-url", "origin")
        # Without an origin, only a hub on this machine can reach the materials: file:// clones shallow, as nbgitpuller needs.
        repo = origin.stdout.strip() if origin.returncode == 0 else root.resolve().as_uri()
    branch = branch or track.materials.branch
    if not branch:
        head = _git(root, "symbolic-ref", "--quiet", "--short", "HEAD")
        if head.returncode != 0:
            raise CasabookError("no-branch", "HEAD is detached or the repository has no branch; give --branch",
                                file=f"tracks/{track.name}.yml", key="materials.branch")
        branch = head.stdout.strip()
    targetpath = track.materials.targetpath or Path(urlsplit(repo).path).name.removesuffix(".git") or "materials"
    return Source(repo=repo, branch=branch, targetpath=targetpath)


def track_links(workshop: Workshop, track: Track, *, hub_url: str | None = None,
                repo: str | None = None, branch: str | None = None) -> list[LaunchLink]:
    """One launch link per notebook of the track, into its facility (or into `hub_url` when given)."""
    facility: Facility = workshop.facility_of(track)
    source = default_source(workshop.root, track, repo=repo, branch=branch)
    return [
        LaunchLink(track=track.name, notebook=entry.path, title=entry.title, facility=facility.name,
                   hub_url=hub_url or facility.hub.url, source=source)
        for entry in track.notebooks
    ]


def broken_links(root: Path, links: list[LaunchLink]) -> list[tuple[LaunchLink, str]]:
    """Links whose branch or file does not exist in this repository's git, each with the reason.

    Checked with git alone (no network): the branch must exist here (locally or as origin's),
    and the file must be committed on it, since that is what nbgitpuller will clone.
    """
    broken: list[tuple[LaunchLink, str]] = []
    resolved: dict[str, str | None] = {}
    for link in links:
        branch = link.source.branch
        if branch not in resolved:
            resolved[branch] = None
            for ref in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"):
                if _git(root, "rev-parse", "--verify", "--quiet", ref).returncode == 0:
                    resolved[branch] = ref
                    break
        ref = resolved[branch]
        if ref is None:
            broken.append((link, f"branch {branch!r} does not exist in {root.name}"))
        elif _git(root, "cat-file", "-e", f"{ref}:{link.notebook}").returncode != 0:
            broken.append((link, f"{link.notebook} is not committed on branch {branch!r}"))
    return broken


def render_broken(broken: list[tuple[LaunchLink, str]], console: Console) -> None:
    """One line per broken link: its track and what is wrong."""
    for link, reason in broken:
        console.print(f"[bold red]broken link:[/] {escape(link.track)}: {escape(reason)}", highlight=False)


def render_links(links: list[LaunchLink], fmt: str) -> str:
    """Links as Markdown (for e-mails and pages), CSV (for mail merges) or JSON (for tools)."""
    if fmt == "json":
        import json

        return json.dumps([{"track": l.track, "notebook": l.notebook, "title": l.title, "facility": l.facility,
                            "url": l.url} for l in links], indent=2)
    if fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["track", "notebook", "title", "facility", "url"])
        for l in links:
            writer.writerow([l.track, l.notebook, l.title, l.facility, l.url])
        return buffer.getvalue().rstrip("\n")
    lines: list[str] = []
    for track in dict.fromkeys(l.track for l in links):
        lines.append(f"## {track}")
        lines.extend(f"- [{l.title}]({l.url}) ({l.facility})" for l in links if l.track == track)
        lines.append("")
    return "\n".join(lines).rstrip("\n")
