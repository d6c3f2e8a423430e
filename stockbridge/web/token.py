"""The page's access token: random, in the state folder, readable by its owner only (decisions.md X-20).

The file is read again whenever it changes (its modification time and size), so
``stockbridge web rotate-token`` takes effect in a running service at its next request: the old token
stops working at once.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
import threading
from pathlib import Path

from loguru import logger

from stockbridge.errors import StockbridgeError

TOKEN_FILE = "web-token"


def token_path(state_dir: Path) -> Path:
    return state_dir / TOKEN_FILE


def new_token() -> str:
    """256 random bits, URL-safe (no quoting in a link)."""
    return secrets.token_urlsafe(32)


def write_token(path: Path, token: str) -> None:
    """Write ``token`` with mode 0600 from the first byte (a temporary file, then an atomic rename)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(token + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def ensure_token(state_dir: Path) -> str:
    """The token, made at first start; a file others could read is repaired to 0600, with a warning."""
    path = token_path(state_dir)
    try:
        return read_token(path)
    except FileNotFoundError:
        token = new_token()
        write_token(path, token)
        logger.info("made the web page's access token in {}", path)
        return token


def read_token(path: Path) -> str:
    """Read the token file; a mode wider than 0600 is narrowed first (and said). Raises
    FileNotFoundError when there is none, StockbridgeError when it is not a usable token file."""
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise StockbridgeError(f"{path}: not a regular file", hint="delete it; stockbridge makes a new token")
    if info.st_mode & 0o077:
        os.chmod(path, 0o600)
        logger.warning(
            "{}: others could read the web page's token (mode {:o}); made it 0600."
            " Run `stockbridge web rotate-token` if someone may have read it",
            path,
            stat.S_IMODE(info.st_mode),
        )
    token = path.read_text(encoding="ascii", errors="replace").strip()
    if len(token) < 22:  # 128 bits in URL-safe base64
        raise StockbridgeError(
            f"{path}: not a token stockbridge made", hint="run `stockbridge web rotate-token`"
        )
    return token


def rotate_token(state_dir: Path) -> str:
    token = new_token()
    write_token(token_path(state_dir), token)
    return token


class TokenKeeper:
    """The current token for a running page, re-read when its file changes."""

    def __init__(self, state_dir: Path) -> None:
        self.path = token_path(state_dir)
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._token = ensure_token(state_dir)
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def current(self) -> str | None:
        """The token in force; None when its file is gone or broken (then nothing gets in)."""
        stamp = self._stamp()
        with self._lock:
            if stamp != self._seen:
                self._seen = stamp
                try:
                    self._token = read_token(self.path) if stamp is not None else ""
                except (OSError, StockbridgeError) as exc:
                    logger.error("the web page's token cannot be read ({}); nobody gets in", exc)
                    self._token = ""
            return self._token or None

    def matches(self, offered: str | None) -> bool:
        """Compared in constant time (the length of the token is no secret: it is always 43)."""
        token = self.current()
        if token is None or not offered:
            return False
        return hmac.compare_digest(offered.encode("utf-8", "replace"), token.encode("ascii"))
