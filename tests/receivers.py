"""Local receivers for notifications, on 127.0.0.1: HTTP (webhook, ntfy), SMTP, and ones that fail.

``smtpd`` left the standard library in 3.12; :class:`SmtpReceiver` speaks just enough SMTP
(EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, QUIT) for ``smtplib`` to deliver one message.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    url: str
    requests: list[Request] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.requests


@contextmanager
def http_receiver(path: str = "/hook") -> Iterator[HttpReceiver]:
    received: list[Request] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            received.append(Request(self.path, dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HttpReceiver(f"http://127.0.0.1:{server.server_address[1]}{path}", received)
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def hanging_receiver() -> Iterator[str]:
    """A port that accepts connections (in its backlog) and never answers: the URL of it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    finally:
        sock.close()


@dataclass
class HoldingReceiver:
    """A receiver that accepts every connection and answers none until :meth:`release`."""

    url: str
    #: Set once the first connection was accepted: a delivery is under way and stuck in it.
    connected: threading.Event
    release: Callable[[], None]


@contextmanager
def holding_receiver() -> Iterator[HoldingReceiver]:
    """Unlike :func:`hanging_receiver`, the test sees the connection arrive and decides when it
    ends: ``release()`` closes every held connection and stops listening (later ones are refused)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    connected, released = threading.Event(), threading.Event()

    def accept() -> None:
        while not released.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return  # released: the listener is closed
            held.append(connection)
            connected.set()

    def release() -> None:
        released.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        for connection in held:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield HoldingReceiver(f"http://127.0.0.1:{listener.getsockname()[1]}/hook", connected, release)
    finally:
        release()
        thread.join(5)


def closed_port() -> int:
    """A port nothing listens on (connections are refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes
    auth: list[str]

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpReceiver:
    host: str
    port: int
    mails: list[Mail] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Mail]:
        deadline = time.monotonic() + timeout
        while len(self.mails) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.mails


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    mails: list[Mail] = []

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        def handle(self) -> None:
            sender, recipients, auth = "", [], []
            self.reply("220 localhost test SMTP")
            while True:
                line = self.rfile.readline().decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    return
                verb = line.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    self.reply("250-localhost")
                    self.reply("250-AUTH PLAIN LOGIN")
                    self.reply("250 8BITMIME")
                elif verb == "AUTH":
                    parts = line.split()
                    if parts[1].upper() == "PLAIN":
                        auth.append(base64.b64decode(parts[2]).decode())
                    else:  # LOGIN: user and password on their own lines
                        self.reply("334 VXNlcm5hbWU6")
                        user = base64.b64decode(self.rfile.readline().strip()).decode()
                        self.reply("334 UGFzc3dvcmQ6")
                        auth.append(user + "\0" + base64.b64decode(self.rfile.readline().strip()).decode())
                    self.reply("235 ok")
                elif verb == "MAIL":
                    sender = line.split(":", 1)[1].strip().strip("<>").split(">")[0]
                    self.reply("250 ok")
                elif verb == "RCPT":
                    recipients.append(line.split(":", 1)[1].strip().strip("<>"))
                    self.reply("250 ok")
                elif verb == "DATA":
                    self.reply("354 go on")
                    data = b""
                    while True:
                        chunk = self.rfile.readline()
                        if chunk in (b".\r\n", b""):
                            break
                        data += chunk[1:] if chunk.startswith(b"..") else chunk
                    mails.append(Mail(sender, recipients, data, auth))
                    recipients = []  # a new envelope for the next mail on this connection (RFC 5321, 4.1.1.4)
                    self.reply("250 queued")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("250 ok")

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SmtpReceiver("127.0.0.1", int(server.server_address[1]), mails)
    finally:
        server.shutdown()
        server.server_close()
