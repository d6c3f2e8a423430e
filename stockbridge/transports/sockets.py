"""Socket helpers for uploads on slow or dying links (Linux: the send queue and TCP state)."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import sys
import time
from collections.abc import Callable


def wait_until_sent(conn: socket.socket, stall_timeout: float, tick: Callable[[], object]) -> None:
    """Wait while the kernel still holds bytes of this upload, for as long as they keep leaving.

    ``send()`` returns once the data is in the kernel's buffer, which on a fast machine can hold
    megabytes; on a slow uplink draining it takes longer than the reply timeout, and the 226 would
    be given up on while the file is still arriving. So the timeout here means "no progress",
    measured on the socket's send queue (Linux SIOCOUTQ; elsewhere we do not wait).
    """
    if not sys.platform.startswith("linux"):
        return
    import fcntl

    # Done when at most _IN_FLIGHT_TAIL bytes are left in the kernel, sent or not: that tail leaves
    # well within the reply timeout that follows even on a slow link, and waiting for all of it
    # cost the receiver's delayed-ACK time, ~40 ms per file (bench/README.md). A file smaller than
    # the tail never waits here.
    last, last_change = -1, time.monotonic()
    # With TCP_NOTSENT_LOWAT at the tail, poll() wakes us the moment the unsent part drops below
    # it, instead of a nap that overshoots (naps cost 3-4 ms per 8 MB file on loopback). Bytes sent
    # but not yet acknowledged do not wake poll(): for those, look again soon, then back off.
    with contextlib.suppress(OSError, AttributeError):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, _IN_FLIGHT_TAIL)
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLOUT)
    delay = 0.0001
    while True:
        try:
            queued = struct.unpack("i", fcntl.ioctl(conn.fileno(), _SIOCOUTQ, b"\0\0\0\0"))[0]
        except OSError:
            return
        if queued <= _IN_FLIGHT_TAIL:
            return
        if _peer_gone(conn):
            # The server closed (or reset) the data connection with our bytes still unread:
            # they will never be acknowledged, so waiting out the timeout would only delay the retry.
            raise ConnectionResetError("the server closed the data connection before taking all the data")
        now = time.monotonic()
        if queued != last:
            last, last_change = queued, now
        elif now - last_change > stall_timeout:
            raise TimeoutError(f"no data acknowledged for {stall_timeout:.0f} s")
        tick()
        if poller.poll(50):  # the unsent part is below the tail: the rest is in flight
            time.sleep(delay)
            delay = min(0.05, delay * 2)


#: linux/sockios.h: bytes in a socket's send queue (sent or not, not yet acknowledged).
_SIOCOUTQ = 0x5411
#: Unacknowledged bytes left to the reply timeout: 256 KiB take 2.6 s even at 100 KB/s.
_IN_FLIGHT_TAIL = 256 * 1024

#: TCP_CLOSE and TCP_CLOSE_WAIT (linux/tcp_states.h): the peer reset the connection or closed its end.
_TCP_PEER_GONE_STATES = frozenset({7, 8})


def _peer_gone(conn: socket.socket) -> bool:
    """Has the other end closed or reset this connection? (Linux TCP_INFO; elsewhere: don't know.)"""
    try:
        if conn.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            return True
        info = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)
    except (OSError, AttributeError):
        return False
    return bool(info) and info[0] in _TCP_PEER_GONE_STATES


def send_all(conn: socket.socket, block: bytes | memoryview) -> None:
    """``sendall`` with the timeout meaning "no progress for that long".

    A plain socket's ``sendall()`` must finish the whole block within the timeout (Python >= 3.5):
    1 MiB at a 30 s timeout would fail every upload on links slower than ~35 KB/s. ``send()``
    waits at most the timeout for *some* bytes to go out, so only a stalled link times out.
    """
    view = memoryview(block)
    while view:
        sent = conn.send(view)
        view = view[sent:]
