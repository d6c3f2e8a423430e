"""What servers say, read as we read it: hash offers in FEAT, multi-line replies, refusals, pins."""

from __future__ import annotations

import pytest

from stockbridge.transports.base import refusal_kind
from stockbridge.transports.ftp_replies import choose_hash_method, one_line
from stockbridge.transports.ssh_keys import parse_host_key_pins

PROFTPD_FEAT = """211-Features:
 AUTH TLS
 HASH SHA-1*;SHA-256;SHA-512;MD5
 MDTM
 XCRC
 XMD5
 XSHA1
 XSHA256
 XSHA512
 SIZE
211 End"""


@pytest.mark.parametrize(
    ("features", "command", "algorithm"),
    [
        (PROFTPD_FEAT, "HASH", "sha256"),  # HASH with SHA-256 beats the X-commands
        ("211-Features:\n XCRC\n XMD5\n XSHA1\n211 End", "XSHA1", "sha1"),
        ("211-Features:\n XCRC\n211 End", "XCRC", "crc32"),
        ("211-Features:\n HASH MD5*;CRC32\n211 End", "HASH", "md5"),
    ],
)
def test_the_strongest_hash_a_server_offers_is_the_one_asked_for(
    features: str, command: str, algorithm: str
) -> None:
    method = choose_hash_method(features)
    assert method is not None
    assert (method.command, method.algorithm) == (command, algorithm)


@pytest.mark.parametrize(
    "features",
    [
        "211-Features:\n EPRT\n EPSV\n MDTM\n PASV\n REST STREAM\n SIZE\n TVFS\n UTF8\n211 End",  # vsftpd
        "211-Extensions supported:\n EPRT\n MLST type*;size*;modify*;\n SIZE\n211 End",  # pure-ftpd
        "",
    ],
)
def test_servers_without_a_hash_command_are_checked_by_size(features: str) -> None:
    assert choose_hash_method(features) is None


def test_a_multi_line_reply_becomes_one_line_with_every_part_of_it() -> None:
    assert one_line("451-Error during write to file\r\n451 Transfer aborted") == (
        "451 Error during write to file; Transfer aborted"
    )
    assert one_line("552 Quota exceeded\r\n") == "552 Quota exceeded"


@pytest.mark.parametrize(
    ("words", "kind"),
    [
        ("File too large", "too-large"),
        ("552 Transfer aborted. File too large", "too-large"),
        ("552 Quota exceeded", "storage"),
        ("No space left on device", "storage"),
        ("451 Transfer aborted. Input/output error", "storage"),
        ("451 Error during write to file", "storage"),
        ("Disk quota exceeded", "storage"),
        ("Failure", None),
        ("451 Local error in processing", None),
    ],
)
def test_a_refusal_is_read_by_its_words_where_servers_disagree_on_codes(words: str, kind: str | None) -> None:
    assert refusal_kind(words) == kind


def test_host_key_pins_take_a_fingerprint_a_keygen_line_or_a_list() -> None:
    fingerprint = "SHA256:" + "x" * 43
    assert parse_host_key_pins(fingerprint) == [(fingerprint, None)]
    assert parse_host_key_pins(f"3072 {fingerprint} [sftp.example.com]:22 (RSA)") == [
        (fingerprint, "ssh-rsa")
    ]
    assert parse_host_key_pins([f"256 {fingerprint} host (ED25519)", fingerprint]) == [
        (fingerprint, "ssh-ed25519"),
        (fingerprint, None),
    ]
    assert parse_host_key_pins(None) == []
