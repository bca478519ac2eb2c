"""The embedded default's supervisor: JupyterHub, configurable-http-proxy and an OIDC provider on 127.0.0.1.

`LocalStack` starts and stops the three parts; `casabook hub`, `casabook up`, the rehearsal, the
tests and the benchmarks all use it. A part that does not start is a CasabookError naming its log.
What attendees do on the stack lives elsewhere: casabook.hub.browser (their browser) and
casabook.testing (the tests' drivers).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from casabook import atomic
from casabook.errors import CasabookError

CONFIG_FILE = Path("hub-config") / "jupyterhub_config.py"
PROXY_BIN = Path("node_modules") / ".bin" / "configurable-http-proxy"
LOCAL_SECRET_ENV = "CASABOOK_OIDC_CLIENT_SECRET"


@dataclass(frozen=True)
class DemoUser:
    name: str
    organiser: bool = False

    @property
    def claims(self) -> dict[str, object]:
        return {"preferred_username": self.name, "email": f"{self.name}@casabook.invalid",
                "name": self.name.capitalize()}


DEMO_USERS = (DemoUser("organiser", organiser=True), DemoUser("alice"), DemoUser("bob"))


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports: every socket stays bound until all are chosen, so the
    kernel cannot hand the same port out twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


BUSY_PORT = re.compile(r"EADDRINUSE|[Aa]ddress already in use")


def start_failure(part: str, what: str, log_path: Path | None, port: int) -> CasabookError:
    """A part of the stack that did not start, in one line: why, where it says more."""
    log = log_path.read_text(errors="replace") if log_path and log_path.exists() else ""
    # The proxy (which the hub starts on the public port) or the part itself found its port taken.
    busy = f": a port it needs on 127.0.0.1 is in use (its port is {port}: choose another with --port, or stop " \
        "what holds it)" if BUSY_PORT.search(log) else ""
    where = f"; its log: {log_path}" if log_path else ""
    return CasabookError("hub-start", f"{part} {what}{busy}{where}")


class IdentityProvider:
    """oidc-provider-mock (a real OIDC server) on a free loopback port, with the demo users.

    In a process of its own: as a thread of the process that also drives a crowd of attendees
    (a test, a rehearsal), it would share that process's GIL and slow the hub's OAuth calls into
    timeouts.
    """

    def __init__(self, users: tuple[DemoUser, ...] = DEMO_USERS, log_path: Path | None = None,
                 port: int = 0) -> None:
        self.users = users
        self.log_path = log_path
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> IdentityProvider:
        # casabook.upstream.oidc_provider_mock: the provider itself, its login page styled from a local copy.
        command = [sys.executable, "-W", "ignore", "-m", "casabook.upstream.oidc_provider_mock",
                   "--host", "127.0.0.1", "--port", str(self.port)]
        for user in self.users:
            command += ["--user-claims", json.dumps({"sub": user.name, **user.claims})]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path or os.devnull, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise start_failure("the identity provider", f"exited with code {self.process.returncode}",
                                    self.log_path, self.port)
            try:
                if httpx.get(f"{self.url}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise start_failure("the identity provider", f"did not answer within {timeout:.0f} s", self.log_path, self.port)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def set_claims(self, sub: str, claims: Mapping[str, object]) -> None:
        """Create or replace an identity (the provider's PUT /users/<sub>)."""
        httpx.put(f"{self.url}/users/{sub}", json=dict(claims), timeout=10).raise_for_status()


@dataclass
class LocalStack:
    """The embedded hub: start() it, and stop() it in a finally (it stops whatever it started)."""

    root: Path
    state_dir: Path
    facility: str = "local"
    port: int = 0
    participants: int | None = None
    contact: str | None = None
    users: tuple[DemoUser, ...] = DEMO_USERS
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.state_dir = Path(self.state_dir).resolve()
        public, self.hub_api_port, self.proxy_api_port = free_ports(3)
        self.port = self.port or public
        self.api_token = secrets.token_hex(24)
        self.client_secret = secrets.token_hex(24)
        self.idp: IdentityProvider | None = None
        self.hub_process: subprocess.Popen[bytes] | None = None
        self.log_path = self.state_dir / "logs" / "hub.log"

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def oidc_url(self) -> str:
        assert self.idp, "the stack is not started"
        return self.idp.url

    @property
    def demo_users(self) -> list[str]:
        return [u.name for u in self.users]

    def start(self, timeout: float = 90) -> LocalStack:
        proxy = self.root / PROXY_BIN
        if not proxy.exists():
            raise CasabookError("no-proxy", f"{PROXY_BIN} is missing: run `npm ci` in {self.root} "
                                "(package.json locks configurable-http-proxy)", file="package.json")
        # Our readiness polls are not news, even where a Sphinx build turned logging up to INFO.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.state_dir / "homes").mkdir(exist_ok=True)
        atomic.write_text(self.state_dir / "organiser-token", self.api_token + "\n", private=True)
        try:
            if self.idp is None:
                self.idp = IdentityProvider(self.users, self.state_dir / "logs" / "oidc.log").start()
            self.start_hub(timeout)
        except BaseException:
            # Half a stack is no use, and its identity provider must not outlive the failure.
            self.stop()
            raise
        return self

    def hub_environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "CASABOOK_ROOT": str(self.root),
            "CASABOOK_FACILITY": self.facility,
            "CASABOOK_STATE": str(self.state_dir),
            "CASABOOK_HUB_PORT": str(self.port),
            "CASABOOK_HUB_API_PORT": str(self.hub_api_port),
            "CASABOOK_PROXY_API_PORT": str(self.proxy_api_port),
            "CASABOOK_PROXY_COMMAND": str(self.root / PROXY_BIN),
            "CASABOOK_OIDC_ISSUER": self.oidc_url,
            "CASABOOK_API_TOKEN": self.api_token,
            LOCAL_SECRET_ENV: self.client_secret,
            # The proxy's token; JupyterHub reads it from here when it starts the proxy.
            "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(24),
        })
        if self.contact:
            env["CASABOOK_CONTACT"] = self.contact
        if self.participants:
            env["CASABOOK_PARTICIPANTS"] = str(self.participants)
        env.update(self.extra_env)
        return env

    def config_file(self) -> Path:
        """The JupyterHub config file this stack's hub runs: the repository's."""
        return self.root / CONFIG_FILE

    def start_hub(self, timeout: float = 90) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the process's life)
        since = log.tell()  # a restart appends to the same log: only this start's lines count
        self.hub_process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(self.config_file())],
            cwd=self.state_dir, env=self.hub_environment(), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own session: Ctrl-C in the terminal reaches casabook, which stops the hub in order.
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.hub_process.poll() is not None:
                code = self.hub_process.returncode
                self.stop_hub()  # the proxy it started outlives it otherwise
                raise start_failure("the hub", f"exited with code {code}", self.log_path, self.port)
            with open(self.log_path, "rb") as written:
                written.seek(since)
                busy = BUSY_PORT.search(written.read().decode(errors="replace"))
            if busy:
                # The proxy logs the busy port and lives on, so the hub never exits: waiting is no use.
                self.stop_hub()
                raise start_failure("the hub", "could not listen", self.log_path, self.port)
            try:
                if httpx.get(f"{self.hub_url}/hub/api/", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop_hub()
        raise start_failure("the hub", f"did not answer within {timeout:.0f} s", self.log_path, self.port)

    def stop_hub(self, timeout: float = 30) -> None:
        """SIGTERM: JupyterHub stops the attendees' servers and the proxy; stragglers are killed."""
        process, self.hub_process = self.hub_process, None
        if process is None:
            return
        try:
            family = psutil.Process(process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        # The hub leads its own session: whatever it started there (the proxy) goes with it, even
        # when the hub died first and its children were handed to init.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        _, alive = psutil.wait_procs(family, timeout=5)
        for straggler in alive:
            try:
                straggler.kill()
            except psutil.NoSuchProcess:
                pass

    def restart_hub(self, timeout: float = 90) -> None:
        self.stop_hub()
        self.start_hub(timeout)

    def stop(self) -> None:
        self.stop_hub()
        if self.idp is not None:
            self.idp.stop()
            self.idp = None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
