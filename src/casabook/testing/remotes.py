"""Hosted-looking remotes for test workshops.

A bare repository on disk stands in for GitHub (no network here): `git config url.<bare>.insteadOf
<url>` sends every fetch and push for `url` to it, while the remote's configured URL stays the one a
hub would be given (`git@github.com:org/workshop.git`, `https://github.com/...`). Pushes and
fetches are real, so the remote-tracking branches are what git would have after them.
"""

from __future__ import annotations

import re
from pathlib import Path

from casabook.testing.workshops import git, make_workshop

HOSTED = "https://github.com/casabook-org/workshop.git"


def hosted_remote(root: Path, url: str = HOSTED, *, name: str = "origin", push: bool = True) -> Path:
    """Add remote `name` with `url`, served by a new bare repository beside `root`; push the current
    branch to it unless `push` is false. Returns the bare repository."""
    bare = root.parent / "hosted" / re.sub(r"[^A-Za-z0-9.]+", "-", url).strip("-")
    bare.mkdir(parents=True)
    git(bare, "init", "-q", "--bare", "-b", "main")
    git(root, "config", f"url.{bare.as_uri()}.insteadOf", url)
    git(root, "remote", "add", name, url)
    if push:
        git(root, "push", "-q", "-u", name, "HEAD")
    return bare


def published_workshop(root: Path, url: str = HOSTED) -> Path:
    """A test workshop (workshops.make_workshop), committed and pushed to a hosted-looking origin."""
    make_workshop(root)
    hosted_remote(root, url)
    return root
