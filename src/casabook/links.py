"""nbgitpuller launch links: build them, parse them back, and check each one where its hub clones from.

A launch link sends an attendee through their facility's hub to nbgitpuller, which clones (or
merges into) the materials in their home and opens the notebook in JupyterLab:

    {hub}/hub/user-redirect/git-pull?repo=...&branch=...&targetpath=...&urlpath=lab/tree/<targetpath>/<path>

Every launch link casabook makes (links, book, rehearse, prewarm) gets its source here, so the
rules hold everywhere: the repo as a hub fetches it (SSH as https://), a folder only for a hub on
this machine, and the branch and notebook checked on what that hub will clone.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from rich.console import Console
from rich.markup import escape

from casabook.errors import CasabookError
from casabook.model import Facility, Track, Workshop
from casabook.repo_url import for_hub, is_local, is_loopback_url, is_ssh, local_path, same_repository

LAUNCH_PATH = "/hub/user-redirect/git-pull"


@dataclass(frozen=True)
class RepoFrom:
    """Where a source's repo was set, so a message can say what to change."""

    kind: Literal["option", "materials", "origin", "clone", "page"]
    where: str  # "--repo", "tracks/cms.yml:21: materials.repo", "origin", "this clone"
    tracks_file: str  # where materials.repo would go


FROM_PAGE = RepoFrom("page", "a page of the book", "tracks/<track>.yml")


@dataclass(frozen=True)
class Source:
    """Where attendees pull the materials from."""

    repo: str
    branch: str
    targetpath: str
    given: RepoFrom = field(default=FROM_PAGE, compare=False)


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


def _remotes(root: Path) -> dict[str, str]:
    """This repository's remotes, name -> URL as configured: not `git remote get-url`, which applies
    the instructor's own `insteadOf` rewrites, a config the hub does not have."""
    listed = _git(root, "config", "--get-regexp", r"^remote\..*\.url$").stdout
    remotes = {}
    for line in listed.splitlines():
        key, _, url = line.partition(" ")
        # A remote may list several URLs; git fetches from the first.
        remotes.setdefault(key.removeprefix("remote.").removesuffix(".url"), url.strip())
    return remotes


def _remote_of(remotes: dict[str, str], repo: str) -> str | None:
    """The remote (origin first) whose URL names the same repository as `repo`."""
    return next((name for name, url in sorted(remotes.items(), key=lambda item: item[0] != "origin")
                 if same_repository(url, repo)), None)


def default_source(root: Path, track: Track, *, repo: str | None = None, branch: str | None = None,
                   hub_url: str | None = None, materials_key: str | None = None) -> Source:
    """The source for a track: command-line overrides, then the track's `materials`, then git.

    Without either, the repo is this repository's origin; for a hub on this machine (`hub_url` on
    loopback), or when there is no origin, it is this clone itself: the local hub clones what is
    committed here (file:// clones shallow, as nbgitpuller needs). The repo is written as a hub
    fetches it (casabook.repo_url.for_hub: SSH forms as https://; a folder as an absolute file:// URL).
    `materials_key` names where
    materials.repo is written, with its line, for messages.
    """
    tracks_file = f"tracks/{track.name}.yml"
    remotes = _remotes(root)
    if repo:
        given = RepoFrom("option", "--repo", tracks_file)
    elif track.materials.repo:
        repo = track.materials.repo
        given = RepoFrom("materials", materials_key or f"{tracks_file}: materials.repo", tracks_file)
    else:
        origin = None if hub_url and is_loopback_url(hub_url) else remotes.get("origin")
        if origin:
            repo, given = origin, RepoFrom("origin", "origin", tracks_file)
        else:
            repo, given = root.resolve().as_uri(), RepoFrom("clone", "this clone", tracks_file)
    branch = branch or track.materials.branch
    if not branch:
        head = _git(root, "symbolic-ref", "--quiet", "--short", "HEAD")
        if head.returncode != 0:
            not_git = _git(root, "rev-parse", "--git-dir").returncode != 0
            reason = (f"{root} is not a git repository: attendees pull the materials with git (git init, commit, "
                      "then push to a host the hub can reach)" if not_git else
                      "HEAD is detached or the repository has no branch; give --branch")
            raise CasabookError("no-branch", reason, file=tracks_file, key="materials.branch")
        branch = head.stdout.strip()
    # A hub on this machine runs nbgitpuller in the attendee's home: a relative path would not resolve there.
    repo = local_path(repo, root).resolve().as_uri() if is_local(repo) else for_hub(repo)
    targetpath = track.materials.targetpath or _folder_name(root, repo, remotes) or "materials"
    return Source(repo=repo, branch=branch, targetpath=targetpath, given=given)


def _folder_name(root: Path, repo: str, remotes: dict[str, str]) -> str:
    """The folder a clone of `repo` gets in an attendee's home. For this clone itself, the name of the
    hosted repository (origin's), so a local hub and the facility's put the materials in one folder."""
    if is_local(repo) and local_path(repo, root).resolve() == root.resolve() and "origin" in remotes:
        repo = for_hub(remotes["origin"])
    return Path(urlsplit(repo).path).name.removesuffix(".git")


def track_links(workshop: Workshop, track: Track, *, hub_url: str | None = None,
                repo: str | None = None, branch: str | None = None) -> list[LaunchLink]:
    """One launch link per notebook of the track, into its facility (or into `hub_url` when given)."""
    facility: Facility = workshop.facility_of(track)
    hub = hub_url or facility.hub.url
    source = default_source(workshop.root, track, repo=repo, branch=branch, hub_url=hub,
                            materials_key=workshop.where(track, ("materials", "repo")))
    return [
        LaunchLink(track=track.name, notebook=entry.path, title=entry.title, facility=facility.name,
                   hub_url=hub, source=source)
        for entry in track.notebooks
    ]


@dataclass(frozen=True)
class LinkProblem:
    link: LaunchLink
    status: Literal["error", "warning"]
    reason: str
    # About the repo or branch, and so about every link of that source, not this notebook alone.
    whole_source: bool


@dataclass
class _SourceCheck:
    problem: tuple[Literal["error", "warning"], str] | None = None
    notebooks: dict[str, tuple[Literal["error", "warning"], str]] = field(default_factory=dict)


def broken_links(root: Path, links: list[LaunchLink]) -> list[tuple[LaunchLink, str]]:
    """Links a hub could not follow, each with the reason: the errors of check_links."""
    return [(problem.link, problem.reason) for problem in check_links(root, links) if problem.status == "error"]


def check_links(root: Path, links: list[LaunchLink]) -> list[LinkProblem]:
    """What is wrong with each link, checked where its hub will clone from, with git alone (no network).

    - a folder (file:// or a path) as the repo: only for a hub on this machine; there the branch
      must be a branch of that folder and the notebook committed on it (a clone sees nothing else);
    - a repo that is one of this repository's remotes (origin, usually): its remote-tracking branch,
      as of the last fetch, must hold the notebook; a branch or commit not pushed is reported with
      the push that mends it, and unpushed changes to a notebook are a warning;
    - any other repo cannot be checked without the network: a warning says so.
    """
    remotes = _remotes(root)
    # One check per source, hub and track file: a hub on this machine and one elsewhere clone the same
    # source from different places, and a problem's message names the hub and the track file to mend.
    def key(link: LaunchLink) -> tuple[Source, str, str]:
        return link.source, link.hub_url, link.source.given.tracks_file

    groups: dict[tuple[Source, str, str], list[LaunchLink]] = {}
    for link in links:
        groups.setdefault(key(link), []).append(link)
    checked = {group_key: _check_source(root, remotes, group[0], [link.notebook for link in group])
               for group_key, group in groups.items()}
    problems: list[LinkProblem] = []
    for link in links:
        state = checked[key(link)]
        if state.problem:
            problems.append(LinkProblem(link, *state.problem, whole_source=True))
        elif link.notebook in state.notebooks:
            problems.append(LinkProblem(link, *state.notebooks[link.notebook], whole_source=False))
    return problems


def _check_source(root: Path, remotes: dict[str, str], link: LaunchLink, notebooks: list[str]) -> _SourceCheck:
    source, hub = link.source, link.hub_url
    if is_local(source.repo):
        if not is_loopback_url(hub):
            return _SourceCheck(("error", _folder_for_remote_hub(source, hub)))
        return _check_folder(local_path(source.repo, root), source, notebooks)
    if is_ssh(source.repo):
        return _SourceCheck(("error", f"{source.repo} is an SSH URL, and a hub has no SSH key: "
                                      f"publish {for_hub(source.repo)} instead"))
    host = urlsplit(source.repo).hostname or ""
    if "." not in host and host != "localhost":
        return _SourceCheck(("error", f"{source.repo}: {host!r} is not a host name a hub can look up (an alias from "
                                      f"~/.ssh/config?); set materials.repo in {source.given.tracks_file} to the "
                                      "repository's https:// URL"))
    remote = _remote_of(remotes, source.repo)
    if remote is None:
        return _SourceCheck(("warning", f"not checked: {source.repo} is not a remote of this repository, and "
                                        "casabook checks without the network; to have it checked, add and fetch it "
                                        f"(git remote add materials {source.repo} && git fetch materials)"))
    return _check_remote(root, remote, source, notebooks)


def _folder_for_remote_hub(source: Source, hub: str) -> str:
    cannot = f"the hub at {hub} cannot clone a folder on this machine"
    given, file = source.given, source.given.tracks_file
    if given.kind == "clone":
        return (f"this repository has no origin, so the links would pull {source.repo} and {cannot}; add the hosted "
                f"repository (git remote add origin https://github.com/ORG/REPO.git, then git push -u origin "
                f"{source.branch}) or set materials.repo in {file}")
    if given.kind == "origin":
        return (f"origin is {source.repo}, and {cannot}; point origin at the hosted repository "
                f"(git remote set-url origin https://github.com/ORG/REPO.git) or set materials.repo in {file}")
    if given.kind == "materials":
        return f"{given.where}: {source.repo}: {cannot}; set materials.repo to an https:// URL the hub can reach"
    if given.kind == "option":
        return f"--repo {source.repo}: {cannot}; give an https:// URL the hub can reach"
    return f"{source.repo}: {cannot}; link to an https:// URL the hub can reach"


def _committed(folder: Path, ref: str, notebooks: list[str]) -> set[str]:
    listed = _git(folder, "ls-tree", "-r", "--name-only", "-z", ref, "--", *notebooks).stdout
    return set(filter(None, listed.split("\0")))


def _has_ref(folder: Path, ref: str) -> bool:
    return _git(folder, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode == 0


def _check_folder(folder: Path, source: Source, notebooks: list[str]) -> _SourceCheck:
    """A hub on this machine clones the folder's branch: its remote-tracking branches are not cloned."""
    branch = source.branch
    if _git(folder, "rev-parse", "--git-dir").returncode != 0:
        return _SourceCheck(("error", f"{source.repo} is not a git repository"))
    if not _has_ref(folder, f"refs/heads/{branch}"):
        only_remote = _has_ref(folder, f"refs/remotes/origin/{branch}")
        hint = f" (only origin/{branch} is; git switch {branch} makes it one)" if only_remote else ""
        return _SourceCheck(("error", f"branch {branch!r} does not exist in {folder.name}{hint}"))
    present = _committed(folder, f"refs/heads/{branch}", notebooks)
    return _SourceCheck(notebooks={path: ("error", f"{path} is not committed on branch {branch!r}")
                                   for path in notebooks if path not in present})


def _check_remote(root: Path, remote: str, source: Source, notebooks: list[str]) -> _SourceCheck:
    """The remote's branch as this repository last fetched it, against the local branch of that name."""
    branch = source.branch
    tracking, local = f"refs/remotes/{remote}/{branch}", f"refs/heads/{branch}"
    seen = f"{remote}/{branch} as of the last fetch"
    has_local = _has_ref(root, local)
    if not _has_ref(root, tracking):
        if has_local:
            return _SourceCheck(("error", f"branch {branch!r} is not on {remote} (no {seen}), and the hub clones "
                                          f"{source.repo}: git push -u {remote} {branch}"))
        return _SourceCheck(("error", f"branch {branch!r} does not exist, here or on {remote} (no {seen}); check the "
                                      f"branch name, or git fetch {remote} if it was pushed from elsewhere"))
    on_remote = _committed(root, tracking, notebooks)
    committed = _committed(root, local, notebooks) if has_local else set()
    ahead = has_local and _count(root, f"{tracking}..{local}") > 0
    behind = has_local and _count(root, f"{local}..{tracking}") > 0
    unpushed = set()
    if ahead:
        changed = _git(root, "diff", "--name-only", "-z", f"{tracking}...{local}", "--", *notebooks).stdout
        unpushed = set(filter(None, changed.split("\0")))
    found: dict[str, tuple[Literal["error", "warning"], str]] = {}
    for path in notebooks:
        if path not in on_remote and path in committed and behind:
            found[path] = ("error", f"{path} is not on {seen}, which has commits branch {branch!r} lacks: git pull "
                                    f"{remote} {branch} to see what changed there, then push the notebook again")
        elif path not in on_remote and path in committed:
            found[path] = ("error", f"{path} is committed on branch {branch!r} but not pushed ({seen} lacks it): "
                                    f"git push {remote} {branch}")
        elif path not in on_remote and has_local:
            found[path] = ("error", f"{path} is not committed on branch {branch!r} (nor on {seen}): git add {path}, "
                                    f"git commit, then git push {remote} {branch}")
        elif path not in on_remote:
            found[path] = ("error", f"{path} is not on {seen}")
        elif path in unpushed:
            found[path] = ("warning", f"{path} has changes committed on branch {branch!r} but not pushed; attendees "
                                      f"get {remote}'s version ({seen}): git push {remote} {branch}")
    return _SourceCheck(notebooks=found)


def _count(folder: Path, revisions: str) -> int:
    counted = _git(folder, "rev-list", "--count", revisions).stdout.strip()
    return int(counted) if counted.isdigit() else 0


def checked_against(root: Path, source: Source) -> str:
    """Where the links of a source were checked, in words: 'origin/main, as of the last fetch'."""
    if is_local(source.repo):
        return f"branch {source.branch!r} of {local_path(source.repo, root)}"
    remote = _remote_of(_remotes(root), source.repo)
    return f"{remote}/{source.branch} as of the last fetch" if remote else "nothing (not checked)"


def render_problems(problems: list[LinkProblem], console: Console) -> None:
    """One line per problem and track, errors first: a repo's problem is every link's, said once."""
    label = {"error": "[bold red]broken link:[/]", "warning": "[yellow]warning:[/]"}
    counted = Counter((p.status, p.link.track, p.reason) for p in problems)
    for (status, track, reason), count in sorted(counted.items(), key=lambda item: item[0][0] != "error"):
        many = f" ({count} links)" if count > 1 else ""
        console.print(f"{label[status]} {escape(track)}: {escape(reason)}{many}", highlight=False, soft_wrap=True)


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
