"""The page's thumbnails are made in the background (issue 16: they never slow an upload), from a
hard link that outlives the private copy, and a run that ends first leaves them for the next start."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from stockbridge.render.thumbnail import SIZE, ThumbnailMaker, thumb_path

SHA = "ab" * 32


def photo(path: Path, size: tuple[int, int] = (1200, 800)) -> Path:
    Image.new("RGB", size, (200, 120, 40)).save(path, "JPEG")
    return path


def test_the_thumbnail_is_made_after_the_copy_is_already_gone(tmp_path: Path) -> None:
    state = tmp_path / "state"
    copy = photo(tmp_path / "object.jpg")
    maker = ThumbnailMaker(state)
    maker.start()  # the page is served
    maker.later(SHA, copy, "jpeg")
    copy.unlink()  # a fast upload released the private copy at once
    maker.close()
    with Image.open(thumb_path(state, SHA)) as made:
        assert max(made.size) == SIZE
    assert not any(maker.pending_dir.iterdir())  # its link is gone too


def test_a_run_that_ends_first_leaves_the_thumbnail_to_the_next_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = ThumbnailMaker(state)
    first.pending_dir.mkdir(parents=True)
    photo(first.pending_dir / f"{SHA}.jpeg")  # what `later` leaves when the process dies
    assert not thumb_path(state, SHA).exists()
    second = ThumbnailMaker(state)
    second.start()
    second.later("cd" * 32, photo(tmp_path / "next.jpg"), "jpeg")
    second.close()
    assert thumb_path(state, SHA).is_file()
    assert thumb_path(state, "cd" * 32).is_file()


def test_types_without_pixels_and_unreadable_files_get_none_and_nothing_is_left(tmp_path: Path) -> None:
    state = tmp_path / "state"
    maker = ThumbnailMaker(state)
    maker.start()
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 64)
    maker.later(SHA, clip, "mp4")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really")
    maker.later("cd" * 32, broken, "jpeg")
    maker.close()
    assert not thumb_path(state, SHA).exists()
    assert not thumb_path(state, "cd" * 32).exists()
    assert not any(maker.pending_dir.iterdir())


def test_without_the_page_nothing_is_linked_or_started(tmp_path: Path) -> None:
    # `once`, or `run` with [web] listen = "": no child, and no link that would keep a copy's bytes
    maker = ThumbnailMaker(tmp_path / "state")
    maker.later(SHA, photo(tmp_path / "object.jpg"), "jpeg")
    maker.close()
    assert not maker.pending_dir.exists()
    assert not thumb_path(tmp_path / "state", SHA).exists()
