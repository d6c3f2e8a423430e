"""The latency half of the link emulator (bench/link.py): a TCP relay that delays every byte by a
one-way delay in each direction, with a TCP-like window per direction.

    python -m bench.link_relay '{"delay": 0.1, "target": "10.213.7.2", "ports": [[0, 2121], ...],
                                 "pasv": 20, "cap_up": 1000000, "cap_down": 1000000}'

Runs as a process of its own (its event loop never shares a GIL with the client under test).
Prints one JSON line once listening: ``{"ports": {"2121": 43121, ...}, "pasv_base": 24000}``: the
127.0.0.1 port that forwards to each target port, and the first of ``pasv`` consecutive ports
forwarded one to one (an FTP server's passive range: the same numbers on both sides, so the
server's PASV/EPSV replies need no rewriting).

What one direction of a relayed connection does (``Pipe``):
* it reads from the sender only while the bytes in flight (read, not yet "acknowledged") are below
  its window; each chunk is written to the receiver ``delay`` seconds after it was read, and is
  "acknowledged" ``delay`` after that write completed (the ACK's trip back), so the sender feels
  one round trip per window, and the shaper behind the relay (tbf) pushes back on the ACK clock;
* the window starts at 10 segments (Linux's initial window) and grows by every byte acknowledged
  (slow start) up to ``cap``: a new connection ramps up as on a real path, instead of at loopback
  speed; after an idle spell longer than the retransmission timeout (RTT + 200 ms) it is halved
  per timeout down to the initial window, as Linux's ``tcp_slow_start_after_idle`` (on by default)
  does for a sender;
* the socket buffers on both sides are small and fixed, so the kernel does not hide megabytes of
  in-flight data from the window.

SIGUSR1 cuts the link: every relayed connection is reset (both sides), listeners stay open. SIGTERM
or SIGINT stops the relay.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import random
import signal
import socket
import struct
import sys
import time

INITIAL_WINDOW = 10 * 1448  # Linux's initial congestion window (RFC 6928), in payload bytes
CHUNK = 64 * 1024
SOCKET_BUFFER = 64 * 1024  # fixed (no autotuning): a bounded amount hidden from the window
PASV_TRIES = 50
#: epoll waits in whole milliseconds, rounded up: a timer fires up to 1 ms late, so each delay is
#: asked for that much early (measured: 31 ms for a 30 ms RTT with half of it).
TIMER_LATENESS = 0.001


class Pipe:
    """One direction of one relayed connection: delay, window, slow start."""

    def __init__(
        self, source: socket.socket, sink: socket.socket, delay: float, cap: int, start: float = 0.0
    ) -> None:
        self.source, self.sink, self.delay, self.cap = source, sink, delay, max(cap, INITIAL_WINDOW)
        self.start = start  # seconds before the first read (the server side's handshake lag)
        self.rto = 2 * delay + 0.2  # Linux: srtt + max(4 × rttvar, 200 ms); rttvar ≈ 0 here
        self.last_sent = 0.0
        self.window = INITIAL_WINDOW
        self.in_flight = 0
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.queued = asyncio.Event()
        self.acked = asyncio.Event()

    def _ack(self, size: int) -> None:
        self.in_flight -= size
        self.window = min(self.cap, self.window + size)  # slow start; no loss on this path
        self.acked.set()

    async def read(self) -> None:
        loop = asyncio.get_running_loop()
        if self.start:
            await asyncio.sleep(self.start)
        while True:
            while self.in_flight >= self.window:
                self.acked.clear()
                await self.acked.wait()
            data = await loop.sock_recv(self.source, min(CHUNK, self.window - self.in_flight))
            now = time.monotonic()
            idle = now - self.last_sent
            if self.last_sent and self.in_flight == 0 and idle > self.rto:
                self.window = max(INITIAL_WINDOW, self.window >> min(int(idle / self.rto), 16))
            self.last_sent = now
            self.queue.append((now + self.delay, data))
            self.queued.set()
            if not data:
                return  # EOF travels with the same delay
            self.in_flight += len(data)

    async def write(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self.queue:
                self.queued.clear()
                await self.queued.wait()
            due, data = self.queue.popleft()
            wait = due - time.monotonic() - TIMER_LATENESS
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                with contextlib.suppress(OSError):
                    self.sink.shutdown(socket.SHUT_WR)
                return
            await loop.sock_sendall(self.sink, data)
            loop.call_later(self.delay, self._ack, len(data))


class Relay:
    def __init__(self, config: dict[str, object]) -> None:
        self.delay = float(config["delay"])  # type: ignore[arg-type]
        self.target = str(config["target"])
        self.cap_up = int(config["cap_up"])  # type: ignore[call-overload]
        self.cap_down = int(config["cap_down"])  # type: ignore[call-overload]
        self.connections: set[tuple[socket.socket, socket.socket]] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    async def serve(self, listener: socket.socket, target_port: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            client, _ = await loop.sock_accept(listener)
            task = asyncio.create_task(self.relay(client, target_port))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def relay(self, client: socket.socket, target_port: int) -> None:
        loop = asyncio.get_running_loop()
        client.setblocking(False)
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setblocking(False)
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        pair = (client, server)
        try:
            # The handshake: the client's first bytes reach the server 3 one-way delays after its
            # connect (SYN, SYN-ACK, ACK + data), the server's first bytes (a banner) reach the
            # client after 4 (it accepts when the ACK arrives). The client's kernel completed the
            # connect at once (loopback), so these delays are the relay's.
            await asyncio.sleep(self.delay)
            await asyncio.wait_for(loop.sock_connect(server, (self.target, target_port)), 10)
            await asyncio.sleep(self.delay)
            self.connections.add(pair)
            up = Pipe(client, server, self.delay, self.cap_up)
            down = Pipe(server, client, self.delay, self.cap_down, start=self.delay)
            pipes = [asyncio.create_task(step()) for step in (up.read, up.write, down.read, down.write)]
            try:
                await asyncio.gather(*pipes)
            finally:
                for task in pipes:
                    task.cancel()
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            self.connections.discard(pair)
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.close()

    def cut(self) -> None:
        """Reset every relayed connection (RST to both ends), as a line that drops."""
        for pair in list(self.connections):
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.close()
        for task in list(self.tasks):
            task.cancel()


def _listen(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by accepted sockets, before the handshake: the window is ours from the first byte.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    listener.setblocking(False)
    return listener


def _pasv_listeners(count: int) -> tuple[int, list[socket.socket]]:
    """``count`` consecutive free ports below the ephemeral range (other runs may hold some)."""
    for _ in range(PASV_TRIES):
        base = random.randrange(20000, 32000 - count)
        listeners: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                listeners.append(_listen(port))
        except OSError:
            for listener in listeners:
                listener.close()
            continue
        return base, listeners
    raise RuntimeError(f"no {count} consecutive free ports for the passive range")


async def main(config: dict[str, object]) -> None:
    # The relay is the link, not a contender: on a shared machine it must not wait for a CPU
    # while the clients and servers it carries use them (root only; otherwise it runs as is).
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    relay = Relay(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, relay.cut)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    served: list[tuple[socket.socket, int]] = []
    ports: dict[str, int] = {}
    for listen_port, target_port in config["ports"]:  # type: ignore[attr-defined]
        listener = _listen(int(listen_port))
        ports[str(target_port)] = listener.getsockname()[1]
        served.append((listener, int(target_port)))
    pasv_base = None
    count = int(config.get("pasv", 0))  # type: ignore[call-overload]
    if count:
        pasv_base, listeners = _pasv_listeners(count)
        served += [(listener, pasv_base + index) for index, listener in enumerate(listeners)]
    servers = [asyncio.create_task(relay.serve(listener, target)) for listener, target in served]
    print(json.dumps({"ports": ports, "pasv_base": pasv_base}), flush=True)
    await stop.wait()
    relay.cut()
    for task in servers:
        task.cancel()
    for listener, _ in served:
        listener.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
