"""FTPS data connections that start their TLS handshake without waiting for the server's 150.

``ftplib`` opens a protected data connection in four round trips: ``PASV``, the TCP connect, the
transfer command and its ``150`` reply, then the TLS handshake. The handshake does not depend on
the reply: the server reads our ClientHello from the data connection as soon as it accepts it,
whether it sends its ``150`` before or after (vsftpd, ProFTPD and Pure-FTPd each do one or the
other). So the ClientHello goes out right after the connect, and the ``150`` and the server's
handshake answer arrive in the same round trip: one round trip less per file, a fifth of a second
on a 200 ms link. The TLS session is the control connection's, as every FTPS data connection here
(vsftpd's ``require_ssl_reuse``, CPython issue 63699).

A refusal stays a refusal: the control connection is watched during the handshake, and a
``553``/``452``/... reply ends it with the server's words; a handshake that breaks because the
server closed its passive port after refusing reports the refusal, not the broken handshake.
"""

from __future__ import annotations

import contextlib
import ftplib
import select
import socket
import ssl
import time

#: How long to wait for the server's reply when the handshake broke first: it is sent at once.
_REPLY_AFTER_BROKEN_HANDSHAKE = 5.0


def open_protected_data(ftp: ftplib.FTP_TLS, cmd: str, rest: int | str | None) -> ssl.SSLSocket:
    """A passive data connection for ``cmd`` (``STOR name``, ``MLSD``...), TLS-protected with the
    control connection's session, whose transfer the server accepted (1xx). Raises ftplib's
    errors for a refusal, OSError / ssl errors when the connection fails."""
    assert isinstance(ftp.sock, ssl.SSLSocket)  # AUTH TLS came first
    host, port = ftp.makepasv()
    raw = socket.create_connection((host, port), ftp.timeout, source_address=ftp.source_address)
    try:
        if rest is not None:
            ftp.sendcmd(f"REST {rest}")
        ftp.putcmd(cmd)
        conn = ftp.context.wrap_socket(
            raw, server_hostname=ftp.host, session=ftp.sock.session, do_handshake_on_connect=False
        )
    except (OSError, ssl.SSLError) as broken:
        # A server that refused the command may have reset the connection already (ProFTPD):
        # wrapping a reset socket fails before any handshake. Its reply says why.
        raw.close()
        _raise_refusal_instead(ftp, broken)
        raise
    except BaseException:
        raw.close()
        raise
    try:
        _handshake_awaiting_reply(ftp, conn)
    except BaseException:
        conn.close()
        raise
    conn.settimeout(ftp.timeout)
    return conn


def _handshake_awaiting_reply(ftp: ftplib.FTP_TLS, conn: ssl.SSLSocket) -> None:
    """Complete the TLS handshake on ``conn`` and read the transfer command's 1xx reply, whichever
    comes first; a refusal on the control connection ends the handshake."""
    timeout = ftp.timeout if isinstance(ftp.timeout, (int, float)) else None
    deadline = None if timeout is None else time.monotonic() + timeout
    control = ftp.sock
    replied = False
    conn.setblocking(False)
    try:
        while True:
            try:
                conn.do_handshake()
                break
            except ssl.SSLWantReadError:
                readers: list[socket.socket] = [conn]
                writers: list[socket.socket] = []
            except ssl.SSLWantWriteError:
                readers, writers = [], [conn]
            if not replied and control is not None:
                readers.append(control)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("TLS handshake on the data connection timed out")
            ready, _, _ = select.select(readers, writers, [], remaining)
            if not replied and control in ready:
                conn.settimeout(timeout)  # getresp blocks on the control socket meanwhile
                _expect_preliminary(ftp)
                replied = True
                conn.setblocking(False)
    except (OSError, ssl.SSLError) as broken:
        if not replied:
            _raise_refusal_instead(ftp, broken)
        raise
    if not replied:
        _expect_preliminary(ftp)


def _expect_preliminary(ftp: ftplib.FTP) -> None:
    """Read the transfer command's reply: 1xx goes on; 4xx/5xx raise (ftplib's getresp)."""
    reply = ftp.getresp()
    if reply[:1] == "2":  # as ftplib: some servers send a 2xx before the 1xx
        reply = ftp.getresp()
    if reply[:1] != "1":
        raise ftplib.error_reply(reply)


def _raise_refusal_instead(ftp: ftplib.FTP, broken: BaseException) -> None:
    """The handshake broke before any reply: a server that refused the command closes its passive
    port, and its reply says why. Raise that reply if there is a refusal; else return."""
    if ftp.sock is None:
        return
    try:
        ftp.sock.settimeout(min(_REPLY_AFTER_BROKEN_HANDSHAKE, ftp.timeout or _REPLY_AFTER_BROKEN_HANDSHAKE))
        ftp.getresp()  # a 1xx: the handshake failure itself is the error
    except ftplib.Error:
        raise
    except (OSError, EOFError):
        return
    finally:
        with contextlib.suppress(OSError, AttributeError):
            if ftp.sock is not None:
                ftp.sock.settimeout(ftp.timeout)
