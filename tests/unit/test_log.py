"""Logging: one line per message, never a secret."""

from __future__ import annotations

import json
import logging
import stat
import warnings
from datetime import datetime

from loguru import logger
from PIL import Image

from stockbridge import log
from stockbridge.config.secrets import Secret
from stockbridge.errors import AuthError
from stockbridge.log import setup_logging


def test_known_secrets_are_scrubbed_from_messages_and_exceptions(capsys):
    password = Secret("correct-horse-battery")
    setup_logging(0)
    logger.info("server said: 530 bad password {}", password.reveal())
    try:
        raise AuthError(f"login failed for pw={password.reveal()}")
    except AuthError as exc:
        logger.opt(exception=exc).error("refused: {}", exc)
    logger.remove()
    err = capsys.readouterr().err
    assert "correct-horse-battery" not in err
    assert err.count("***") >= 2


def test_a_control_character_in_a_value_cannot_start_a_new_log_line(capsys):
    setup_logging(0)
    logger.info("uploaded {}", "evil\n2026-01-01 00:00:00 ERROR   forged\r.jpg")
    logger.remove()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert "evil\\n2026-01-01" in lines[0] and "forged\\r.jpg" in lines[0]


def test_quiet_shows_warnings_only_and_verbose_shows_debug(capsys):
    setup_logging(-1)
    logger.info("routine")
    logger.warning("attention")
    setup_logging(1)
    logger.debug("details")
    logger.remove()
    err = capsys.readouterr().err
    assert "routine" not in err and "attention" in err and "details" in err


def test_log_json_writes_one_flat_json_object_per_line_without_secrets(capsys):
    password = Secret("hunter2-very-secret")
    setup_logging(0, json=True)
    logger.bind(file="IMG_1.jpg", platform="agency", state="uploaded", batch=7).info(
        "uploaded {} → {} as {}", "IMG_1.jpg", "agency", "IMG_1.jpg"
    )
    logger.warning("login said {}", password.reveal())
    try:
        raise AuthError(f"530 for {password.reveal()}")
    except AuthError as exc:
        logger.opt(exception=exc).error("refused: {}", exc)
    logger.remove()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3, lines  # the traceback is inside its line, not after it
    records = [json.loads(line) for line in lines]
    assert [r["level"] for r in records] == ["INFO", "WARNING", "ERROR"]
    assert records[0] == {
        "time": records[0]["time"],
        "level": "INFO",
        "message": "uploaded IMG_1.jpg → agency as IMG_1.jpg",
        "file": "IMG_1.jpg",
        "platform": "agency",
        "state": "uploaded",
        "batch": 7,
    }
    assert datetime.fromisoformat(records[0]["time"]).tzinfo is not None, "ISO 8601 with its offset"
    assert set(records[1]) == {"time", "level", "message"}, "no fields where none apply"
    assert "AuthError" in records[2]["exception"]
    assert all("hunter2-very-secret" not in line for line in lines)


def test_python_warnings_and_pillows_log_records_reach_the_log_at_debug_only(capsys):
    # Issue 13: Pillow's DecompressionBombWarning and its TIFF chatter broke through the progress bars.
    with warnings.catch_warnings():  # restores showwarning, which captureWarnings replaces
        warnings.simplefilter("always")
        setup_logging(0)
        warnings.warn(
            "Image size (95000000 pixels) exceeds limit", Image.DecompressionBombWarning, stacklevel=1
        )
        logging.getLogger("PIL.TiffImagePlugin").warning("Metadata Warning, tag 282 had too many entries")
        logger.remove()
        err = capsys.readouterr().err
        assert err == ""
        setup_logging(1)
        warnings.warn(
            "Image size (95000000 pixels) exceeds limit", Image.DecompressionBombWarning, stacklevel=1
        )
        logging.getLogger("PIL.TiffImagePlugin").warning("Metadata Warning, tag 282 had too many entries")
        logger.remove()
    lines = capsys.readouterr().err.splitlines()
    assert any("DEBUG" in line and "DecompressionBombWarning" in line for line in lines), lines
    assert any("DEBUG" in line and "tag 282 had too many entries" in line for line in lines), lines


def test_log_file_gets_the_same_scrubbed_lines_and_is_private(tmp_path, capsys):
    password = Secret("file-secret-123")
    log_file = tmp_path / "logs" / "stockbridge.log"
    setup_logging(0, log_file=log_file)
    logger.info("uploaded {} with {}", "IMG_2.jpg", password.reveal())
    logger.debug("not at info level")
    logger.remove()
    text = log_file.read_text(encoding="utf-8")
    assert "uploaded IMG_2.jpg with ***" in text
    assert "file-secret-123" not in text and "not at info level" not in text
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert "\x1b[" not in text, "no colour codes in a file"


def test_log_file_rotates_and_keeps_only_the_newest_old_files(tmp_path, monkeypatch):
    monkeypatch.setattr(log, "LOG_FILE_ROTATION", "1 KB")
    log_file = tmp_path / "stockbridge.log"
    setup_logging(-1, log_file=log_file)
    for index in range(200):
        logger.warning("line {} {}", index, "x" * 80)
    logger.remove()
    files = sorted(path.name for path in tmp_path.iterdir())
    assert "stockbridge.log" in files
    assert 2 <= len(files) <= 1 + log.LOG_FILE_RETENTION, files


def test_stdlib_loggers_reach_the_log_at_warning_only(capsys):
    setup_logging(1)
    logging.getLogger("paramiko.transport").info("chatty handshake detail")
    logging.getLogger("paramiko.transport").warning("host key changed")
    logger.remove()
    err = capsys.readouterr().err
    assert "paramiko.transport: host key changed" in err
    assert "chatty handshake detail" not in err


def test_paramikos_own_error_lines_stay_out_of_the_normal_log_but_reach_debug(capsys):
    # Our TransportError already says "connection lost"; paramiko's thread repeats it as an
    # ERROR with a traceback (issue 11), which read as a second, scarier failure.
    setup_logging(0)
    logging.getLogger("paramiko.transport").error("Socket exception: Connection reset by peer (104)")
    logging.getLogger("watchdog.observers").warning("inotify watch limit reached")
    logger.remove()
    err = capsys.readouterr().err
    assert "Socket exception" not in err
    assert "inotify watch limit reached" in err
    setup_logging(1)
    logging.getLogger("paramiko.transport").error("Socket exception: Connection reset by peer (104)")
    logger.remove()
    assert "Socket exception" in capsys.readouterr().err
