"""Image metadata through one long-lived ExifTool process: read what a file says, write what agencies read.

``ExifTool`` wraps pyexiftool's ``ExifToolHelper`` (one ``exiftool -stay_open`` process, reused for
every call, ~12 ms per file read instead of ~180 ms for a process per file: decisions.md M-2) and
adds what pyexiftool 0.5.6 lacks:

- **A hard timeout on every call** (decisions.md E-1). pyexiftool reads until a ``{ready}`` sentinel with no
  timeout and does not notice EOF. A watchdog thread kills the process group when the deadline
  passes (or as soon as exiftool dies), makes the blocked read fail, and the call is retried once
  on a fresh process before it fails with a :class:`MetadataError` naming the file.
- **No argument injection** (decisions.md E-2). pyexiftool sends arguments joined by newlines, one per line of
  ExifTool's ``-@`` argfile, so a keyword ``"sunset\\n-all="`` would become a second argument that
  wipes the file. Every value and path containing CR, LF or NUL is refused, tag names come from an
  allowlist, and files are passed as absolute paths, which cannot start with ``-``.
- **UTF-8 everywhere** (decisions.md E-4): arguments are encoded as UTF-8 whatever the locale (systemd often
  runs services under ``C``), and every IPTC write also sets ``IPTC:CodedCharacterSet=UTF8``. IPTC
  values over their byte limit are cut at a character boundary here (decisions.md E-5), because ExifTool cuts
  them mid-character and leaves invalid UTF-8.
- **One bad file is one error** (decisions.md E-6, E-8): reads go in batches of up to 100 files; if a batch
  fails, its files are read one by one, and each unreadable file gets its own MetadataError.
- **Thread safety** (decisions.md E-7): one lock around every call; the process starts in its own session and
  with a pre-resolved ``prctl`` instead of pyexiftool's ``preexec_fn`` that dlopens libc in the
  forked child (pyexiftool#102); it is recycled every 500 calls, as exiftool-vendored does.
- ``-config ""`` so no ``.ExifTool_config`` (which is Perl code) is ever loaded (decisions.md E-3), and the
  process runs in a directory of the caller's choosing, never the watch folder.

This module is the session (calls, timeouts, retries, restarts); the rest of the work lives beside
it: :mod:`~stockbridge.metadata.process` (the process and its watchdog),
:mod:`~stockbridge.metadata.arguments` (what may be sent: refused line breaks, writable tags, IPTC
byte limits) and :mod:`~stockbridge.metadata.fields` (ExifTool's answers turned into
:class:`~stockbridge.metadata.fields.ImageMetadata`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from exiftool.exceptions import ExifToolException, ExifToolExecuteError
from loguru import logger

from stockbridge.errors import MetadataError
from stockbridge.metadata.arguments import _assignments, _file_argument, _refuse_line_breaks
from stockbridge.metadata.fields import (
    _EXTRA_TAG,
    _READ_ARGS,
    ImageMetadata,
    _entries_by_source,
    _extra_args,
    _first_error_line,
    _metadata_from,
    _positive_int,
    _warning_lines,
)
from stockbridge.metadata.process import (
    _INSTALL_HINT,
    _guarded,
    _Hung,
    _resolve_executable,
    _StartError,
    _StayOpenProcess,
)

#: Seconds one exiftool call may take. Reading a 100-file batch takes ~1.5 s and writing 50
#: keywords into a 24 MP file ~65 ms (decisions.md M-2): a minute means the process is stuck (decisions.md E-1).
DEFAULT_TIMEOUT = 60.0
#: Seconds for exiftool to start and answer ``-ver`` (~150 ms normally; decisions.md E-1 and
#: exiftool-vendored's ``spawnTimeoutMillis`` both use 30 s to survive a cold disk cache on a busy NAS).
DEFAULT_START_TIMEOUT = 30.0
#: Calls served by one process before it is replaced: exiftool-vendored's ``maxTasksPerProcess``
#: (500), which bounds the memory a long-lived Perl process accumulates.
DEFAULT_RECYCLE_AFTER = 500
#: Files per read call (decisions.md E-8): large enough to amortise the per-call cost, small enough that a
#: batch that has to be re-read file by file stays short.
DEFAULT_BATCH_SIZE = 100

#: ExifTool writes into ``<file>_exiftool_tmp`` and renames it over the file (/usr/bin/exiftool,
#: ``$outfile = "${file}_exiftool_tmp"``); a killed write leaves it behind and the next write of
#: that file then fails with "Temporary file already exists".
_TEMP_SUFFIX = "_exiftool_tmp"

#: ``copy_metadata``: tags that describe the source's pixels, not the picture, so a derived copy must
#: not inherit them. ICC_Profile and IPTC:CodedCharacterSet are "unsafe" and never copied by
#: ``-all`` (html/TagNames/*.html); EXIF IFD0 image-structure tags are not copied either (checked).
_NOT_COPIED = (
    "IFD1:all",  # the EXIF thumbnail: the old crop, orientation and colours
    "Photoshop:PhotoshopThumbnail",
    "XMP-tiff:BitsPerSample",
    "XMP-tiff:Compression",
    "XMP-tiff:PhotometricInterpretation",
    "XMP-tiff:SamplesPerPixel",
    "XMP-tiff:PlanarConfiguration",
    "XMP-tiff:YCbCrSubSampling",
)
#: ``copy_metadata``: tags made true of the copy when the source has them (never created).
_ORIENTATION_TAGS = ("IFD0:Orientation", "XMP-tiff:Orientation")
_WIDTH_TAGS = ("ExifIFD:ExifImageWidth", "XMP-exif:ExifImageWidth", "XMP-tiff:ImageWidth")
_HEIGHT_TAGS = ("ExifIFD:ExifImageHeight", "XMP-exif:ExifImageHeight", "XMP-tiff:ImageHeight")
_COLOUR_SPACE_TAGS = ("ExifIFD:ColorSpace", "XMP-exif:ColorSpace")  # 1 = sRGB (EXIF 2.3)
_COPY_READ_TAGS = (
    *_ORIENTATION_TAGS,
    *_WIDTH_TAGS,
    *_HEIGHT_TAGS,
    *_COLOUR_SPACE_TAGS,
    "XMP-photoshop:ICCProfileName",
    "XMP-photoshop:ColorMode",
    "InteropIFD:InteropIndex",
    "IPTC:all",
    "File:ImageWidth",
    "File:ImageHeight",
    "File:ColorComponents",
    "ICC_Profile:ProfileDescription",
)


class ExifTool:
    """One ``exiftool -stay_open`` process, safe to share between threads.

    ``cwd`` is the directory exiftool runs in (a private temporary one if not given; never the
    watch folder). Use as a context manager, or call :meth:`start` and :meth:`close`; a call
    made before :meth:`start` starts the process itself.
    """

    def __init__(
        self,
        cwd: Path | None = None,
        *,
        executable: str | Path = "exiftool",
        timeout: float = DEFAULT_TIMEOUT,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        recycle_after: int = DEFAULT_RECYCLE_AFTER,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if timeout <= 0 or start_timeout <= 0 or recycle_after < 1 or batch_size < 1:
            raise ValueError("timeouts must be positive, recycle_after and batch_size at least 1")
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.recycle_after = recycle_after
        self.batch_size = batch_size
        self._executable = executable
        self._cwd = cwd
        self._own_cwd: Path | None = None
        self._lock = threading.RLock()
        self._process: _StayOpenProcess | None = None
        self._calls = 0  # calls served by the current process
        self._answered = False  # the current process has answered ``-ver`` (see spawn)
        self._niceness = 0  # added to the niceness of each process started (set_niceness)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start exiftool now (idempotent) and wait until it answers. Raises MetadataError if it
        is missing or does not answer. After :meth:`spawn` it only waits for the answer."""
        with self._lock:
            process = self._process
            retry = True
            if process is not None and process.alive():
                if self._answered:
                    return
                try:
                    self._handshake(process)
                    return
                except _Hung:
                    retry = False  # that was the first attempt: one fresh start below
            self._abandon()
            try:
                self._start(retry=retry)
            except _Hung as hung:
                raise _StartError(f"ExifTool {hung.reason}", hint=_INSTALL_HINT) from None

    def spawn(self) -> None:
        """Start the exiftool process without waiting for it (idempotent): Perl loads ExifTool
        (~60 ms of CPU) while the caller does other start-up work, e.g. imports on the other core.
        :meth:`start`, or the first call, then waits for its ``-ver`` answer under the start
        timeout, as a plain start does. Raises MetadataError only when it cannot be executed
        (missing). The process is tied to the calling thread (see ``process._parent_death_signal``):
        call it from a thread that lives as long as the tool, such as the main thread."""
        with self._lock:
            if self._process is not None and self._process.alive():
                return
            self._abandon()
            self._spawn(_resolve_executable(self._executable), self._working_dir())

    def set_niceness(self, niceness: int) -> None:
        """Run exiftool at this niceness (Linux, POSIX), the running process and every later one:
        the prepare workers' metadata reads yield the CPU to uploads as their own work does."""
        with self._lock:
            self._niceness = niceness
            if self._process is not None and self._process.alive():
                self._process.set_niceness(niceness)

    def close(self) -> None:
        """Stop exiftool (asks it to exit, kills it after 5 s). Idempotent, never raises."""
        with self._lock:
            self._stop()
            if self._own_cwd is not None:
                shutil.rmtree(self._own_cwd, ignore_errors=True)
                self._own_cwd = None

    def __enter__(self) -> ExifTool:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The process id of the running exiftool, if any (for diagnostics and tests)."""
        process = self._process
        return process.pid if process is not None and process.alive() else None

    # ------------------------------------------------------------------ reading

    def read(
        self, paths: Sequence[Path], extra_tags: Sequence[str] = ()
    ) -> dict[Path, ImageMetadata | MetadataError]:
        """Metadata of each file, or the MetadataError that says why it could not be read.

        Never raises for a single file's problem: the answer holds one entry per distinct path,
        keyed by the path objects given, in their order. Raises MetadataError only when ExifTool
        itself cannot be started (missing, or not answering), which is no file's fault.

        ``extra_tags`` ("XMP-photoshop:Instructions", "IPTC:SpecialInstructions", ...) are read
        into ``ImageMetadata.extra``; a family-0 group ("XMP:Instructions", "EXIF:Artist") matches
        the tag in any of its family-1 groups. Raises ValueError for a name that is not
        ``GROUP:TAG`` (letters, digits, "-"; each part starting with a letter).
        """
        extra = tuple(dict.fromkeys(extra_tags))
        for tag in extra:
            if not isinstance(tag, str) or not _EXTRA_TAG.fullmatch(tag):
                raise ValueError(f"not a tag name like XMP-photoshop:Instructions: {tag!r}")
        results: dict[Path, ImageMetadata | MetadataError] = {}
        pending: list[tuple[Path, bytes]] = []
        for path in dict.fromkeys(paths):
            try:
                argument = _file_argument(path)
            except MetadataError as exc:
                results[path] = exc
                continue
            if not os.path.isfile(argument):
                what = "is a folder, not a file" if os.path.isdir(argument) else "does not exist"
                results[path] = MetadataError(f"cannot read metadata of {path.name}: it {what}")
                continue
            pending.append((path, argument))
        for start in range(0, len(pending), self.batch_size):
            results.update(self._read_batch(pending[start : start + self.batch_size], extra))
        return {path: results[path] for path in dict.fromkeys(paths)}

    def _read_batch(
        self, batch: Sequence[tuple[Path, bytes]], extra: Sequence[str] = ()
    ) -> dict[Path, ImageMetadata | MetadataError]:
        if len(batch) == 1:
            path, argument = batch[0]
            return {path: self._read_one(path, argument, extra)}
        try:
            # No retry here: if the batch hangs, the per-file reads below find the culprit and
            # retry only that file.
            output, _ = self._call(
                [*_READ_ARGS, *_extra_args(extra), *(argument for _, argument in batch)],
                "a batch",
                retry=False,
            )
            entries = _entries_by_source(output)
        except _StartError:
            raise
        except (MetadataError, ExifToolExecuteError, ValueError) as exc:
            logger.debug("ExifTool batch of {} files failed ({}); reading them one by one", len(batch), exc)
            entries = {}
        results: dict[Path, ImageMetadata | MetadataError] = {}
        for path, argument in batch:
            entry = entries.get(os.fsdecode(argument))
            if entry is None or "ExifTool:Error" in entry:
                results[path] = self._read_one(path, argument, extra)
            else:
                results[path] = _metadata_from(entry, extra)
        return results

    def _read_one(
        self, path: Path, argument: bytes, extra: Sequence[str] = ()
    ) -> ImageMetadata | MetadataError:
        try:
            output, _ = self._call([*_READ_ARGS, *_extra_args(extra), argument], path.name, retry=True)
            entry = _entries_by_source(output).get(os.fsdecode(argument))
        except _StartError:
            raise
        except MetadataError as exc:
            return exc
        except ExifToolExecuteError as exc:
            try:
                entry = _entries_by_source(exc.stdout).get(os.fsdecode(argument))
            except ValueError:
                entry = None
            reason = (
                (entry or {}).get("ExifTool:Error")
                or _first_error_line(exc.stderr)
                or f"status {exc.returncode}"
            )
            return MetadataError(
                f"ExifTool cannot read {path.name}: {reason}", hint="the file may be damaged"
            )
        except ValueError as exc:  # invalid JSON, or output that is not UTF-8
            return MetadataError(f"ExifTool gave an unreadable answer for {path.name}: {exc}")
        if entry is None:
            return MetadataError(f"ExifTool returned nothing for {path.name}")
        if "ExifTool:Error" in entry:
            return MetadataError(f"ExifTool cannot read {path.name}: {entry['ExifTool:Error']}")
        return _metadata_from(entry, extra)

    # ------------------------------------------------------------------ writing

    def write(self, path: Path, tags: Mapping[str, str | Sequence[str]]) -> tuple[str, ...]:
        """Write ``tags`` into ``path`` in place (no ``_original`` backup is kept).

        A string value sets the tag; a sequence sets a list tag to exactly those items (empty
        items skipped); an empty string or sequence deletes the tag. Only callers' private copies
        may be passed: the file is rewritten. Returns the warnings (ours and ExifTool's, also
        logged at DEBUG) for the caller to record. Raises MetadataError for a refused tag or value, or a failed write.
        """
        argument = _file_argument(path)
        if not os.path.isfile(argument):
            raise MetadataError(f"cannot write metadata into {path.name}: it is not a file")
        assignments, warnings = _assignments(path.name, tags)
        if any(assignment.startswith("-IPTC:") for assignment in assignments):
            # IPTC strings are read as Latin-1/cp1252 unless this says UTF-8 (ExifTool FAQ, html/faq.html).
            assignments.insert(0, "-IPTC:CodedCharacterSet=UTF8")
        temp = Path(os.fsdecode(argument) + _TEMP_SUFFIX)
        try:
            output, stderr = self._call(
                ["-overwrite_original", *assignments, argument],
                path.name,
                retry=True,
                before_retry=lambda: temp.unlink(missing_ok=True),
            )
        except ExifToolExecuteError as exc:
            reason = _first_error_line(exc.stderr) or f"status {exc.returncode}"
            raise MetadataError(f"ExifTool could not write {path.name}: {reason}") from exc
        except MetadataError:
            temp.unlink(missing_ok=True)
            raise
        if "1 image files updated" not in output and "1 image files unchanged" not in output:
            reason = _first_error_line(stderr) or output.strip() or "nothing was written"
            raise MetadataError(f"ExifTool did not write {path.name}: {reason}")
        warnings.extend(_warning_lines(stderr))
        for warning in warnings:
            logger.debug("{}: {}", path.name, warning)
        return tuple(warnings)

    def copy_metadata(self, source: Path, target: Path) -> tuple[str, ...]:
        """Carry every metadata field of ``source`` over to ``target``, a derived copy, in place.

        ``-tagsFromFile SOURCE -all:all`` copies EXIF, GPS, IPTC, XMP, maker notes, ... each into
        its own group. Then what described the source's pixels is made true of the copy: the copy
        keeps its own ICC profile (ExifTool never copies ICC_Profile with ``-all``); orientation
        tags say 1 (the pixels are upright); width/height tags hold the copy's size; colour-space
        tags say sRGB when the copy's profile is sRGB; thumbnails and XMP-tiff structure tags are
        not copied. Tags the source lacks are not created. IPTC is written as UTF-8. Only callers'
        private copies may be passed as ``target``; ``source`` is only read. Returns ExifTool's
        warnings; raises MetadataError when the copy fails.
        """
        source_argument, target_argument = _file_argument(source), _file_argument(target)
        for path, argument in ((source, source_argument), (target, target_argument)):
            if not os.path.isfile(argument):
                raise MetadataError(f"cannot copy metadata with {path.name}: it is not a file")
        if os.path.samefile(source_argument, target_argument):
            raise MetadataError(f"refused to copy metadata of {source.name} onto itself")
        try:
            output, _ = self._call(
                [
                    "-j",
                    "-G1",
                    "-n",
                    *(f"-{tag}" for tag in _COPY_READ_TAGS),
                    source_argument,
                    target_argument,
                ],
                source.name,
                retry=True,
            )
            entries = _entries_by_source(output)
        except ExifToolExecuteError as exc:
            reason = _first_error_line(exc.stderr) or f"status {exc.returncode}"
            raise MetadataError(f"ExifTool cannot read {source.name} or {target.name}: {reason}") from exc
        except ValueError as exc:
            raise MetadataError(f"ExifTool gave an unreadable answer for {source.name}: {exc}") from exc
        found = entries.get(os.fsdecode(source_argument), {})
        copy = entries.get(os.fsdecode(target_argument), {})
        width, height = (
            _positive_int(copy.get("File:ImageWidth")),
            _positive_int(copy.get("File:ImageHeight")),
        )
        if not width or not height:
            raise MetadataError(f"ExifTool cannot tell the pixel size of {target.name}")

        fixes: dict[str, object] = {tag: 1 for tag in _ORIENTATION_TAGS}
        fixes.update({tag: width for tag in _WIDTH_TAGS})
        fixes.update({tag: height for tag in _HEIGHT_TAGS})
        profile = str(copy.get("ICC_Profile:ProfileDescription") or "").strip()
        if "srgb" in profile.lower():
            fixes.update({tag: 1 for tag in _COLOUR_SPACE_TAGS})
            fixes["XMP-photoshop:ICCProfileName"] = profile
            if found.get("InteropIFD:InteropIndex") == "R03":  # R03 = Adobe RGB (DCF 2.0)
                fixes["InteropIFD:InteropIndex"] = "R98"
        components = {"1": 1, "3": 3, "4": 4}.get(str(copy.get("File:ColorComponents")))
        if components is not None:  # Photoshop ColorMode: 1 grayscale, 3 RGB, 4 CMYK
            fixes["XMP-photoshop:ColorMode"] = components
        assignments = [f"-{tag}#={value}" for tag, value in fixes.items() if tag in found]
        for assignment in assignments:
            _refuse_line_breaks(assignment, f"the value {assignment!r}")
        if any(tag.startswith("IPTC:") for tag in found):
            # CodedCharacterSet is "unsafe" (not copied): without it, IPTC is written as Latin-1
            # and 東京 becomes "??" (decisions.md E-4). ExifTool transcodes a Latin-1 source's values
            # itself.
            assignments.insert(0, "-IPTC:CodedCharacterSet=UTF8")

        temp = Path(os.fsdecode(target_argument) + _TEMP_SUFFIX)
        try:
            output, stderr = self._call(
                [
                    "-overwrite_original",
                    "-tagsFromFile",
                    source_argument,
                    "-all:all",
                    *(f"--{tag}" for tag in _NOT_COPIED),
                    *assignments,
                    target_argument,
                ],
                target.name,
                retry=True,
                before_retry=lambda: temp.unlink(missing_ok=True),
            )
        except ExifToolExecuteError as exc:
            reason = _first_error_line(exc.stderr) or f"status {exc.returncode}"
            raise MetadataError(f"ExifTool could not copy metadata into {target.name}: {reason}") from exc
        except MetadataError:
            temp.unlink(missing_ok=True)
            raise
        if "1 image files updated" not in output and "1 image files unchanged" not in output:
            reason = _first_error_line(stderr) or output.strip() or "nothing was written"
            raise MetadataError(f"ExifTool did not copy metadata into {target.name}: {reason}")
        # "No writable tags set from SOURCE" only says the source had no metadata to carry.
        warnings = tuple(line for line in _warning_lines(stderr) if not line.startswith("No writable tags"))
        for warning in warnings:
            logger.debug("{}: {}", target.name, warning)
        return warnings

    # ------------------------------------------------------------------ the guarded call

    def _call(
        self,
        params: Sequence[str | bytes],
        subject: str,
        *,
        retry: bool,
        before_retry: Callable[[], None] | None = None,
    ) -> tuple[str, str]:
        """Run one exiftool command under the watchdog: its stdout and stderr.

        On a hang, restart exiftool and (if ``retry``) try once more. ExifToolExecuteError (a
        complete answer with a non-zero status) passes through; anything else that interrupts a
        call leaves the pipes out of step, so the process is replaced.
        """
        with self._lock:
            attempts = 2 if retry else 1
            for attempt in range(1, attempts + 1):
                try:
                    process = self._ready_process()
                except _Hung as hung:
                    self._abandon()
                    if attempt == attempts:
                        raise _StartError(f"ExifTool {hung.reason}", hint=_INSTALL_HINT) from None
                    continue
                try:
                    self._calls += 1
                    stdout = _guarded(process, params, self.timeout)
                    return str(stdout), str(process.last_stderr or "")
                except ExifToolExecuteError:
                    raise
                except _Hung as hung:
                    self._abandon()
                    if attempt == attempts:
                        raise MetadataError(
                            f"ExifTool {hung.reason} while working on {subject}; gave up after "
                            f"{attempts} attempt{'s' if attempts > 1 else ''}",
                            hint="the file may be damaged or exotic; other files are not affected",
                        ) from None
                    logger.warning(
                        "ExifTool {} while working on {}; restarting it, trying once more",
                        hung.reason,
                        subject,
                    )
                    if before_retry is not None:
                        before_retry()
                except BaseException:
                    self._abandon()
                    raise
            raise AssertionError("unreachable")  # pragma: no cover

    def _ready_process(self) -> _StayOpenProcess:
        process = self._process
        if process is not None and process.alive() and self._calls >= self.recycle_after:
            logger.debug("ExifTool served {} calls; replacing it (pid {})", self._calls, process.pid)
            self._stop()
            process = None
        if process is None or not process.alive():
            if process is not None:
                logger.warning("ExifTool (pid {}) exited on its own; starting a new one", process.pid)
                self._abandon()
            self._start(retry=False)
        elif not self._answered:  # spawned ahead (spawn): its first call waits for its answer
            self._handshake(process)
        assert self._process is not None
        return self._process

    def _start(self, *, retry: bool) -> None:
        executable = _resolve_executable(self._executable)
        cwd = self._working_dir()
        for attempt in (1, 2) if retry else (1,):
            process = self._spawn(executable, cwd)
            try:
                self._handshake(process)
            except _Hung:
                if attempt == 2 or not retry:
                    raise
                continue
            return

    def _spawn(self, executable: str, cwd: Path) -> _StayOpenProcess:
        process = _StayOpenProcess(executable, cwd)
        try:
            process.run()
        except OSError as exc:
            raise _StartError(f"cannot start ExifTool ({exc})", hint=_INSTALL_HINT) from exc
        self._process, self._calls, self._answered = process, 0, False
        if self._niceness:
            process.set_niceness(self._niceness)
        return process

    def _handshake(self, process: _StayOpenProcess) -> None:
        """Wait for ``-ver``'s answer: exiftool runs and is ExifTool. On a hang or death it is
        abandoned and _Hung raised; anything else that is not ExifTool raises _StartError."""
        try:
            version = str(_guarded(process, ["-ver"], self.start_timeout)).strip()
        except _Hung as hung:
            self._abandon()
            raise _Hung(f"did not start ({hung.reason})") from None
        except (ExifToolException, ValueError) as exc:
            self._abandon()
            raise _StartError(
                f"{process.executable} does not behave like ExifTool ({exc})", hint=_INSTALL_HINT
            ) from exc
        process.set_version(version)
        self._answered = True
        logger.debug("ExifTool {} started (pid {}, cwd {})", version, process.pid, process.cwd)

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.stop(grace=5.0)

    def _abandon(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.abandon()

    def _working_dir(self) -> Path:
        if self._cwd is not None:
            return Path(self._cwd).absolute()
        if self._own_cwd is None:
            self._own_cwd = Path(tempfile.mkdtemp(prefix="stockbridge-exiftool-"))
        return self._own_cwd
