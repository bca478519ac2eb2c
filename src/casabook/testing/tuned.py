"""The embedded hub as tests and benchmarks tune it, and where its attendees' servers run.

    stack = TunedStack(root=REPO_ROOT, state_dir=..., contact=..., config="c.SpawnLine.concurrent_spawns = 1")

runs the repository's hub configuration followed by `config` (Python, with `c` in scope, as in a
JupyterHub config file). `server_process(stack, name)` is the process serving `name`, forked or not.
"""

from __future__ import annotations

from pathlib import Path

import psutil

from casabook.testing.hub import LocalHub


class TunedStack(LocalHub):
    def __init__(self, *args: object, config: str = "", **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.config = config

    def config_file(self) -> Path:
        path = self.state_dir / "jupyterhub_config.py"
        path.write_text(f"load_subconfig({str(super().config_file())!r})\nc = get_config()\n{self.config}\n")
        return path


def server_process(stack: LocalHub, name: str) -> psutil.Process:
    """The process whose working folder is `name`'s home: their server, a child of the hub or of
    its fork server."""
    assert stack.hub_process is not None, "the stack is not started"
    home = stack.state_dir / "homes" / name
    for process in psutil.Process(stack.hub_process.pid).children(recursive=True):
        try:
            if Path(process.cwd()) == home:
                return process
        except psutil.Error:
            continue
    raise RuntimeError(f"no server process runs in {home}")
