"""Logging: one line per message, never a secret."""

from __future__ import annotations

from loguru import logger

from stockbridge.errors import AuthError
from stockbridge.log import setup_logging
from stockbridge.secrets import Secret


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
