"""Notification texts: counts and causes a person can act on, platform and file names only."""

from __future__ import annotations

from stockbridge.service.alerts import batch_message, failed_message, paused_message


def test_a_batch_message_gives_the_counts():
    assert batch_message("archive", 18, 2) == (
        "stockbridge: archive batch done",
        "archive: 18 uploaded, 2 failed.",
    )
    assert batch_message("archive", 5, 0) == ("stockbridge: archive batch done", "archive: 5 uploaded.")


def test_a_pause_says_why_by_kind_without_the_servers_words():
    title, text = paused_message("adobe", "auth", None)
    assert title == "stockbridge: adobe paused"
    assert text == (
        "adobe paused: the login was refused. Fix the password, then run `stockbridge retry --platform adobe`."
    )
    _, quota = paused_message("123rf", "quota", 1_800_000_000.0)
    assert quota.startswith(
        "123rf paused: the server is full or the upload quota is used up. Trying again at "
    )
    _, unknown = paused_message("adobe", "something-new", None)
    assert unknown == "adobe paused: see `stockbridge status`."


def test_failed_files_are_listed_with_the_first_clause_of_their_reason_only():
    title, text = failed_message(
        "archive",
        [
            ("IMG_1.jpg", "the server refused this file: 553 /home/me/upload/IMG_1.jpg: denied"),
            ("IMG_2.jpg", "gave up after 4 attempts: timed out talking to ftp.example.com"),
            ("IMG_3.jpg", "the prepared copy /var/lib/stockbridge/x.jpg is missing; run `stockbridge retry`"),
        ],
    )
    assert title == "stockbridge: 3 file(s) failed for archive"
    assert text.splitlines() == [
        "IMG_1.jpg: the server refused this file",
        "IMG_2.jpg: gave up after 4 attempts",
        "IMG_3.jpg: failed",
        "Details: stockbridge status --platform archive --state failed",
    ]
    assert "example.com" not in text and "/home" not in text


def test_a_long_failure_list_is_cut_with_a_count():
    _, text = failed_message("archive", [(f"IMG_{index}.jpg", "refused") for index in range(25)], limit=20)
    assert "... and 5 more" in text
    assert text.count("IMG_") == 20
