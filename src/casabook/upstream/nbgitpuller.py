"""nbgitpuller: its pull handler looks at git's progress every 0.05 s instead of every 0.5 s.

The handler runs git in a thread and polls the thread's output queue, sleeping 0.5 s whenever it
is empty, so every launch-link click waits 0.5 to 1 s after git is done.
"""

from __future__ import annotations

import types

from casabook.upstream import applies

DISTRIBUTION = "nbgitpuller"
# `await gen.sleep(0.5)` in SyncHandler.get in 1.2.0 through 1.3.0 and on main.
VERSIONS = ">=1.2,<1.4"
PULL_POLL_SECONDS = 0.05


def quicker_pull_polling() -> None:
    """Cap the sleeps of nbgitpuller's pull handler at PULL_POLL_SECONDS.

    Upstream: nbgitpuller/handlers.py polls its git thread with a fixed `gen.sleep(0.5)`. Not
    reported. Applies to nbgitpuller 1.2 and 1.3. Only the handler module's view of tornado.gen
    changes; tornado itself is left alone.
    """
    if not applies("quicker_pull_polling", DISTRIBUTION, VERSIONS):
        return
    import nbgitpuller.handlers as handlers

    gen = handlers.gen

    def sleep(seconds: float):
        return gen.sleep(min(seconds, PULL_POLL_SECONDS))

    handlers.gen = types.SimpleNamespace(**{name: getattr(gen, name) for name in dir(gen) if not name.startswith("__")})
    handlers.gen.sleep = sleep
