"""Launch links built from what the hub will clone: SSH origins published as https://, no folder
on this machine for a hub elsewhere, and each link's branch and notebook checked where the hub
finds them (the remote-tracking branch), with real git repositories and a bare repository as the
hosted remote (tests/remotes.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from casabook.testing.remotes import HOSTED, hosted_remote, published_workshop
from casabook.testing.workshops import edit_yaml, git, make_workshop, tiny_notebook

from casabook.book.checks import check_html
from casabook.cli import main
from casabook.links import Source, launch_url, parse_launch_url
from casabook.repo_url import for_hub, is_local, is_loopback_url, is_ssh, same_repository

CMS = "tracks/cms.yml"
NEW = "notebooks/cms/05-new.ipynb"


# --- URLs as the hub fetches them ----------------------------------------------------------------

@pytest.mark.parametrize("written, published", [
    ("git@github.com:org/workshop.git", "https://github.com/org/workshop.git"),
    ("git@github.com:org/workshop", "https://github.com/org/workshop"),
    ("git@gitlab.cern.ch:/cms-ws/workshop.git", "https://gitlab.cern.ch/cms-ws/workshop.git"),
    ("ssh://git@github.com/org/workshop", "https://github.com/org/workshop"),
    ("ssh://git@gitlab.cern.ch:7999/cms-ws/workshop.git", "https://gitlab.cern.ch/cms-ws/workshop.git"),
    ("git+ssh://git@github.com/org/workshop.git", "https://github.com/org/workshop.git"),
    ("https://x-access-token:ghp_secret@github.com/org/workshop.git", "https://github.com/org/workshop.git"),
    ("https://github.com/org/workshop.git", "https://github.com/org/workshop.git"),
    ("http://git.example.org:8080/workshop", "http://git.example.org:8080/workshop"),
    ("file:///srv/git/workshop", "file:///srv/git/workshop"),
    ("/srv/git/workshop", "/srv/git/workshop"),
], ids=["scp-like", "scp-like-no-suffix", "scp-like-leading-slash", "ssh-url", "ssh-url-with-port", "git+ssh",
        "https-token-removed", "https-kept", "http-with-port-kept", "file-url-kept", "path-kept"])
def test_repo_as_the_hub_fetches_it(written: str, published: str):
    assert for_hub(written) == published


@pytest.mark.parametrize("repo, ssh, local", [
    ("git@github.com:org/x.git", True, False),
    ("ssh://git@host/x", True, False),
    ("https://github.com/org/x", False, False),
    ("file:///srv/x", False, True),
    ("/srv/x", False, True),
    ("../x", False, True),
    ("./odd:name", False, True),
], ids=["scp-like", "ssh-url", "https", "file-url", "absolute-path", "relative-path", "path-with-a-colon"])
def test_ssh_and_folder_are_told_apart(repo: str, ssh: bool, local: bool):
    assert (is_ssh(repo), is_local(repo)) == (ssh, local)


def test_one_repository_in_its_ssh_and_https_forms():
    assert same_repository("git@github.com:Org/x.git", "https://github.com/Org/x")
    assert same_repository("ssh://git@GitHub.com/Org/x/", "https://github.com/Org/x.git")
    assert not same_repository("git@github.com:org/x.git", "https://github.com/org/y.git")


@pytest.mark.parametrize("url, loopback", [
    ("http://127.0.0.1:8000", True), ("http://localhost:8000/prefix", True), ("http://[::1]:8000", True),
    ("http://127.0.0.2", True), ("https://coffea.casa", False), ("http://10.0.0.1:8000", False),
], ids=["ipv4", "localhost", "ipv6", "loopback-net", "public-host", "private-net"])
def test_hub_on_this_machine(url: str, loopback: bool):
    assert is_loopback_url(url) is loopback


# --- the workshops, as instructors' clones are --------------------------------------------------


def links_of(root: Path, capsys, *argv: str) -> tuple[int, list[Source], str]:
    """`casabook links --track cms` as JSON: exit code, each link's source, and what it said on stderr."""
    code = main(["--root", str(root), "links", "--track", "cms", "--format", "json", *argv])
    out, err = capsys.readouterr()
    sources = [parse_launch_url(link["url"])[1] for link in json.loads(out)] if code == 0 else []
    return code, sources, " ".join(err.split())


def check_of(root: Path, capsys) -> tuple[int, list[dict]]:
    code = main(["--root", str(root), "check", "--format", "json"])
    return code, [f for f in json.loads(capsys.readouterr().out)["findings"] if f["check"] == "links"]


def add_notebook(root: Path, *, commit: bool) -> None:
    nbformat.write(tiny_notebook(), root / NEW)
    edit_yaml(root / CMS, lambda d: d["notebooks"].append({"path": NEW, "title": "New", "minutes": 5}))
    if commit:
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "a new notebook")


SSH = "git@github.com:org/workshop.git"


def ssh_origin(root: Path) -> None:
    hosted_remote(root, SSH)


def ssh_origin_with_port(root: Path) -> None:
    hosted_remote(root, "ssh://git@github.com:2222/org/workshop.git")


def https_origin_with_token(root: Path) -> None:
    hosted_remote(root, "https://x-access-token:ghp_secret@github.com/org/workshop.git")


PUBLISHED = [
    pytest.param(ssh_origin, "https://github.com/org/workshop.git", id="ssh-origin"),
    pytest.param(ssh_origin_with_port, "https://github.com/org/workshop.git", id="ssh-origin-with-port"),
    pytest.param(hosted_remote, HOSTED, id="https-origin"),
    pytest.param(https_origin_with_token, "https://github.com/org/workshop.git", id="https-origin-with-token"),
]


@pytest.mark.parametrize("setup, repo", PUBLISHED)
def test_origin_is_published_as_the_hub_clones_it(tmp_path: Path, capsys, setup: Callable[[Path], None], repo: str):
    root = make_workshop(tmp_path / "workshop")
    setup(root)
    code, sources, err = links_of(root, capsys)
    assert code == 0, err
    assert {source.repo for source in sources} == {repo}
    code, findings = check_of(root, capsys)
    assert code == 0 and [f["status"] for f in findings] == ["ok", "ok", "ok"]
    assert "checked against origin/main as of the last fetch" in findings[0]["detail"]
    assert "ghp_secret" not in json.dumps(findings)


def no_origin(root: Path) -> None:
    pass


def origin_is_a_folder(root: Path) -> None:
    bare = root.parent / "shared.git"
    git(root, "init", "-q", "--bare", str(bare))
    git(root, "remote", "add", "origin", str(bare))
    git(root, "push", "-q", "-u", "origin", "main")


def materials_repo_is_a_folder(root: Path) -> None:
    hosted_remote(root)
    edit_yaml(root / CMS, lambda d: d["materials"].update(repo="/srv/git/workshop"))


def origin_is_an_ssh_alias(root: Path) -> None:
    hosted_remote(root, "gh:org/workshop.git")


def unpushed_commit(root: Path) -> None:
    hosted_remote(root)
    add_notebook(root, commit=True)


def uncommitted_notebook(root: Path) -> None:
    hosted_remote(root)
    add_notebook(root, commit=False)


def unpushed_branch(root: Path) -> None:
    hosted_remote(root)
    git(root, "checkout", "-q", "-b", "spring-2027")


def never_fetched_origin(root: Path) -> None:
    hosted_remote(root, push=False)


# Each case: how the clone is set up, extra arguments to `casabook links`, what the refusal says
# (LINE: the line of materials.repo in tracks/cms.yml).
BROKEN = [
    pytest.param(no_origin, [], ["this repository has no origin",
                                 "the hub at https://coffea.casa cannot clone a folder",
                                 "git remote add origin https://", "git push -u origin main",
                                 "materials.repo in tracks/cms.yml"], id="no-origin"),
    pytest.param(origin_is_a_folder, [], ["shared.git, and the hub at https://coffea.casa cannot clone a folder",
                                          "git remote set-url origin https://"], id="origin-is-a-folder"),
    pytest.param(materials_repo_is_a_folder, [],
                 ["tracks/cms.yml:LINE: materials.repo: file:///srv/git/workshop: the hub at https://coffea.casa "
                  "cannot clone a folder", "set materials.repo to an https://"], id="materials-repo-is-a-folder"),
    pytest.param(origin_is_an_ssh_alias, [], ["https://gh/org/workshop.git: 'gh' is not a host name a hub can look up",
                                              "set materials.repo in tracks/cms.yml to the repository's https:// URL"],
                 id="origin-is-an-ssh-alias"),
    pytest.param(unpushed_commit, [], [f"{NEW} is committed on branch 'main' but not pushed",
                                       "origin/main as of the last fetch lacks it", "git push origin main"],
                 id="committed-not-pushed"),
    pytest.param(uncommitted_notebook, [], [f"{NEW} is not committed on branch 'main'", f"git add {NEW}",
                                            "git push origin main"], id="not-committed"),
    pytest.param(unpushed_branch, [], ["branch 'spring-2027' is not on origin (no origin/spring-2027 as of the last "
                                       "fetch)", "git push -u origin spring-2027", "(4 links)"],
                 id="branch-not-pushed"),
    pytest.param(never_fetched_origin, [], ["branch 'main' is not on origin", "git push -u origin main"],
                 id="origin-never-fetched"),
    pytest.param(hosted_remote, ["--branch", "no-such-branch"],
                 ["branch 'no-such-branch' does not exist, here or on origin", "git fetch origin"],
                 id="branch-nowhere"),
    pytest.param(no_origin, ["--repo", "file:///srv/git/workshop"],
                 ["--repo file:///srv/git/workshop: the hub at https://coffea.casa cannot clone a folder"],
                 id="repo-option-is-a-folder"),
]


def materials_repo_line(root: Path) -> int:
    lines = (root / CMS).read_text().splitlines()
    return next(n for n, text in enumerate(lines, 1) if text.strip().startswith("repo:"))


@pytest.mark.parametrize("setup, argv, said", BROKEN)
def test_a_link_the_hub_cannot_follow_is_refused_with_the_fix(tmp_path: Path, capsys, setup, argv, said):
    root = make_workshop(tmp_path / "workshop")
    setup(root)
    if "LINE" in " ".join(said):
        said = [fragment.replace("LINE", str(materials_repo_line(root))) for fragment in said]
    code, _, err = links_of(root, capsys, *argv)
    assert code == 1
    for fragment in said:
        assert fragment in err, err
    if not argv:  # check says the same, as an error about the links
        code, findings = check_of(root, capsys)
        assert code == 1
        assert any(f["status"] == "error" and said[0] in f["detail"] for f in findings)


def test_pushing_mends_an_unpushed_branch_and_commit(tmp_path: Path, capsys):
    root = make_workshop(tmp_path / "workshop")
    unpushed_branch(root)
    assert links_of(root, capsys)[0] == 1
    git(root, "push", "-q", "-u", "origin", "spring-2027")
    add_notebook(root, commit=True)
    assert links_of(root, capsys)[0] == 1
    git(root, "push", "-q")
    code, sources, err = links_of(root, capsys)
    assert code == 0 and err == "" and {s.branch for s in sources} == {"spring-2027"}


def test_the_check_is_as_of_the_last_fetch(tmp_path: Path, capsys):
    """A notebook removed on the remote by someone else is found once this clone fetches."""
    root = published_workshop(tmp_path / "workshop")
    other = tmp_path / "colleague"
    [hosted] = (tmp_path / "hosted").iterdir()
    git(tmp_path, "clone", "-q", str(hosted), str(other))
    git(other, "rm", "-q", "notebooks/cms/01-nanoevents.ipynb")
    git(other, "commit", "-q", "-m", "drop a notebook")
    git(other, "push", "-q")
    assert links_of(root, capsys)[0] == 0
    git(root, "fetch", "-q", "origin")
    code, _, err = links_of(root, capsys)
    assert code == 1 and "notebooks/cms/01-nanoevents.ipynb is not on origin/main as of the last fetch" in err
    assert "git pull origin main" in err


def test_unpushed_changes_to_a_notebook_are_a_warning(tmp_path: Path, capsys):
    root = published_workshop(tmp_path / "workshop")
    nbformat.write(tiny_notebook("print('changed')"), root / "notebooks/cms/02-coffea-processor-dask.ipynb")
    git(root, "commit", "-q", "-am", "a change")
    code, sources, err = links_of(root, capsys)
    assert code == 0 and len(sources) == 4
    assert ("warning: cms: notebooks/cms/02-coffea-processor-dask.ipynb has changes committed on branch 'main' but "
            "not pushed; attendees get origin's version") in err
    code, findings = check_of(root, capsys)
    assert code == 0 and "warning" in [f["status"] for f in findings]


def test_materials_repo_of_another_repository_is_said_to_be_unchecked_until_fetched(tmp_path: Path, capsys):
    root = published_workshop(tmp_path / "workshop")
    other = "https://github.com/casabook-org/cms-materials.git"
    edit_yaml(root / CMS, lambda d: d["materials"].update(repo=other))
    git(root, "commit", "-q", "-am", "cms materials live elsewhere")
    git(root, "push", "-q")
    code, sources, err = links_of(root, capsys)
    assert code == 0 and {s.repo for s in sources} == {other}
    assert f"warning: cms: not checked: {other} is not a remote of this repository" in err
    assert "git remote add materials" in err
    code, findings = check_of(root, capsys)
    assert code == 0 and [f["status"] for f in findings if f["subject"] == "cms"] == ["warning", "ok"]
    # Added and fetched, it is checked like the origin: it has no branch main yet.
    hosted_remote(root, other, name="materials", push=False)
    git(root, "fetch", "-q", "materials")
    code, _, err = links_of(root, capsys)
    assert code == 1 and "branch 'main' is not on materials" in err and "git push -u materials main" in err


def on_local_facility(root: Path) -> None:
    edit_yaml(root / CMS, lambda d: d.update(facility="local"))
    git(root, "commit", "-q", "-am", "cms on this machine")


def test_local_facility_keeps_this_clone_as_file_url(tmp_path: Path, capsys):
    root = published_workshop(tmp_path / "workshop", SSH)
    on_local_facility(root)  # committed here, not pushed: the local hub clones this clone
    code, sources, err = links_of(root, capsys)
    assert code == 0, err
    assert {s.repo for s in sources} == {root.resolve().as_uri()}
    code, findings = check_of(root, capsys)
    [cms] = [f for f in findings if f["subject"] == "cms"]
    assert code == 0 and cms["detail"] == (f"4 link(s) into http://127.0.0.1:8000 pull {root.resolve().as_uri()} "
                                           f"branch 'main', checked against branch 'main' of {root.resolve()}")


def test_hub_override_on_this_machine_pulls_this_clone(tmp_path: Path, capsys):
    root = published_workshop(tmp_path / "my-checkout", SSH)
    edit_yaml(root / CMS, lambda d: d.pop("materials"))  # the folder in attendees' homes is the repository's name
    code, sources, _ = links_of(root, capsys, "--hub-override", "http://127.0.0.1:8123")
    assert code == 0 and {(s.repo, s.targetpath) for s in sources} == {(root.resolve().as_uri(), "workshop")}
    # A hub elsewhere, named on the command line, gets the origin as https://, into the same folder.
    code, sources, _ = links_of(root, capsys, "--hub-override", "https://staging.coffea.casa")
    assert code == 0
    assert {(s.repo, s.targetpath) for s in sources} == {("https://github.com/org/workshop.git", "workshop")}


def test_local_facility_checks_another_local_repository_it_names(tmp_path: Path, capsys):
    root = published_workshop(tmp_path / "workshop")
    materials = make_workshop(tmp_path / "materials")
    git(materials, "branch", "-q", "-m", "main", "trunk")
    edit_yaml(root / CMS, lambda d: (d.update(facility="local"), d["materials"].update(repo="../materials")))
    code, _, err = links_of(root, capsys)
    assert code == 1 and "branch 'main' does not exist in materials" in err
    code, sources, err = links_of(root, capsys, "--branch", "trunk")
    assert code == 0 and {s.repo for s in sources} == {materials.resolve().as_uri()}  # a hub's home is elsewhere


def test_book_refuses_a_folder_link_before_building(tmp_path: Path, capsys):
    root = make_workshop(tmp_path / "workshop")
    assert main(["--root", str(root), "book"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "this repository has no origin" in err and "[book-broken-link]" in err
    assert not (root / "book" / "_build" / "html").exists()


@pytest.mark.parametrize("repo, said", [
    ("file:///srv/git/workshop", "file:///srv/git/workshop: the hub at https://coffea.casa cannot clone a folder on "
                                 "this machine; link to an https:// URL the hub can reach"),
    (SSH, f"{SSH} is an SSH URL, and a hub has no SSH key: publish https://github.com/org/workshop.git instead"),
], ids=["folder", "ssh"])
def test_a_hand_written_link_the_hub_cannot_follow_is_refused_in_the_built_html(tmp_path: Path, repo: str, said: str):
    root = published_workshop(tmp_path / "workshop")
    html = tmp_path / "html"
    html.mkdir()
    url = launch_url("https://coffea.casa", Source(repo, "main", "casabook"), "notebooks/cms/01-nanoevents.ipynb")
    (html / "extra.html").write_text(f'<p><a href="{url.replace("&", "&amp;")}">Launch</a></p>')
    assert check_html(root, html, {}) == [
        f"notebooks/cms/01-nanoevents.ipynb: broken launch link on page extra.html: {said}"]
