"""Verifying a batch with one directory listing instead of one size request per file.

On a link with a long round trip every per-file request costs a round trip: a batch of 300 files
spends a minute at 200 ms on ``SIZE`` (or an SFTP ``stat``) alone. One listing of the remote folder
(FTP ``MLSD`` where the server has it, else ``LIST``; an SFTP ``readdir``) gives every file's size
at once. A file counts as delivered only when the listing shows it under its final name with
exactly the size we sent; anything else (a name the listing lacks or shows with another size, a
listing the server refuses or that we cannot read) falls back to the per-file check, which decides
as before. So a listing can only save round trips, never turn a short file into an upload.

The parsers below read what real servers send: ``MLSD`` facts (RFC 3659; pyftpdlib, ProFTPD,
Pure-FTPd), Unix ``ls -l`` lines (vsftpd, ProFTPD, Pure-FTPd, most others) and the DOS format IIS
uses by default. Names keep their spaces, unicode and date-like words; a line we do not understand
gives no size, never a wrong one.
"""

from __future__ import annotations

import contextlib
import ftplib
import re
import ssl
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from loguru import logger

from stockbridge.errors import TransportError
from stockbridge.transports.base import ArrivedShort, PutResult
from stockbridge.transports.ftp_replies import error_for_exception

if TYPE_CHECKING:
    import paramiko

#: With this many files or fewer to check, one size request each costs fewer round trips than a
#: listing (FTP: a data connection, its TLS handshake, the command and its two replies).
PER_FILE_IS_CHEAPER = 5

#: How a listing-verified upload is recorded in the ledger (``verified_by``).
LISTING = "listing"

_MONTHS = frozenset(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])
#: ``-rw-r--r--   1 owner group   12345 Dec  5 02:00 name`` (ls -l): type+mode, links, owner, group,
#: size, month, day, time or year, then the name after exactly one space.
_UNIX = re.compile(
    r"^(?P<type>[-dlbcps])[-rwxsStTl+.@]{9}[+.@]?\s+\d+\s+(?P<who>.+?)\s+(?P<size>\d+)\s+"
    r"(?P<month>[A-Za-z]{3})\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4}) (?P<name>.+)$"
)
#: ``12-05-26  02:00AM       12345 name`` (IIS's DOS format); ``<DIR>`` instead of a size for folders.
_DOS = re.compile(r"^\d{2}-\d{2}-\d{2,4}\s+\d{1,2}:\d{2}(?:[AaPp][Mm])?\s+(?P<size>\d+|<DIR>) +(?P<name>.+)$")


def parse_mlsd_line(line: str) -> tuple[str, int] | None:
    """``(name, size)`` of a regular file in one ``MLSD`` line (``type=file;size=12;... name``),
    or None (a folder, ``cdir``/``pdir``, no size fact, unreadable)."""
    facts_text, sep, name = line.rstrip("\r\n").partition(" ")
    if not sep or not name or not facts_text.endswith(";"):
        return None
    facts: dict[str, str] = {}
    for fact in facts_text.split(";"):
        key, eq, value = fact.partition("=")
        if eq:
            facts[key.strip().lower()] = value
    if facts.get("type", "").lower() != "file":
        return None
    size = facts.get("size", "")
    return (name, int(size)) if size.isdigit() else None


def parse_list_line(line: str) -> tuple[str, int] | None:
    """``(name, size)`` of a regular file in one ``LIST`` line (Unix ``ls -l`` or DOS format), or
    None (a folder, a link, a ``total`` line, a format we do not know)."""
    text = line.rstrip("\r\n")
    unix = _UNIX.match(text)
    if unix is not None:
        if unix["type"] != "-" or unix["month"].lower() not in _MONTHS:
            return None
        return unix["name"], int(unix["size"])
    dos = _DOS.match(text)
    if dos is not None and dos["size"].isdigit():
        return dos["name"], int(dos["size"])
    return None


def sizes_from_lines(lines: Iterable[str], parse: Callable[[str], tuple[str, int] | None]) -> dict[str, int]:
    """Name → size of the regular files ``lines`` list; a name listed twice (never seen, but a
    listing is the server's text) is left out rather than guessed."""
    sizes: dict[str, int] = {}
    doubtful: set[str] = set()
    for line in lines:
        parsed = parse(line)
        if parsed is None:
            continue
        name, size = parsed
        if name in sizes and sizes[name] != size:
            doubtful.add(name)
        sizes[name] = size
    for name in doubtful:
        del sizes[name]
    return sizes


def confirm(
    pending: Sequence[PutResult],
    list_sizes: Callable[[], dict[str, int] | None],
    check_one: Callable[[PutResult], PutResult],
    where: str,
) -> list[PutResult | TransportError]:
    """Answers for uploads whose transfer the server confirmed, in order: one listing for all of
    them, and ``check_one`` (the transport's per-file size check, which raises
    :class:`ArrivedShort` for a file of another size) for every file the listing does not prove.
    Raises what fails for the connection as a whole (the caller checks again over a new one)."""
    listed: dict[str, int] | None = None
    if len(pending) > PER_FILE_IS_CHEAPER:
        listed = list_sizes()
        logger.debug(
            "{}: one listing for {} upload(s): {}",
            where,
            len(pending),
            "none with sizes" if listed is None else f"{len(listed)} file(s) listed",
        )
    answers: list[PutResult | TransportError] = []
    for sent in pending:
        if listed is not None and listed.get(sent.remote_name) == sent.size:
            answers.append(
                replace(sent, verified=True, verified_by=sent.verified_by or LISTING, pending=False)
            )
            continue
        try:
            answers.append(check_one(sent))
        except ArrivedShort as short:
            answers.append(short)
    return answers


def offers_mlsd(features: str) -> bool:
    """Does a ``FEAT`` reply list ``MLST`` (RFC 3659: then ``MLSD`` works too)?"""
    return any(line.strip().upper().startswith("MLST") for line in features.splitlines()[1:])


def ftp_listed_sizes(ftp: ftplib.FTP, features: str, where: str, timeout: float) -> dict[str, int] | None:
    """Name -> size from one ``MLSD`` (``LIST`` without MLST) of the current folder; None when the
    server refuses it. Raises our error when the connection fails under it."""
    mlsd = offers_mlsd(features)
    command = "MLSD" if mlsd else "LIST"
    chunks: list[bytes] = []
    try:
        # Not retrlines(): it switches to TYPE A, and the next STOR would go in ASCII mode.
        with ftp.transfercmd(command) as conn:
            conn.settimeout(timeout)
            while data := conn.recv(65536):
                chunks.append(data)
            if isinstance(conn, ssl.SSLSocket):
                with contextlib.suppress(OSError, ssl.SSLError):
                    conn.unwrap()  # as after a STOR: the 226 decides
        ftp.voidresp()
    except ftplib.error_perm as refused:
        logger.debug("{}: {} refused ({}); the size of each file is the check", where, command, refused)
        return None
    except (ftplib.Error, OSError, EOFError) as exc:
        raise error_for_exception(exc, command, where) from exc
    text = b"".join(chunks).decode("utf-8", errors="replace")
    return sizes_from_lines(text.splitlines(), parse_mlsd_line if mlsd else parse_list_line)


def sftp_listed_sizes(sftp: paramiko.SFTPClient, remote_dir: str, where: str) -> dict[str, int] | None:
    """Name -> size of the regular files one SFTP ``readdir`` of ``remote_dir`` lists; None when
    the server refuses to list it (a write-only upload folder)."""
    # Imported here: an FTP-only run never loads paramiko (a quarter of a second at start).
    import paramiko

    from stockbridge.transports.sftp_protocol import error_for_exception as sftp_error

    try:
        entries = sftp.listdir_attr(remote_dir)
    except OSError as exc:
        if isinstance(exc, (TimeoutError, ConnectionError)):
            raise sftp_error(exc, f"listing {remote_dir}", where) from exc
        logger.debug("{}: cannot list {} ({}); the size of each file is the check", where, remote_dir, exc)
        return None
    except (paramiko.SSHException, EOFError) as exc:
        raise sftp_error(exc, f"listing {remote_dir}", where) from exc
    return {
        entry.filename: entry.st_size
        for entry in entries
        if entry.st_size is not None and stat.S_ISREG(entry.st_mode or 0)
    }
