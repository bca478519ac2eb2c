"""What a crowd costs the machine: CPU seconds and memory of the hub's process tree.

The tree is the JupyterHub process and everything it started: configurable-http-proxy, the
attendees' servers (jupyterhub-singleuser) and their kernels. Samples are taken while the crowd
runs, so servers and kernels that exit before the end still count with their last reading.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psutil

SERVER_MARK = "jupyterhub-singleuser"
PROXY_MARK = "configurable-http-proxy"


def _role(process: psutil.Process, hub_pid: int) -> str:
    if process.pid == hub_pid:
        return "hub"
    try:
        command = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "servers"
    return "proxy" if PROXY_MARK in command else "servers"


@dataclass
class Footprint:
    hub_pid: int
    # The identity provider, where it runs on this machine in a process of its own: logins cost
    # CPU there too, and on a small machine it competes with the hub for it.
    idp_pid: int | None = None
    cpu_start: dict[tuple[int, float], float] = field(default_factory=dict)
    cpu_last: dict[tuple[int, float], tuple[str, float]] = field(default_factory=dict)
    rss_last: dict[str, int] = field(default_factory=dict)
    rss_peak: dict[str, int] = field(default_factory=dict)
    samples: int = 0

    def _tree(self) -> list[psutil.Process]:
        processes: list[psutil.Process] = []
        try:
            hub = psutil.Process(self.hub_pid)
            processes = [hub, *hub.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
        if self.idp_pid:
            try:
                processes.append(psutil.Process(self.idp_pid))
            except psutil.NoSuchProcess:
                pass
        return processes

    def sample(self, *, baseline: bool = False) -> None:
        rss: dict[str, int] = {"hub": 0, "proxy": 0, "servers": 0, "identity": 0}
        for process in self._tree():
            try:
                with process.oneshot():
                    # (pid, create time) names a process; a pid alone can be reused during a long run
                    key = (process.pid, process.create_time())
                    times = process.cpu_times()
                    memory = process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            role = self.cpu_last[key][0] if key in self.cpu_last else (
                "identity" if process.pid == self.idp_pid else _role(process, self.hub_pid))
            cpu = times.user + times.system
            if baseline:
                self.cpu_start[key] = cpu
            self.cpu_last[key] = (role, cpu)
            rss[role] += memory
        self.rss_last = rss
        for role, value in rss.items():
            self.rss_peak[role] = max(self.rss_peak.get(role, 0), value)
        self.samples += 1

    async def watch(self, interval: float = 1.0) -> None:
        """Sample until cancelled (the rehearsal cancels it when the crowd is done)."""
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(interval)

    def cpu_seconds(self) -> dict[str, float]:
        spent = {"hub": 0.0, "proxy": 0.0, "servers": 0.0, "identity": 0.0}
        for key, (role, cpu) in self.cpu_last.items():
            spent[role] += cpu - self.cpu_start.get(key, 0.0)
        return {role: round(value, 2) for role, value in spent.items()}

    def report(self, attendees_in: int) -> dict[str, object]:
        cpu = self.cpu_seconds()
        per = max(attendees_in, 1)
        mib = 1024 * 1024
        return {
            "hub_pid": self.hub_pid,
            "samples": self.samples,
            "cpu_seconds": cpu,
            "cpu_seconds_total": round(sum(cpu.values()), 2),
            "cpu_seconds_per_attendee": round(sum(cpu.values()) / per, 2),
            "cpu_seconds_per_attendee_by_part": {role: round(value / per, 3) for role, value in cpu.items()},
            "server_cpu_seconds_per_attendee": round(cpu["servers"] / per, 2),
            "rss_mib_end": {role: round(value / mib, 1) for role, value in self.rss_last.items()},
            "rss_mib_peak": {role: round(value / mib, 1) for role, value in self.rss_peak.items()},
            "server_rss_mib_per_attendee": round(self.rss_peak.get("servers", 0) / mib / per, 1),
        }


def hub_pid_for(hub_url: str) -> int | None:
    """The JupyterHub process behind a hub URL on this machine: the parent of whatever listens on
    its port (configurable-http-proxy, which the hub starts), or the listener itself."""
    port = urlsplit(hub_url).port or 80
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    listener = next((c.pid for c in connections if c.status == psutil.CONN_LISTEN and c.laddr
                     and c.laddr.port == port and c.pid), None)
    if listener is None:
        return None
    process = psutil.Process(listener)
    for candidate in (process, *process.parents()):
        try:
            command = " ".join(candidate.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "jupyterhub" in command and SERVER_MARK not in command and PROXY_MARK not in command:
            return candidate.pid
    return None
