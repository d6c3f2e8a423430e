"""News from the live service to the page's event streams (``GET /api/events``).

The service's threads call :meth:`Hub.publish` (never blocks: a few dict operations and a
``call_soon_threadsafe``); each open stream has a bounded asyncio queue on uvicorn's loop. A stream
that falls behind loses events, never slows an upload: the page reloads what it shows on the next
one anyway. Progress is thinned to a few events a second per platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

#: Events one slow stream may have waiting before new ones are dropped for it.
QUEUE_SIZE = 256
#: At most one progress event per platform this often (seconds).
PROGRESS_EVERY = 0.25
#: A comment line this often keeps the stream open through proxies and idle timeouts.
PING_SECONDS = 15.0

Event = tuple[str, dict[str, Any]]


class Hub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Event | None]]] = []
        self._last_progress: dict[str, float] = {}
        self.closed = False

    def publish(self, event: str, data: dict[str, Any]) -> None:
        """Send ``event`` to every open stream; safe from any thread."""
        if event == "progress":
            now = time.monotonic()
            platform = str(data.get("platform"))
            done = data.get("total") is not None and data.get("sent") == data.get("total")
            if not done and now - self._last_progress.get(platform, 0.0) < PROGRESS_EVERY:
                return
            self._last_progress[platform] = now
        with self._lock:
            streams = list(self._streams)
        for loop, queue in streams:
            with contextlib.suppress(RuntimeError):  # that loop is closed: the server stopped
                loop.call_soon_threadsafe(_offer, queue, (event, data))

    def close(self) -> None:
        """End every stream (the service is stopping)."""
        self.closed = True
        with self._lock:
            streams, self._streams = list(self._streams), []
        for loop, queue in streams:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_offer, queue, None)

    @property
    def listeners(self) -> int:
        with self._lock:
            return len(self._streams)

    async def stream(self, ping: float = PING_SECONDS) -> AsyncIterator[str]:
        """The text/event-stream of one client, until it goes away or the hub closes."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        entry = (asyncio.get_running_loop(), queue)
        with self._lock:
            self._streams.append(entry)
        try:
            yield ": connected\n\n"
            while not self.closed:
                try:
                    item = await asyncio.wait_for(queue.get(), ping)
                except asyncio.TimeoutError:
                    yield ": ping\n\n"
                    continue
                if item is None:
                    return
                name, data = item
                yield f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
        finally:
            with self._lock:
                if entry in self._streams:
                    self._streams.remove(entry)


def _offer(queue: asyncio.Queue[Event | None], item: Event | None) -> None:
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(item)
