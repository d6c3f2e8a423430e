"""``observer = "auto"``: the mount table decides between native events and polling (decisions.md W-12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockbridge.intake.observers import (
    choose_observer,
    filesystem_type,
    is_network_filesystem,
    parse_macos_mount_output,
    parse_mount_table,
)

MOUNTINFO = """\
22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw,errors=remount-ro
25 22 0:23 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
40 22 8:3 / /home rw,relatime shared:29 - ext4 /dev/sda3 rw
61 40 0:52 / /home/me/nas rw,relatime shared:33 master:7 - nfs4 nas:/photos rw,vers=4.2
62 40 0:53 / /home/me/smb\\040share rw,relatime shared:34 - cifs //nas/photos rw,vers=3.1.1
63 40 0:54 / /home/me/remote rw,nosuid,nodev,relatime shared:35 - fuse.sshfs me@host:/srv rw
64 40 0:55 / /home/me/vault rw,nosuid,nodev,relatime shared:36 - fuse.gocryptfs vault rw
"""

PROC_MOUNTS = """\
/dev/sda2 / ext4 rw,relatime 0 0
nas:/photos /mnt/photos nfs rw,vers=3 0 0
"""


def test_mountinfo_lines_give_mount_points_and_types_even_with_optional_fields_and_escapes() -> None:
    entries = parse_mount_table(MOUNTINFO)
    assert ("/", "ext4") in entries
    assert ("/home/me/nas", "nfs4") in entries  # two optional fields before the "-"
    assert ("/home/me/smb share", "cifs") in entries  # \040 is a space
    assert ("/home/me/remote", "fuse.sshfs") in entries
    assert len(entries) == 7


def test_proc_mounts_lines_are_understood_too() -> None:
    assert parse_mount_table(PROC_MOUNTS) == [("/", "ext4"), ("/mnt/photos", "nfs")]


def test_garbage_lines_in_the_mount_table_are_skipped() -> None:
    assert parse_mount_table("\nnonsense\n") == []


def test_the_longest_mount_point_above_a_folder_gives_its_type() -> None:
    mounts = parse_mount_table(MOUNTINFO)
    assert filesystem_type(Path("/home/me/nas/exports/2026"), mounts) == "nfs4"
    assert filesystem_type(Path("/home/me/nas"), mounts) == "nfs4"
    assert filesystem_type(Path("/home/me/nasty"), mounts) == "ext4"  # a prefix of a name is not a parent
    assert filesystem_type(Path("/srv/photos"), mounts) == "ext4"
    assert filesystem_type(Path("/srv"), []) is None


def test_a_later_mount_on_the_same_point_wins() -> None:
    mounts = [("/", "ext4"), ("/mnt", "ext4"), ("/mnt", "nfs")]
    assert filesystem_type(Path("/mnt/x"), mounts) == "nfs"


@pytest.mark.parametrize(
    "fstype", ["nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "fuse.rclone", "sshfs"]
)
def test_network_file_systems_are_recognised(fstype: str) -> None:
    assert is_network_filesystem(fstype)


@pytest.mark.parametrize("fstype", ["ext4", "xfs", "btrfs", "apfs", "tmpfs", "fuse.gocryptfs", "overlay"])
def test_local_file_systems_are_not_taken_for_network_ones(fstype: str) -> None:
    assert not is_network_filesystem(fstype)


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("/home/me/nas/exports", "polling"),
        ("/home/me/smb share/exports", "polling"),
        ("/home/me/remote/exports", "polling"),
        ("/home/me/Pictures/exports", "native"),
        ("/home/me/vault/exports", "native"),
    ],
)
def test_auto_polls_on_network_mounts_and_uses_native_events_on_local_disks(
    folder: str, expected: str
) -> None:
    kind, reason = choose_observer("auto", Path(folder), parse_mount_table(MOUNTINFO))
    assert kind == expected
    assert "auto" in reason


def test_auto_names_the_file_system_type_in_its_reason() -> None:
    _, reason = choose_observer("auto", Path("/home/me/nas/x"), parse_mount_table(MOUNTINFO))
    assert "nfs4" in reason


def test_auto_uses_native_events_when_the_file_system_type_is_unknown() -> None:
    assert choose_observer("auto", Path("/x"), [])[0] == "native"


def test_an_explicit_choice_is_used_whatever_the_mount_table_says() -> None:
    mounts = parse_mount_table(MOUNTINFO)
    assert choose_observer("native", Path("/home/me/nas"), mounts)[0] == "native"
    assert choose_observer("polling", Path("/home/me/Pictures"), mounts)[0] == "polling"


def test_macos_mount_output_gives_mount_points_and_types() -> None:
    output = (
        "/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)\n"
        "//me@nas._smb._tcp.local/photos on /Volumes/photos (smbfs, nodev, nosuid, mounted by me)\n"
        "nas:/export on /Volumes/my export (nfs, asynchronous)\n"
    )
    assert parse_macos_mount_output(output) == [
        ("/", "apfs"),
        ("/Volumes/photos", "smbfs"),
        ("/Volumes/my export", "nfs"),
    ]
