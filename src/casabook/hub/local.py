"""The embedded default: JupyterHub, configurable-http-proxy and an OIDC provider on 127.0.0.1.

`LocalStack` starts and stops the three parts; `casabook hub`, the integration tests, the rehearsal
and the browser tests all use it. Its helpers act as an attendee's browser would, without
JavaScript: `login` goes through the real OAuth dance with the identity provider, `launch` follows a
launch link, waits for the server, and makes the call to nbgitpuller the git-pull page makes.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import psutil

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


class LoginRefused(Exception):
    """The hub answered the OAuth callback with an error page (not a redirect)."""

    def __init__(self, status: int, page: str) -> None:
        self.status = status
        self.page = page
        super().__init__(f"login refused with HTTP {status}")


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
        command = [sys.executable, "-W", "ignore", "-m", "oidc_provider_mock", "--host", "127.0.0.1",
                   "--port", str(self.port)]
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
                raise RuntimeError(f"the identity provider exited with code {self.process.returncode}"
                                   + (f":\n{self.log_path.read_text(errors='replace')[-2000:]}" if self.log_path else ""))
            try:
                if httpx.get(f"{self.url}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the identity provider did not answer within {timeout:.0f} s")

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
    """The embedded hub. Use as a context manager, or call start() and stop()."""

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
        token_file = self.state_dir / "organiser-token"
        token_file.write_text(self.api_token + "\n")
        token_file.chmod(0o600)
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
                raise RuntimeError(f"the hub exited with code {code}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.hub_url}/hub/api/", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop_hub()
        raise RuntimeError(f"the hub did not answer within {timeout:.0f} s:\n{self.log_tail()}")

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

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # --- the REST API as the organisers' service ---------------------------------------------

    def api(self, method: str, path: str, *, token: str | None = None, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"token {token or self.api_token}"}
        return httpx.request(method, f"{self.hub_url}/hub/api/{path.lstrip('/')}", headers=headers,
                             timeout=60, **kwargs)  # type: ignore[arg-type]

    def cap_status(self) -> dict[str, object]:
        response = self.api("GET", "casabook/cap")
        response.raise_for_status()
        return response.json()

    # --- an attendee's browser ----------------------------------------------------------------

    def authorize(self, username: str, *, next_path: str = "/hub/home",
                  claims: Mapping[str, object] | None = None) -> tuple[httpx.Client, str]:
        """Log in at the identity provider; return the browser and the hub callback URL to visit.

        The identity is (re)created with a preferred_username equal to `username`, unless `claims`
        says otherwise.
        """
        assert self.idp, "the stack is not started"
        self.idp.set_claims(username, claims if claims is not None else DemoUser(username).claims)
        client = httpx.Client(base_url=self.hub_url, timeout=60, follow_redirects=False)
        response = client.get("/hub/oauth_login", params={"next": next_path})
        if response.status_code != 302:
            raise LoginRefused(response.status_code, response.text)
        authorize_url = response.headers["location"]
        # The provider's page posts back to itself; its "Authorize" button sends the subject.
        consent = httpx.post(authorize_url, data={"sub": username}, timeout=30)
        if consent.status_code != 302:
            raise RuntimeError(f"the identity provider answered {consent.status_code}: {consent.text[:500]}")
        return client, consent.headers["location"]

    @staticmethod
    def finish_login(client: httpx.Client, callback_url: str) -> httpx.Client:
        response = client.get(callback_url)
        if response.status_code != 302:
            raise LoginRefused(response.status_code, response.text)
        return client

    def login(self, username: str, *, next_path: str = "/hub/home",
              claims: Mapping[str, object] | None = None) -> httpx.Client:
        """A full OAuth login; returns an httpx client holding the attendee's hub cookies."""
        client, callback = self.authorize(username, next_path=next_path, claims=claims)
        return self.finish_login(client, callback)

    def wait_ready(self, username: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.api("GET", f"users/{username}").json().get("servers", {}).get("")
            if server and server.get("ready"):
                return
            if not server or not server.get("pending"):
                raise RuntimeError(f"{username}'s server is not starting:\n{self.log_tail()}")
            time.sleep(0.1)
        raise RuntimeError(f"{username}'s server was not ready within {timeout:.0f} s")

    def launch(self, client: httpx.Client, launch_url: str, *, timeout: float = 120,
               timings: dict[str, float] | None = None) -> httpx.Response:
        """Follow a launch link as a browser would and return the notebook's JupyterLab page.

        Starts the server if needed (waiting past the spawn-pending page), then makes the call the
        git-pull page's script makes: /user/NAME/git-pull/api with the page's _xsrf token.
        `timings`, if given, receives the seconds spent reaching the git-pull page ("server"),
        pulling ("pull") and loading JupyterLab on the notebook ("lab").
        """
        clock = time.perf_counter()
        marks = timings if timings is not None else {}
        response = _follow(client, client.get(launch_url))
        path = urlsplit(str(response.url)).path
        if "/hub/spawn-pending/" in path:
            self.wait_ready(path.rstrip("/").split("/")[-1], timeout)
            response = _follow(client, client.get(launch_url))
            path = urlsplit(str(response.url)).path
        if response.status_code != 200 or not path.endswith("/git-pull"):
            raise RuntimeError(f"launch link ended at {response.url} with HTTP {response.status_code}")
        marks["server"], clock = time.perf_counter() - clock, time.perf_counter()
        query = {k: v[0] for k, v in parse_qs(urlsplit(str(response.url)).query).items()}
        events = list(self.pull_events(client, path, query))
        if not events or events[-1].get("phase") != "finished":
            raise RuntimeError(f"nbgitpuller did not finish: {events[-3:]}")
        marks["pull"], clock = time.perf_counter() - clock, time.perf_counter()
        page = _follow(client, client.get(f"{path[: -len('git-pull')]}{query['urlpath']}"))
        marks["lab"] = time.perf_counter() - clock
        return page

    @staticmethod
    def pull_events(client: httpx.Client, page_path: str, query: dict[str, str]) -> Iterator[dict]:
        params = {k: query[k] for k in ("repo", "branch", "targetpath", "depth") if k in query}
        params["_xsrf"] = client.cookies.get("_xsrf", path=page_path.rsplit("/", 1)[0] + "/") or \
            next(c.value for c in client.cookies.jar if c.name == "_xsrf")
        with client.stream("GET", f"{page_path}/api", params=params, timeout=300) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    yield json.loads(line[len("data: "):])


def _follow(client: httpx.Client, response: httpx.Response, limit: int = 20) -> httpx.Response:
    """Follow redirects by hand: httpx drops nothing, but we stop at the spawn-pending page."""
    for _ in range(limit):
        if response.status_code not in (301, 302, 303, 307, 308):
            return response
        response = client.get(response.headers["location"] if "://" in response.headers["location"]
                              else str(response.url.join(response.headers["location"])))
    raise RuntimeError(f"too many redirects from {response.url}")
