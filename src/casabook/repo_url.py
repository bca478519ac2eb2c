"""Repository URLs as a hub will fetch them: SSH forms written as HTTPS, credentials left out,
and folders on this machine told apart from hosted repositories.

A hub clones anonymously over HTTPS: it has no SSH key and must never be handed the token an
instructor's clone URL may carry. Git's own rule tells an SSH "scp-like" address (`git@host:org/repo`)
from a path: a colon with no slash before it.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

SSH_SCHEMES = ("ssh", "git+ssh", "ssh+git")
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^/:]+):(?P<path>.*)$")


def is_ssh(repo: str) -> bool:
    """`ssh://...`, `git+ssh://...` or git's scp-like `user@host:path`."""
    if "://" in repo:
        return urlsplit(repo).scheme in SSH_SCHEMES
    return _SCP_LIKE.match(repo) is not None and not _is_drive_letter(repo)


def _is_drive_letter(repo: str) -> bool:
    return re.match(r"^[A-Za-z]:[\\/]", repo) is not None


def is_local(repo: str) -> bool:
    """A `file://` URL or a path: a folder only a hub on this machine can clone."""
    if "://" in repo:
        return urlsplit(repo).scheme == "file"
    return not is_ssh(repo)


def local_path(repo: str, root: Path) -> Path:
    """The folder a local repo names; a relative path is relative to the workshop repository."""
    path = Path(unquote(urlsplit(repo).path)) if repo.startswith("file:") else Path(repo).expanduser()
    return path if path.is_absolute() else root / path


def for_hub(repo: str) -> str:
    """The URL a hub clones: SSH forms become `https://host/path` (an SSH port is not an HTTPS port,
    so it is dropped), user names and tokens are removed from http(s) URLs, anything else is kept."""
    if "://" in repo:
        parts = urlsplit(repo)
        if parts.scheme in SSH_SCHEMES:
            return urlunsplit(("https", parts.hostname or "", parts.path, "", ""))
        if parts.scheme in ("http", "https") and (parts.username or parts.password):
            host = parts.hostname or ""
            netloc = f"{host}:{parts.port}" if parts.port else host
            return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        return repo
    scp = _SCP_LIKE.match(repo)
    if scp and not _is_drive_letter(repo):
        return f"https://{scp['host']}/{scp['path'].lstrip('/')}"
    return repo


def same_repository(a: str, b: str) -> bool:
    """Whether two URLs name one hosted repository (`git@github.com:org/x.git` is `https://github.com/org/x`)."""
    return _identity(a) == _identity(b)


def _identity(repo: str) -> tuple[str, str]:
    parts = urlsplit(for_hub(repo))
    return (parts.hostname or "").lower(), parts.path.rstrip("/").removesuffix(".git").rstrip("/")


def is_loopback_url(url: str) -> bool:
    """Whether a hub URL is on this machine (127.0.0.0/8, ::1 or localhost)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
