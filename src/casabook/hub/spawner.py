"""The embedded hub's spawner: local processes, homes under the state folder, noticed when ready.

JupyterHub checks whether a new server answers with an exponential backoff (0.2 s, 0.4 s, 0.8 s,
1.6 s, ...), so a server ready after 1.5 s is noticed at about 3 s: an attendee waits for the
backoff, not for the server. This spawner watches the server's port every 50 ms before handing
over, and JupyterHub's first check then succeeds at once.

Past `SpawnLine.concurrent_spawns`, attendees wait in line first (casabook.hub.line).
"""

import asyncio

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Float

from casabook.hub.line import SpawnLine

PORT_POLL_SECONDS = 0.05


class LocalSessionSpawner(SpawnLine, SimpleLocalProcessSpawner):
    port_poll_interval = Float(PORT_POLL_SECONDS, config=True,
                               help="How often to look whether the new server listens, in seconds.")

    async def start(self):
        ip, port = await super().start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.http_timeout
        while loop.time() < deadline and await self.poll() is None:
            try:
                _, writer = await asyncio.open_connection(ip, port)
            except OSError:
                await asyncio.sleep(self.port_poll_interval)
                continue
            writer.close()
            break
        # Not listening in time, or exited: JupyterHub's own wait reports it as usual.
        return ip, port
