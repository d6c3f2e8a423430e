"""Copy into a directory: the demo, a NAS, or a staging folder for web-only agencies.

The file is written as ``name.part`` in the target directory, flushed to disk, then renamed with
``os.replace`` (atomic within one file system), so whoever watches the folder never sees half a file
under its final name. The directory entry is flushed too, so a power cut cannot undo the rename.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from loguru import logger

from stockbridge.errors import QuotaError, TransportError
from stockbridge.transports.base import TEMP_SUFFIX, Progress, PutResult, Transport, register
from stockbridge.transports.ftp_replies import check_remote_dir, check_remote_name
from stockbridge.transports.resume import ResumeOffer

_CHUNK = 1024 * 1024
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_DENIED_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


@register("folder")
class FolderTransport(Transport):
    @property
    def _base(self) -> Path:
        if self.settings.path is None:
            raise TransportError(
                f"folder {self.settings.platform}: no path configured",
                hint="set path to the target directory",
                retryable=False,
            )
        return self.settings.path

    @property
    def _directory(self) -> Path:
        check_remote_dir(self.settings.remote_dir)
        parts = [part for part in self.settings.remote_dir.split("/") if part]
        if ".." in parts:
            raise ValueError(f"remote_dir {self.settings.remote_dir!r} must not contain '..'")
        return self._base.joinpath(*parts)

    def connect(self) -> None:
        # The base path itself is never created: if it is a mount point that is not mounted
        # (a NAS that is off), creating it would quietly fill the local disk instead.
        if not self._base.is_dir():
            raise TransportError(
                f"folder {self._base} does not exist or is not a directory",
                hint="create it, or mount the share it belongs to",
                retryable=True,
            )

    def close(self) -> None:
        pass

    @contextmanager
    def _mapped(self, action: str, path: Path) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            if exc.errno in _FULL_ERRNOS:
                raise QuotaError(f"{action} {path}: {exc.strerror}", hint="free space on that disk") from exc
            if exc.errno in _DENIED_ERRNOS:
                # Every file would fail the same way: a problem of the platform, not of the file.
                raise TransportError(
                    f"{action} {path}: {exc.strerror}",
                    hint=f"make {self._directory} writable for the user stockbridge runs as",
                    retryable=False,
                ) from exc
            raise TransportError(f"{action} {path}: {exc.strerror or exc}", retryable=True) from exc

    def mkdirs(self) -> None:
        directory = self._directory
        with self._mapped("creating", directory):
            directory.mkdir(parents=True, exist_ok=True)

    def put(
        self,
        local: Path,
        remote_name: str,
        progress: Progress | None = None,
        resume: ResumeOffer | None = None,  # a local copy is never cut by a line: always whole
        *,
        verify: bool = True,  # a local stat costs nothing: checked at once even when False
    ) -> PutResult:
        check_remote_name(remote_name)
        self.mkdirs()
        final = self._directory / remote_name
        target = final.with_name(remote_name + TEMP_SUFFIX) if self.settings.atomic_rename else final
        # Opened first, outside the mapping: a missing local file is the caller's problem and
        # must not cost the target anything.
        with local.open("rb") as source:
            try:
                with self._mapped("writing", target):
                    sent = _copy(source, target, progress)
                    if target != final:
                        os.replace(target, final)
                        _fsync_directory(final.parent)
            except BaseException:
                _remove_quietly(target)
                raise
        remote_size = self.size(remote_name)
        if remote_size is None:
            # Someone (an ingest job on the NAS) took it already: never copy it again.
            return PutResult(remote_name, sent, verified=False)
        if remote_size != sent:
            _remove_quietly(final)
            raise TransportError(f"{final} has {remote_size} of {sent} bytes", retryable=True)
        return PutResult(remote_name, sent, verified=True, verified_by="size")

    def size(self, remote_name: str) -> int | None:
        check_remote_name(remote_name)
        path = self._directory / remote_name
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TransportError(f"stat {path}: {exc.strerror}", retryable=True) from exc

    def delete(self, remote_name: str) -> None:
        check_remote_name(remote_name)
        _remove_quietly(self._directory / remote_name)


def _copy(source: BinaryIO, target: Path, progress: Progress | None) -> int:
    sent = 0
    with target.open("wb") as sink:
        while block := source.read(_CHUNK):
            sink.write(block)
            sent += len(block)
            if progress is not None:
                progress(sent)
        sink.flush()
        # On disk before the rename: otherwise a crash could leave the final name pointing at
        # an empty or short file.
        os.fsync(sink.fileno())
    return sent


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not possible on every platform / file system (Windows, some network shares)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.debug("could not remove {}: {}", path, exc)
