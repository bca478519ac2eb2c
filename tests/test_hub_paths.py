"""How a user name is spelled in the hub's URLs: escaped whole in the REST API, as JupyterHub
spells it (url_escape_path) in a server's prefix, where a user named by an e-mail keeps its '@'."""

from __future__ import annotations

import pytest
from jupyterhub.utils import url_escape_path

from casabook.hub.api import server_path, user_path

NAMES = ["alice", "ann@example.org", "a b", "x/y", "tilde~name", "dé"]


@pytest.mark.parametrize("name", NAMES)
def test_a_servers_prefix_is_spelled_as_jupyterhub_spells_it(name):
    assert server_path(name) == url_escape_path(name)


@pytest.mark.parametrize(("name", "path"), [
    ("alice", "alice"), ("ann@example.org", "ann%40example.org"), ("x/y", "x%2Fy"),
], ids=["plain", "e-mail", "slash"])
def test_a_rest_path_escapes_everything(name, path):
    assert user_path(name) == path
