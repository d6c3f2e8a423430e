"""The MLSD and LIST parsers that verify a batch with one listing (transports/listing.py), on lines
real servers sent for the same files (captured from pyftpdlib 2.2, vsftpd 3.0.3, ProFTPD 1.3.8 and
Pure-FTPd 1.0.50 on this machine), plus IIS's DOS format. A line the parser cannot read must give
no size rather than a wrong one: the per-file SIZE then decides."""

from __future__ import annotations

import pytest

from stockbridge.errors import TransportError
from stockbridge.transports.base import ArrivedShort, PutResult
from stockbridge.transports.listing import (
    LISTING,
    confirm,
    offers_mlsd,
    parse_list_line,
    parse_mlsd_line,
    sizes_from_lines,
)

ODD_NAMES = {
    "plain.jpg": 1000,
    "with space.jpg": 1001,
    "Dec 05 02:00 looks like a date.jpg": 1002,
    "ünïcødé 写真.jpg": 1003,
    "2024-01-02 10:15AM 123 x.jpg": 1004,
}

MLSD = {
    "pyftpdlib": [
        "modify=20261205021030;perm=radfwMT;size=1000;type=file;unique=fe00g23a182; plain.jpg",
        "modify=20261205021030;perm=radfwMT;size=1002;type=file;unique=fe00g23a1a2; "
        "Dec 05 02:00 looks like a date.jpg",
        "modify=20261205021030;perm=eldfmMTcp;size=4096;type=dir;unique=fe00g23a1e2; sub dir",
        "modify=20261205021030;perm=radfwMT;size=1001;type=file;unique=fe00g23a192; with space.jpg",
        "modify=20261205021030;perm=radfwMT;size=1003;type=file;unique=fe00g23a1b2; ünïcødé 写真.jpg",
        "modify=20261205021030;perm=radfwMT;size=1004;type=file;unique=fe00g23a1d2; 2024-01-02 10:15AM 123 x.jpg",
    ],
    "proftpd": [
        "modify=20261205021032;perm=adfrw;size=1000;type=file;unique=FE00U23A43D;UNIX.group=0;"
        "UNIX.groupname=root;UNIX.mode=0644;UNIX.owner=0;UNIX.ownername=photographer; plain.jpg",
        "modify=20261205021032;perm=adfrw;size=1002;type=file;unique=FE00U23A43F;UNIX.group=0;"
        "UNIX.mode=0644; Dec 05 02:00 looks like a date.jpg",
        "modify=20261205021032;perm=flcdmpe;type=dir;unique=FE00U23A443;UNIX.mode=0755; sub dir",
        "modify=20261205021032;perm=flcdmpe;type=cdir;unique=FE00U23A43A;UNIX.mode=0755; .",
        "modify=20261205021032;perm=adfrw;size=1001;type=file;unique=FE00U23A43E;UNIX.mode=0644; with space.jpg",
        "modify=20261205021032;perm=flcdmpe;type=pdir;unique=FE00U23A392;UNIX.mode=0700; ..",
        "modify=20261205021032;perm=adfrw;size=1003;type=file;unique=FE00U23A440;UNIX.mode=0644; ünïcødé 写真.jpg",
        "modify=20261205021032;perm=adfrw;size=1004;type=file;unique=FE00U23A442;UNIX.mode=0644; "
        "2024-01-02 10:15AM 123 x.jpg",
    ],
    "pureftpd": [
        "type=file;size=1000;modify=20261205021035;UNIX.mode=0644;UNIX.uid=65534;unique=fe00g23a49b; plain.jpg",
        "type=file;size=1002;modify=20261205021035;UNIX.mode=0644;unique=fe00g23a49d; "
        "Dec 05 02:00 looks like a date.jpg",
        "type=dir;sizd=4096;modify=20261205021035;UNIX.mode=0755;unique=fe00g23a4a0; sub dir",
        "type=cdir;sizd=4096;modify=20261205021035;UNIX.mode=0755;unique=fe00g23a499; .",
        "type=file;size=1001;modify=20261205021035;UNIX.mode=0644;unique=fe00g23a49c; with space.jpg",
        "type=file;size=1003;modify=20261205021035;UNIX.mode=0644;unique=fe00g23a49e; ünïcødé 写真.jpg",
        "type=file;size=1004;modify=20261205021035;UNIX.mode=0644;unique=fe00g23a49f; 2024-01-02 10:15AM 123 x.jpg",
    ],
}

LIST = {
    "pyftpdlib": [
        "-rw-r--r--   1 root     root         1004 Dec 05 02:10 2024-01-02 10:15AM 123 x.jpg",
        "-rw-r--r--   1 root     root         1002 Dec 05 02:10 Dec 05 02:00 looks like a date.jpg",
        "-rw-r--r--   1 root     root         1000 Dec 05 02:10 plain.jpg",
        "drwxr-xr-x   2 root     root         4096 Dec 05 02:10 sub dir",
        "-rw-r--r--   1 root     root         1001 Dec 05 02:10 with space.jpg",
        "-rw-r--r--   1 root     root         1003 Dec 05 02:10 ünïcødé 写真.jpg",
    ],
    "vsftpd": [
        "-rw-r--r--    1 0        0            1004 Dec 05 02:10 2024-01-02 10:15AM 123 x.jpg",
        "-rw-r--r--    1 0        0            1002 Dec 05 02:10 Dec 05 02:00 looks like a date.jpg",
        "-rw-r--r--    1 0        0            1000 Dec 05 02:10 plain.jpg",
        "drwxr-xr-x    2 0        0            4096 Dec 05 02:10 sub dir",
        "-rw-r--r--    1 0        0            1001 Dec 05 02:10 with space.jpg",
        "-rw-r--r--    1 0        0            1003 Dec 05 02:10 ünïcødé 写真.jpg",
    ],
    "proftpd": [
        "-rw-r--r--   1 photographer root         1004 Dec  5 02:10 2024-01-02 10:15AM 123 x.jpg",
        "-rw-r--r--   1 photographer root         1002 Dec  5 02:10 Dec 05 02:00 looks like a date.jpg",
        "-rw-r--r--   1 photographer root         1000 Dec  5 02:10 plain.jpg",
        "drwxr-xr-x   2 photographer root         4096 Dec  5 02:10 sub dir",
        "-rw-r--r--   1 photographer root         1001 Dec  5 02:10 with space.jpg",
        "-rw-r--r--   1 photographer root         1003 Dec  5 02:10 ünïcødé 写真.jpg",
    ],
    "pureftpd": [
        "-rw-r--r--    1 65534      nogroup          1004 Dec  5 02:10 2024-01-02 10:15AM 123 x.jpg",
        "-rw-r--r--    1 65534      nogroup          1002 Dec  5 02:10 Dec 05 02:00 looks like a date.jpg",
        "-rw-r--r--    1 65534      nogroup          1000 Dec  5 02:10 plain.jpg",
        "drwxr-xr-x    2 0          0                4096 Dec  5 02:10 sub dir",
        "-rw-r--r--    1 65534      nogroup          1001 Dec  5 02:10 with space.jpg",
        "-rw-r--r--    1 65534      nogroup          1003 Dec  5 02:10 ünïcødé 写真.jpg",
    ],
    # IIS's default DOS format (not run here; the layout Microsoft documents for its FTP service).
    "iis": [
        "12-05-26  02:10AM                 1004 2024-01-02 10:15AM 123 x.jpg",
        "12-05-26  02:10AM                 1002 Dec 05 02:00 looks like a date.jpg",
        "12-05-26  02:10AM                 1000 plain.jpg",
        "12-05-26  02:10AM       <DIR>          sub dir",
        "12-05-26  02:10AM                 1001 with space.jpg",
        "12-05-26  02:10AM                 1003 ünïcødé 写真.jpg",
    ],
}


@pytest.mark.parametrize("server", sorted(MLSD))
def test_mlsd_lines_give_every_files_exact_size_and_no_folders(server: str) -> None:
    assert sizes_from_lines(MLSD[server], parse_mlsd_line) == ODD_NAMES


@pytest.mark.parametrize("server", sorted(LIST))
def test_list_lines_give_every_files_exact_size_and_no_folders(server: str) -> None:
    assert sizes_from_lines(LIST[server], parse_list_line) == ODD_NAMES


@pytest.mark.parametrize(
    "line",
    [
        "total 12",
        "lrwxrwxrwx   1 ftp ftp   9 Dec 05 02:10 link.jpg -> plain.jpg",  # a link's size is its target's name
        "-rw-r--r--   1 ftp ftp  1.2M Dec 05 02:10 human.jpg",  # no exact size
        "-rw-r--r--   1 ftp ftp  1000 Déc 05 02:10 localised.jpg",  # a month we cannot read
        "",
    ],
)
def test_list_lines_without_an_exact_size_of_a_file_give_none(line: str) -> None:
    assert parse_list_line(line) is None


@pytest.mark.parametrize(
    "line",
    [
        "type=file;modify=20261205021035; no-size.jpg",
        "type=file;size=12k; odd-size.jpg",
        "type=OS.unix=slink:/x;size=9; link.jpg",
        "size=1000 no-facts-separator.jpg",
    ],
)
def test_mlsd_lines_without_an_exact_size_of_a_file_give_none(line: str) -> None:
    assert parse_mlsd_line(line) is None


def test_a_year_instead_of_a_time_and_an_acl_marker_are_read() -> None:
    line = "-rw-r--r--+  1 owner group   123456 Jan  1  2020 old photo.jpg"
    assert parse_list_line(line) == ("old photo.jpg", 123456)


def test_a_name_listed_twice_with_different_sizes_is_not_trusted() -> None:
    lines = ["type=file;size=10; a.jpg", "type=file;size=20; a.jpg", "type=file;size=5; b.jpg"]
    assert sizes_from_lines(lines, parse_mlsd_line) == {"b.jpg": 5}


def test_feat_with_mlst_means_mlsd() -> None:
    assert offers_mlsd("211-Features:\n MDTM\n MLST type*;size*;modify*;\n SIZE\n211 End")
    assert not offers_mlsd("211-Features:\n MDTM\n SIZE\n211 End")


def _sent(name: str, size: int, hashed: str | None = None) -> PutResult:
    return PutResult(name, size, verified=False, verified_by=hashed, pending=True)


def test_confirm_trusts_only_an_exact_listed_size_and_asks_for_the_others() -> None:
    pending = [_sent(f"f{i}.jpg", 100 + i) for i in range(6)] + [_sent("hashed.jpg", 7, "sha256")]
    listed = {f"f{i}.jpg": 100 + i for i in range(6)} | {"f2.jpg": 1, "hashed.jpg": 7}
    del listed["f4.jpg"]  # taken by the robot, or a name the listing shows differently
    asked: list[str] = []

    def check_one(sent: PutResult) -> PutResult:
        asked.append(sent.remote_name)
        if sent.remote_name == "f2.jpg":
            raise ArrivedShort("f2.jpg arrived with 1 of 102 bytes")
        return PutResult(sent.remote_name, sent.size, verified=True, verified_by="size")

    answers = confirm(pending, lambda: listed, check_one, "test")
    assert asked == ["f2.jpg", "f4.jpg"]
    assert [a.verified_by if isinstance(a, PutResult) else "short" for a in answers] == [
        LISTING,
        LISTING,
        "short",
        LISTING,
        "size",
        LISTING,
        "sha256",  # the server's hash stays the proof; the listing adds the final name
    ]
    assert all(not a.pending for a in answers if isinstance(a, PutResult))


def test_confirm_of_a_few_files_asks_each_and_does_not_list() -> None:
    def never() -> dict[str, int] | None:
        raise AssertionError("a listing costs more round trips than a few SIZEs")

    answers = confirm([_sent("a.jpg", 1)], never, lambda s: PutResult(s.remote_name, 1, True, "size"), "t")
    assert answers == [PutResult("a.jpg", 1, True, "size")]


def test_a_connection_failure_under_confirm_is_raised_not_taken_for_a_short_file() -> None:
    def broken(sent: PutResult) -> PutResult:
        raise TransportError("SIZE timed out", retryable=True)

    with pytest.raises(TransportError, match="timed out"):
        confirm([_sent(f"{i}.jpg", 1) for i in range(5)], lambda: None, broken, "t")
