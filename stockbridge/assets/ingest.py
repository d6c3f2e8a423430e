"""Ingest: a settled source file becomes an asset — a private copy, its content hash, its metadata.

The source is read exactly once, through a descriptor opened without following links, and copied
into the state directory while it is hashed. Everything after that (type sniffing, ExifTool, derived
copies, uploads) works on the private copy, so the watch folder is never written to and the bytes
we send are the bytes we hashed. If the source changed while we copied it (an editor still writing),
the copy is discarded and the file goes back to settling.

A file with more than one hard link is refused, on the ``fstat`` of that same descriptor (decisions.md
X-10): a hard link in the export folder can be another name for any file of the same
user on that disk (``~/.ssh/id_ed25519``), and its bytes would be uploaded. ``[watch]
allow_hardlinks = true`` takes them anyway.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from stockbridge.assets import mediatypes
from stockbridge.assets.filetype import sniff
from stockbridge.assets.integrity import StreamCheck, check_file
from stockbridge.assets.vector import VectorProbe
from stockbridge.assets.vector import probe as probe_vector
from stockbridge.assets.video import ClipFacts, ProbeUnavailable, check_structure, probe
from stockbridge.errors import InputError, MetadataError, StockbridgeError
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.metadata.fields import ImageMetadata
from stockbridge.render.pixels import check_decodable
from stockbridge.rules.plan import AssetFacts

_CHUNK = 1024 * 1024


class SourceChanged(StockbridgeError):
    """The source changed while it was being copied: settle it again."""


@dataclass(frozen=True, slots=True)
class Ingested:
    sha256: str
    path: Path  # the source, as found in the watch folder
    size: int
    object_path: Path | None  # private copy in the state dir (None for files we cannot take)
    file_type: str | None
    metadata: ImageMetadata | None
    fingerprint: tuple[int, int, int, int]  # dev, ino, size, mtime_ns of the source when copied
    problem: str | None = None  # why this file cannot be taken at all (not an image, unreadable)
    clip: ClipFacts | None = None  # a video's facts, from ffprobe (assets/video.py)
    vector: VectorProbe | None = None  # a vector's size, level and soundness (assets/vector.py)

    def facts(self) -> AssetFacts:
        facts = _facts(self.file_type, self.size, self.metadata, self.clip)
        if self.vector is None:
            return facts
        return replace(facts, width=self.vector.width, height=self.vector.height, vector=self.vector)


def _facts(
    file_type: str | None, size: int, meta: ImageMetadata | None, clip: ClipFacts | None = None
) -> AssetFacts:
    return AssetFacts(
        file_type=file_type,
        size_bytes=size,
        width=clip.width if clip else meta.width if meta else None,
        height=clip.height if clip else meta.height if meta else None,
        clip=clip,
        title=meta.title if meta else None,
        description=meta.description if meta else None,
        keywords=meta.keywords if meta else (),
        placeholders=meta.placeholders if meta else (),
    )


def _metadata_problem(
    result: ImageMetadata | MetadataError, video: bool = False, vector: VectorProbe | None = None
) -> str | None:
    if isinstance(result, MetadataError):
        what = "clip" if video else "image"
        return f"cannot read the {what}'s metadata ({result.message}); the file may be damaged"
    if vector is not None:
        return vector.problem  # a vector's size comes from its drawing, not from pixels
    if not video and (not result.width or not result.height):
        return "the image has no readable pixel size; the file may be truncated or damaged"
    return None


def _not_an_image(file_type: str | None) -> str:
    what = f"{file_type.upper()} content" if file_type else "unknown content"
    labels = [media.label for media in mediatypes.MEDIA_TYPES]
    expected = ", ".join(labels[:-1]) + f" or {labels[-1]}" if len(labels) > 1 else labels[0]
    return f"not a file stockbridge can take ({what}; expected {expected})"


def objects_dir(state_dir: Path) -> Path:
    return state_dir / "objects"


def refusal(path: Path, exc: StockbridgeError) -> str:
    """The one line a person reads for a file ingest refused: ``name: what. What to do``."""
    message = exc.message.removeprefix(f"{path.name}: ")
    if exc.hint:
        message += f". {exc.hint[:1].upper()}{exc.hint[1:]}"
    return message


def stage_release(path: Path, state_dir: Path, *, allow_hardlinks: bool = False) -> tuple[str, int, Path]:
    """A private copy of a release file (any type): its hash, size and the copy's path."""
    sha256, size, tmp, _fingerprint = _copy_and_hash(path, objects_dir(state_dir), allow_hardlinks)
    suffix = "".join(char for char in path.suffix.lower() if char.isalnum() or char == ".")[:8]
    final = objects_dir(state_dir) / sha256[:2] / f"{sha256}{suffix}"
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    return sha256, size, final


@contextmanager
def staged_briefly(
    path: Path, state_dir: Path, *, allow_hardlinks: bool = False
) -> Iterator[tuple[str, Path]]:
    """A private copy of ``path`` (links refused, as for releases) and its hash, removed on exit.

    For a file only read to make another (a vector's preview: its copy with metadata is what
    travels). It has a name of its own, not ``objects/<sha>``: a photo of the same bytes keeps
    its copy there, and no staged preview is left behind once the copy is made."""
    sha256, _size, tmp, _fingerprint = _copy_and_hash(path, objects_dir(state_dir), allow_hardlinks)
    try:
        yield sha256, tmp
    finally:
        tmp.unlink(missing_ok=True)


def ingest(
    path: Path,
    state_dir: Path,
    exiftool: ExifTool,
    extra_tags: tuple[str, ...] = (),
    *,
    allow_hardlinks: bool = False,
    verify_pixels: bool = True,
) -> Ingested:
    """Copy, hash, sniff and read ``path``. Raises SourceChanged or InputError (not a regular file,
    unreadable, more than one hard link unless ``allow_hardlinks``). The structure is checked in
    the same pass as the hash (``integrity``: a cut-off file is refused without decoding it);
    ``verify_pixels`` also decodes the image in full, else the caller decides whether to
    (decisions.md W-3: ``[watch] verify``, or a render)."""
    structure = StreamCheck()
    sha256, size, object_tmp, fingerprint = _copy_and_hash(
        path, objects_dir(state_dir), allow_hardlinks, structure
    )
    try:
        file_type = sniff(object_tmp)
        media = mediatypes.get(file_type)
        if media is None:
            return Ingested(sha256, path, size, None, file_type, None, fingerprint, _not_an_image(file_type))
        file_type = media.name
        final = objects_dir(state_dir) / sha256[:2] / f"{sha256}{media.extension}"
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(object_tmp, final)
    finally:
        if object_tmp.exists():
            object_tmp.unlink()
    # A vector is checked before ExifTool sees it: a refused one (hostile, cut off) is not read.
    vector = probe_vector(final, file_type) if media.kind == mediatypes.VECTOR else None
    if vector is not None and vector.problem is not None:
        return Ingested(
            sha256, path, size, final, file_type, None, fingerprint, vector.problem, vector=vector
        )
    result = exiftool.read([final], extra_tags=extra_tags)[final]
    metadata = None if isinstance(result, MetadataError) else result
    if media.kind == "video":
        clip, problem = _probe(final, path, file_type, structure.problem, result)
        return Ingested(sha256, path, size, final, file_type, metadata, fingerprint, problem, clip)
    problem = (
        structure.problem
        or _metadata_problem(result, vector=vector)
        or (check_decodable(final, file_type, name=path.name) if verify_pixels and vector is None else None)
    )
    return Ingested(sha256, path, size, final, file_type, metadata, fingerprint, problem, vector=vector)


def inspect(
    path: Path,
    exiftool: ExifTool,
    extra_tags: tuple[str, ...] = (),
    *,
    allow_hardlinks: bool = False,
    decode: bool = True,
) -> Ingested:
    """``ingest`` without the copy, for ``explain``: reads the source in place, read-only. Refuses
    what ``ingest`` refuses (a link, a pipe, a hard-linked file), with the same words. The
    structure is always checked; ``decode`` also decodes the image in full."""
    st = os.stat(path, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        raise InputError(f"{path.name}: a symbolic link, never followed; copy the photo in")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path.name}: not a regular file")
    if st.st_nlink > 1 and not allow_hardlinks:
        raise _hard_links(path, st.st_nlink)
    fingerprint = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    file_type = sniff(path)
    media = mediatypes.get(file_type)
    if media is None:
        return Ingested("", path, st.st_size, None, file_type, None, fingerprint, _not_an_image(file_type))
    file_type = media.name
    absolute = path.resolve()
    vector = probe_vector(absolute, file_type) if media.kind == mediatypes.VECTOR else None
    if vector is not None and vector.problem is not None:
        return Ingested(
            "", absolute, st.st_size, absolute, file_type, None, fingerprint, vector.problem, vector=vector
        )
    result = exiftool.read([absolute], extra_tags=extra_tags)[absolute]
    metadata = None if isinstance(result, MetadataError) else result
    if media.kind == "video":
        clip, problem = _probe(absolute, path, file_type, check_structure(absolute, file_type), result)
        return Ingested("", absolute, st.st_size, absolute, file_type, metadata, fingerprint, problem, clip)
    problem = (
        check_file(absolute)
        or _metadata_problem(result, vector=vector)
        or (check_decodable(absolute, file_type, name=path.name) if decode and vector is None else None)
    )
    return Ingested(
        "", absolute, st.st_size, absolute, file_type, metadata, fingerprint, problem, vector=vector
    )


def _probe(
    copy: Path, source: Path, file_type: str, structure: str | None, result: ImageMetadata | MetadataError
) -> tuple[ClipFacts | None, str | None]:
    """A clip's facts from ffprobe, or why it cannot be taken: its boxes first (a cut-off copy is
    named by its size), then ffprobe's answer. No ffprobe on the machine: InputError, so the clip is
    listed as not taken with the fix, and is looked at again at the next scan."""
    if structure is not None:
        return None, structure
    try:
        answer = probe(copy, file_type)
    except ProbeUnavailable as exc:
        raise InputError(f"{source.name}: cannot look at a clip: {exc}") from None
    if isinstance(answer, str):
        return None, answer
    return answer, _metadata_problem(result, video=True)


def _hard_links(path: Path, links: int) -> InputError:
    return InputError(
        f"{path.name}: has {links} hard links; not taken (a hard link could expose a file from outside"
        " the folder)",
        hint="export a normal copy, or set [watch] allow_hardlinks = true",
    )


def _reader(fd: int) -> Callable[[int, int], bytes]:
    """``read_at(offset, length)`` on ``fd`` (``os.pread`` where there is one: not on Windows)."""
    if hasattr(os, "pread"):
        return lambda offset, length: os.pread(fd, length, offset)

    def read_at(offset: int, length: int) -> bytes:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, length)

    return read_at


def _copy_and_hash(
    path: Path, into: Path, allow_hardlinks: bool, structure: StreamCheck | None = None
) -> tuple[str, int, Path, tuple[int, int, int, int]]:
    """Copy ``path`` into ``into`` while hashing it; ``structure`` (if given) is fed the same
    blocks and finished on the copy, so the file is read once for all three."""
    into.mkdir(parents=True, exist_ok=True)
    # O_NONBLOCK: a name swapped for a FIFO after the watcher's lstat must not block this thread
    # waiting for a writer; the fstat below then refuses it.
    flags = (
        os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    )
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SourceChanged(f"{path.name}: vanished before it could be read") from None
    except OSError as exc:
        raise InputError(
            f"{path.name}: cannot open ({exc.strerror})", hint="check the file's permissions"
        ) from None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise InputError(f"{path.name}: not a regular file")
        if before.st_nlink > 1 and not allow_hardlinks:
            # The fd's own inode, so swapping the name for a link after a stat cannot get past it.
            raise _hard_links(path, before.st_nlink)
        digest = hashlib.sha256()
        out_fd, tmp_name = tempfile.mkstemp(prefix=".ingest-", dir=into)
        size = 0
        try:
            with os.fdopen(out_fd, "wb") as out:
                while chunk := os.read(fd, _CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    if structure is not None:
                        structure.feed(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
                if structure is not None:
                    # mkstemp's descriptor is open for reading too: structure the blocks it kept
                    # do not hold (a TIFF directory mid-file) is read back from the copy.
                    structure.finish(_reader(out.fileno()))
        except BaseException:
            os.unlink(tmp_name)
            raise
        after = os.fstat(fd)
    finally:
        os.close(fd)
    before_print = (before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns)
    after_print = (after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns)
    if before_print != after_print or size != after.st_size:
        os.unlink(tmp_name)
        raise SourceChanged(f"{path.name}: changed while it was being read; waiting for it to settle again")
    return digest.hexdigest(), size, Path(tmp_name), after_print
