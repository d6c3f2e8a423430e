"""decisions.md X-10: a hard link in the export folder is not taken (it can be another name for a secret)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from stockbridge.assets.ingest import objects_dir, refusal, stage_release
from stockbridge.errors import InputError


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    return folder


def test_a_hard_link_to_a_file_outside_the_folder_is_refused_with_what_to_do(tmp_path: Path, exports: Path):
    secret = tmp_path / "id_ed25519"
    secret.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    os.link(secret, exports / "x.jpg")
    state = tmp_path / "state"
    with pytest.raises(InputError) as caught:
        stage_release(exports / "x.jpg", state)
    assert refusal(exports / "x.jpg", caught.value) == (
        "has 2 hard links; not taken (a hard link could expose a file from outside the folder)."
        " Export a normal copy, or set [watch] allow_hardlinks = true"
    )
    staged = [p for p in objects_dir(state).rglob("*") if p.is_file()]
    assert staged == [], "not one byte of it was copied"


def test_with_allow_hardlinks_it_is_taken_and_the_copy_is_not_a_link_to_it(tmp_path: Path, exports: Path):
    original = tmp_path / "master.jpg"
    original.write_bytes(b"\xff\xd8\xff photo bytes")
    os.link(original, exports / "x.jpg")
    _sha, size, staged = stage_release(exports / "x.jpg", tmp_path / "state", allow_hardlinks=True)
    assert staged.read_bytes() == original.read_bytes() and size == len(original.read_bytes())
    # stockbridge's own copy is a new file: never a hard link into (or out of) the watch folder.
    assert staged.stat().st_ino != original.stat().st_ino
    assert os.stat(exports / "x.jpg").st_nlink == 2


def test_a_file_with_one_link_is_taken_as_before(tmp_path: Path, exports: Path):
    (exports / "x.jpg").write_bytes(b"\xff\xd8\xff")
    _sha, size, staged = stage_release(exports / "x.jpg", tmp_path / "state")
    assert size == 3 and staged.stat().st_nlink == 1


def test_a_name_swapped_for_a_pipe_after_the_watchers_check_is_refused_without_blocking(
    tmp_path: Path, exports: Path
):
    os.mkfifo(exports / "x.jpg")  # no writer will ever come: a blocking open would hang forever
    outcome: list[BaseException] = []

    def take() -> None:
        try:
            stage_release(exports / "x.jpg", tmp_path / "state")
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=take, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive(), "opening the pipe blocked the ingest thread"
    assert [str(exc) for exc in outcome] == ["x.jpg: not a regular file"]
