"""Logging, configured once by the command line: loguru to stderr (journald takes it under systemd).

Every sink scrubs known secrets from messages and exceptions, and ``diagnose`` is off everywhere:
loguru's default prints local variables in tracebacks, which would include passwords.

``--log-json`` writes one flat JSON object per line::

    {"time": "2026-11-28T09:12:03.412+01:00", "level": "INFO",
     "message": "uploaded IMG_1.jpg → agency as IMG_1.jpg (8.1 MB, 3.2 s)",
     "file": "IMG_1.jpg", "platform": "agency", "state": "uploaded", "batch": 12}

``file`` (the source file's name, as in the message), ``platform``, ``state`` (a job state as
``status`` shows it, or "paused") and ``batch`` (its number in ``history``) are present where they
apply: the call sites bind them (``logger.bind(file=..., platform=...)``). A traceback, when there
is one, is in ``exception``, scrubbed like the message.
"""

from __future__ import annotations

import json as json_module
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from loguru import logger

from stockbridge.config.secrets import redact

_HUMAN = "<green>{time:YYYY-MM-DD HH:mm:ss}</green> <level>{level: <7}</level> {message}"
#: ``--log-file``: rotate at this size, keep this many old files (≈ 60 MB at most on disk).
LOG_FILE_ROTATION = "10 MB"
LOG_FILE_RETENTION = 5


#: Control characters shown escaped, so a file name holding a line break cannot forge log lines.
_CONTROL = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F]} | {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


#: Structured fields a call site may bind; the JSON lines carry them, the human lines do not.
FIELDS = ("file", "platform", "state", "batch")


def _scrub(record: Any) -> None:
    record["message"] = redact(record["message"]).translate(_CONTROL)
    if record["exception"] is not None:
        _kind, value, _traceback = record["exception"]
        if value is not None and value.args:
            value.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in value.args)
            if hasattr(value, "message") and isinstance(value.message, str):
                value.message = redact(value.message)


def _flat_json(record: Any) -> str:
    """One record as one line of flat JSON (``--log-json``); the message is scrubbed already."""
    entry: dict[str, Any] = {
        "time": record["time"].isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "message": record["message"],
    }
    for key in FIELDS:
        value = record["extra"].get(key)
        if value is not None:
            entry[key] = redact(value) if isinstance(value, str) else value
    if record["exception"] is not None:
        kind, value, trace = record["exception"]
        entry["exception"] = redact("".join(traceback.format_exception(kind, value, trace)))
    return json_module.dumps(entry, ensure_ascii=False, default=str)


def _json_format(record: Any) -> str:
    # A callable format: loguru appends no traceback of its own (it would break the line), and the
    # JSON is passed through ``extra`` so that its braces are not read as a template.
    record["extra"]["_json"] = _flat_json(record)
    return "{extra[_json]}\n"


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at the time of writing: while progress bars are drawn, rich
    swaps in a proxy that prints each log line above the bars instead of through them."""

    def write(self, text: str) -> None:
        sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


#: Libraries whose own log lines repeat what our error for the same failure says, in their words
#: and with a traceback ("ERROR paramiko.transport: Socket exception: Connection reset by peer"):
#: kept for -v, never shown as errors of ours. Pillow's records and Python warnings (``py.warnings``:
#: Pillow's DecompressionBombWarning, a TIFF's odd tag) are about files whose answer the log gives
#: anyway, in our words; printed raw they broke through the progress bars.
_DEBUG_ONLY = frozenset({"paramiko", "PIL", "py.warnings"})


class _InterceptHandler(logging.Handler):
    """Route stdlib logging (paramiko, watchdog) into loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        if record.name in _DEBUG_ONLY or record.name.split(".", 1)[0] in _DEBUG_ONLY:
            level = "DEBUG"
        logger.opt(depth=6, exception=record.exc_info).log(level, "{}: {}", record.name, record.getMessage())


def _private_opener(path: str, flags: int) -> int:
    # File names and platform names are nobody else's business: 0600, like the state folder.
    return os.open(path, flags, 0o600)


def setup_logging(verbosity: int = 0, *, json: bool = False, log_file: Path | None = None) -> None:
    """``verbosity``: -2 errors only, -1 quiet (warnings and errors), 0 normal (info), 1+ debug.

    ``log_file``: also write there (same level, same scrubbing, JSON lines when ``json``),
    rotated at ``LOG_FILE_ROTATION`` with ``LOG_FILE_RETENTION`` old files kept.
    """
    level = {-2: "ERROR", -1: "WARNING", 0: "INFO"}.get(max(-2, verbosity), "DEBUG")
    logger.remove()
    logger.configure(patcher=_scrub)
    logger.add(
        _CurrentStderr(),
        level=level,
        format=_HUMAN if not json else _json_format,
        colorize=None if not json else False,
        backtrace=False,
        diagnose=False,
    )
    if log_file is not None:
        log_file = log_file.expanduser()
        log_file.parent.mkdir(parents=True, exist_ok=True)
        logger.add(
            log_file,
            level=level,
            format="{time:YYYY-MM-DD HH:mm:ss} {level: <7} {message}" if not json else _json_format,
            colorize=False,
            backtrace=False,
            diagnose=False,
            rotation=LOG_FILE_ROTATION,
            retention=LOG_FILE_RETENTION,
            encoding="utf-8",
            opener=_private_opener,
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.WARNING, force=True)
    for name in ("paramiko", "watchdog", "pyftpdlib", "exiftool"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Python warnings become log records (``py.warnings``), shown at DEBUG like Pillow's own
    # warnings (its debug chatter, a line per PNG chunk, stays out even with -v).
    # (Off, then on: captureWarnings(True) does nothing when it was on before, even if something
    # has put back its own ``warnings.showwarning`` since, as a test runner does.)
    logging.captureWarnings(False)
    logging.captureWarnings(True)
