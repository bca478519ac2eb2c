"""A kernel in a remote Jupyter server (a hub user's), driven over the server's REST and websocket API.

jupyter_server's gateway client does the work: GatewayKernelManager starts, polls and deletes the
kernel through the server's /api/kernels, and GatewayKernelClient carries the kernel's channels
over its websocket, so nbclient (and papermill above it) run a notebook there as they would here.
Two things it does not do for a plain Jupyter server, added here:

- the kernel's working folder: it sends the folder as KERNEL_WORKING_DIR, which Enterprise Gateway
  reads and jupyter_server ignores; jupyter_server takes it as the request's `path`;
- the websocket's credentials: it opens the websocket without the Authorization header its HTTP
  calls carry, which a hub user's server (any server with a token) refuses;
- the channel of each message: it sends messages without one, which jupyter_server routes to the
  shell channel after logging the whole message (the cell's code) as a warning.
"""

from __future__ import annotations

from threading import Thread
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_core.utils import ensure_async
from jupyter_server.gateway.gateway_client import GatewayClient, gateway_request
from jupyter_server.gateway.managers import ChannelQueue, GatewayKernelClient, GatewayKernelManager
from jupyter_server.utils import url_escape, url_path_join
from tornado.escape import json_decode, json_encode
from traitlets import DottedObjectName, Type, Unicode


def connect(server_url: str, token: str, *, request_timeout: float) -> None:
    """Point the gateway client (one per process) at `server_url` (…/user/<name>/) with `token`."""
    base = server_url.rstrip("/")
    GatewayClient.clear_instance()
    GatewayClient.instance(url=base, ws_url="ws" + base[len("http"):], auth_token=token, auth_scheme="token",
                           request_timeout=request_timeout, validate_cert=True)


class NamedChannelQueue(ChannelQueue):
    """A channel's queue whose messages say which channel they are for."""

    def send(self, msg: dict[str, Any]) -> None:
        super().send({**msg, "channel": self.channel_name})


def _channel(name: str) -> property:
    def get(self: ServerKernelClient) -> ChannelQueue:
        attribute = f"_{name}_channel"
        if getattr(self, attribute) is None:
            queue = NamedChannelQueue(name, self.channel_socket, self.log)
            setattr(self, attribute, queue)
            self._channel_queues[name] = queue
        return getattr(self, attribute)

    return property(get)


class ServerKernelClient(GatewayKernelClient):
    """The gateway's kernel client, its websocket authenticated like its HTTP calls, its messages named."""

    shell_channel = _channel("shell")
    iopub_channel = _channel("iopub")
    stdin_channel = _channel("stdin")
    control_channel = _channel("control")

    async def start_channels(self, shell: bool = True, iopub: bool = True, stdin: bool = True,
                             hb: bool = True, control: bool = True) -> None:
        import websocket

        gateway = GatewayClient.instance()
        url = url_path_join(gateway.ws_url or "", gateway.kernels_endpoint, url_escape(self.kernel_id), "channels")
        self.channel_socket = websocket.create_connection(
            url, timeout=gateway.KERNEL_LAUNCH_TIMEOUT, enable_multithread=True,
            header=[f"Authorization: {gateway.auth_scheme} {gateway.auth_token}"])
        # A cell may print nothing for longer than a kernel takes to start: the notebook's limits
        # decide how long to wait, not the socket's.
        self.channel_socket.settimeout(None)
        await ensure_async(AsyncKernelClient.start_channels(self, shell=shell, iopub=iopub, stdin=stdin, hb=hb,
                                                            control=control))
        self.response_router = Thread(target=self._route_responses, name="casabook-kernel-channels", daemon=True)
        self.response_router.start()


class ServerKernelManager(GatewayKernelManager):
    """The gateway's kernel manager, starting the kernel in `path` (an API path: a notebook's folder)."""

    path = Unicode("", help="The kernel's working folder, as an API path relative to the server's root.")
    client_class = DottedObjectName("casabook.validation.gateway.ServerKernelClient")
    client_factory = Type(klass="casabook.validation.gateway.ServerKernelClient")

    async def _async_is_alive(self) -> bool:
        # What the kernel client's is_alive calls (nbclient polls it while a cell runs); the gateway
        # manager answers is_alive from the server but leaves this one looking for a local process.
        return bool(await self.is_alive())

    async def start_kernel(self, **kwargs: Any) -> None:
        if kwargs.get("kernel_id") is not None:
            await super().start_kernel(**kwargs)
            return
        body = {"name": kwargs.get("kernel_name") or self.kernel_name, "path": self.path}
        response = await gateway_request(self.kernels_url, method="POST", body=json_encode(body),
                                         headers={"Content-Type": "application/json"})
        self.kernel = json_decode(response.body)
        self.kernel_id = self.kernel["id"]
        self.kernel_url = url_path_join(self.kernels_url, url_escape(str(self.kernel_id)))
