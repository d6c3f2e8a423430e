"""Image metadata through one long-lived ExifTool process: read what a file says, write what agencies read.

``ExifTool`` wraps pyexiftool's ``ExifToolHelper`` (one ``exiftool -stay_open`` process, reused for
every call, ~12 ms per file read instead of ~180 ms for a process per file: research/perf.md §2) and
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
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from exiftool import ExifToolHelper
from exiftool.exceptions import ExifToolException, ExifToolExecuteError
from loguru import logger

from stockbridge.errors import MetadataError

#: Seconds one exiftool call may take. Reading a 100-file batch takes ~1.5 s and writing 50
#: keywords into a 24 MP file ~65 ms (perf.md §2): a minute means the process is stuck (decisions.md E-1).
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

#: How often the watchdog looks at the process while a call runs. It bounds how long a call
#: spins after exiftool died on its own (pyexiftool busy-loops on EOF, pyexiftool#81).
_WATCH_INTERVAL = 0.1
#: ExifTool writes into ``<file>_exiftool_tmp`` and renames it over the file (/usr/bin/exiftool,
#: ``$outfile = "${file}_exiftool_tmp"``); a killed write leaves it behind and the next write of
#: that file then fails with "Temporary file already exists".
_TEMP_SUFFIX = "_exiftool_tmp"
_FORBIDDEN_CHARACTERS = ("\r", "\n", "\0")

# Read priority, first non-empty wins (design.md "Metadata"). Tags are requested and matched by
# their family-1 group (-G1), so XMP and IPTC values never shadow each other. EXIF:ImageDescription
# lives in IFD0, which is what -G1 calls it.
TITLE_TAGS = ("XMP-dc:Title", "IPTC:ObjectName", "IPTC:Headline")
DESCRIPTION_TAGS = ("XMP-dc:Description", "IPTC:Caption-Abstract", "IFD0:ImageDescription")
KEYWORD_TAGS = ("XMP-dc:Subject", "IPTC:Keywords")
# Releases (design.md "Metadata"). With -n, ExifTool gives the PLUS status as its code ("MR-NON",
# "MR-NAP", "MR-UMR", "MR-LMR"; "PR-..." likewise), the vocabulary URI prefix stripped
# (Image/ExifTool/PLUS.pm, ModelReleaseStatus / PropertyReleaseStatus).
MODEL_RELEASE_STATUS_TAG = "XMP-plus:ModelReleaseStatus"
MODEL_RELEASE_ID_TAG = "XMP-plus:ModelReleaseID"
PROPERTY_RELEASE_STATUS_TAG = "XMP-plus:PropertyReleaseStatus"
PROPERTY_RELEASE_ID_TAG = "XMP-plus:PropertyReleaseID"
PERSON_IN_IMAGE_TAG = "XMP-iptcExt:PersonInImage"
_RELEASE_TAGS = (
    MODEL_RELEASE_STATUS_TAG,
    MODEL_RELEASE_ID_TAG,
    PROPERTY_RELEASE_STATUS_TAG,
    PROPERTY_RELEASE_ID_TAG,
    PERSON_IN_IMAGE_TAG,
)
#: Extra tags a caller may read: GROUP:TAG, each part starting with a letter. The letter matters:
#: "-g1:2" or "-G1:3" would be taken by exiftool as its -g/-G option, not as a tag (decisions.md E-2).
_EXTRA_TAG = re.compile(r"[A-Za-z][A-Za-z0-9-]*:[A-Za-z][A-Za-z0-9-]*")
_SIZE_TAGS = ("File:ImageWidth", "File:ImageHeight", "Composite:ImageSize")
_STATUS_TAGS = ("File:FileType", "ExifTool:Error", "ExifTool:Warning")
# -n: machine-readable values (ImageSize as "W H"). Numbers in JSON are parsed as strings below,
# so a keyword "1990" or "1.50" comes back exactly as written.
_READ_OPTIONS = ("-j", "-G1", "-n")
_READ_ARGS = (
    *_READ_OPTIONS,
    *(
        f"-{tag}"
        for tag in (*TITLE_TAGS, *DESCRIPTION_TAGS, *KEYWORD_TAGS, *_RELEASE_TAGS, *_SIZE_TAGS, *_STATUS_TAGS)
    ),
)

#: Tags ``write`` accepts, with whether the tag holds a list. Anything else is refused, so no
#: caller can reach ExifTool's file-moving pseudo-tags (FileName, Directory) or options (decisions.md E-2).
WRITABLE_TAGS: Mapping[str, bool] = {
    "XMP-dc:Title": False,
    "XMP-dc:Description": False,
    "XMP-dc:Subject": True,
    "XMP-dc:Creator": True,
    "XMP-dc:Rights": False,
    "XMP-photoshop:Headline": False,
    "XMP-plus:ModelReleaseStatus": False,
    "XMP-plus:ModelReleaseID": True,
    "XMP-plus:PropertyReleaseStatus": False,
    "XMP-plus:PropertyReleaseID": True,
    "XMP-iptcExt:PersonInImage": True,
    "IPTC:ObjectName": False,
    "IPTC:Headline": False,
    "IPTC:Caption-Abstract": False,
    "IPTC:Keywords": True,
    "IPTC:By-line": True,
    "IPTC:CopyrightNotice": False,
    "EXIF:ImageDescription": False,
    "EXIF:Artist": False,
    "EXIF:Copyright": False,
}
_WRITABLE_BY_LOWER = {name.lower(): name for name in WRITABLE_TAGS}

#: IPTC IIM limits in bytes, from ExifTool's IPTC tag table (html/TagNames/IPTC.html:
#: ObjectName string[0,64], Headline [0,256], Caption-Abstract [0,2000], Keywords [0,64],
#: By-line [0,32], CopyrightNotice [0,128]).
IPTC_MAX_BYTES: Mapping[str, int] = {
    "IPTC:ObjectName": 64,
    "IPTC:Headline": 256,
    "IPTC:Caption-Abstract": 2000,
    "IPTC:Keywords": 64,
    "IPTC:By-line": 32,
    "IPTC:CopyrightNotice": 128,
}

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

_INSTALL_HINT = (
    "install ExifTool (Debian/Ubuntu: apt install libimage-exiftool-perl; macOS: brew install exiftool)"
)


@dataclass(frozen=True, slots=True)
class ImageMetadata:
    """What an image says about itself, as stockbridge's rules need it."""

    title: str | None
    description: str | None
    keywords: tuple[str, ...]
    width: int | None
    height: int | None
    file_type: str | None  # ExifTool's FileType, lower-cased: "jpeg", "png", "tiff", ...
    warnings: tuple[str, ...] = ()  # ExifTool's warnings for this file, e.g. "JPEG format error"
    # Releases, as written in the file: the PLUS status code ("MR-NON", "MR-UMR", ...) and IDs.
    model_release_status: str | None = None
    model_release_ids: tuple[str, ...] = ()
    property_release_status: str | None = None
    property_release_ids: tuple[str, ...] = ()
    persons_in_image: tuple[str, ...] = ()
    #: Values of the extra tags the caller asked ``read`` for, keyed by the tag name as asked
    #: (a tag the file does not have is absent). Left out of the hash so the object stays hashable.
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    @property
    def megapixels(self) -> float | None:
        if not self.width or not self.height:
            return None
        return self.width * self.height / 1_000_000


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

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start exiftool now (idempotent). Raises MetadataError if it is missing or does not answer."""
        with self._lock:
            if self._process is not None and self._process.alive():
                return
            self._abandon()
            try:
                self._start(retry=True)
            except _Hung as hung:
                raise _StartError(f"ExifTool {hung.reason}", hint=_INSTALL_HINT) from None

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
        assert self._process is not None
        return self._process

    def _start(self, *, retry: bool) -> None:
        executable = _resolve_executable(self._executable)
        cwd = self._working_dir()
        for attempt in (1, 2) if retry else (1,):
            process = _StayOpenProcess(executable, cwd)
            try:
                process.run()
            except OSError as exc:
                raise _StartError(f"cannot start ExifTool ({exc})", hint=_INSTALL_HINT) from exc
            self._process, self._calls = process, 0
            try:
                version = str(_guarded(process, ["-ver"], self.start_timeout)).strip()
            except _Hung as hung:
                self._abandon()
                if attempt == 2 or not retry:
                    raise _Hung(f"did not start ({hung.reason})") from None
                continue
            except (ExifToolException, ValueError) as exc:
                self._abandon()
                raise _StartError(
                    f"{executable} does not behave like ExifTool ({exc})", hint=_INSTALL_HINT
                ) from exc
            process.set_version(version)
            logger.debug("ExifTool {} started (pid {}, cwd {})", version, process.pid, cwd)
            return

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


# ---------------------------------------------------------------------- the process


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM exiftool when its parent dies (even by SIGKILL).

    ExifTool in -stay_open mode polls a closed stdin forever (ReadStayOpen sleeps 10 ms and tries
    again), so without this an exiftool outlives a killed stockbridge. pyexiftool does the same,
    but dlopens libc inside the forked child, which can deadlock when other threads held the loader
    lock at fork time (pyexiftool#102). Here libc is resolved once, in the parent; the child only
    makes the call. Note: the "parent" is the thread that started the process; if that thread ends,
    exiftool is stopped and the next call starts a new one.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1  # <linux/prctl.h>

    def set_parent_death_signal() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return set_parent_death_signal


_PREEXEC = _parent_death_signal()


#: Environment variables passed to ExifTool; everything else (passwords, tokens) stays behind.
_CHILD_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PERL5LIB", "SYSTEMROOT")


def _child_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name in _CHILD_ENV_KEEP}


class _StayOpenProcess(ExifToolHelper):
    """pyexiftool's ExifToolHelper, started our way.

    pyexiftool 0.5.6's ``run()`` takes no working directory, leaves exiftool in our process group
    and uses a thread-unsafe preexec_fn; this ``run()`` differs in exactly those points. Commands,
    the sentinel protocol and exit-status checks stay pyexiftool's.
    """

    def __init__(self, executable: str, cwd: Path) -> None:
        super().__init__(
            executable=executable,
            common_args=[],  # options are given per call: reads and writes need different ones
            config_file="",  # never load an .ExifTool_config (Perl code), decisions.md E-3
            encoding="utf-8",  # not the locale's: under LANG=C that would be ASCII, decisions.md E-4
            check_execute=True,
            auto_start=False,  # every start goes through ExifTool._start, under the watchdog
        )
        self._cwd = cwd
        # Our own reference: pyexiftool drops _process when it notices a dead exiftool, and we
        # still need it to reap the process.
        self._popen: subprocess.Popen[bytes] | None = None

    def run(self) -> None:
        args = [str(self.executable), "-config", "", "-stay_open", "True", "-@", "-"]
        if sys.platform == "win32":
            args += ["-common_args", "-charset", "filename=utf8"]  # decisions.md E-4
        self._popen = self._process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self._cwd,
            # Only what Perl and ExifTool need: passwords given as { env = ... } must not reach a
            # child process (decisions.md X-2), and EXIFTOOL_HOME must not point it at a config file.
            env=_child_environment(),
            # Own process group: a timeout kills exiftool and anything it started, and a Ctrl-C
            # in a terminal does not kill it mid-write (we stop it cleanly instead).
            start_new_session=True,
            preexec_fn=_PREEXEC,  # only a pre-resolved prctl call, see _parent_death_signal
        )
        self._running = True

    def set_version(self, version: str) -> None:
        self._ver = version

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def popen(self) -> subprocess.Popen[bytes]:
        assert self._popen is not None
        return self._popen

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def stop(self, grace: float) -> None:
        """Ask exiftool to finish (``-stay_open False``), kill it if it has not after ``grace`` s."""
        process = self._popen
        if process is None:
            return
        try:
            assert process.stdin is not None
            process.stdin.write(b"-stay_open\nFalse\n")
            process.stdin.flush()
            process.wait(timeout=grace)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.abandon()

    def abandon(self) -> None:
        """Kill the process group, reap it (no zombie), close the pipes, forget it."""
        process, self._popen = self._popen, None
        if process is None:
            return
        _kill_group(process)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not take 10 s
            logger.error("ExifTool (pid {}) survived SIGKILL", process.pid)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._flag_running_false()


class _StartError(MetadataError):
    """ExifTool itself cannot run: not one file's problem, so ``read`` raises it."""


class _Hung(Exception):
    """exiftool did not answer in time, or died during a call."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _guarded(process: _StayOpenProcess, params: Sequence[str | bytes], timeout: float) -> str | bytes:
    """``process.execute(*params)`` under a watchdog thread; raises _Hung on timeout or death."""
    popen = process.popen()
    finished = threading.Event()
    decision = threading.Lock()
    fired: list[str] = []

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while not finished.wait(min(_WATCH_INTERVAL, max(deadline - time.monotonic(), 0))):
            if popen.poll() is not None:
                reason = f"exited unexpectedly (status {popen.returncode})"
            elif time.monotonic() >= deadline:
                reason = f"did not answer within {timeout:g} s"
            else:
                continue
            with decision:
                if finished.is_set():
                    return
                fired.append(reason)
            _unblock(popen)
            return

    watchdog = threading.Thread(target=watch, name=f"exiftool-watchdog-{popen.pid}", daemon=True)
    watchdog.start()
    try:
        result = process.execute(*params)
    except BaseException as exc:
        with decision:
            finished.set()
        watchdog.join()
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit: never turned into a retry
        if fired:
            raise _Hung(fired[0]) from exc
        if isinstance(exc, OSError | ExifToolException) and not process.alive():
            raise _Hung(f"exited unexpectedly ({exc})") from exc
        raise
    with decision:
        finished.set()
    watchdog.join()
    if fired:
        # The answer arrived just as the watchdog fired and killed the process: treat it as the
        # timeout it almost was (the caller retries on a fresh process).
        raise _Hung(fired[0])
    return result


def _unblock(popen: subprocess.Popen[bytes]) -> None:
    """Make pyexiftool's blocked read fail, then kill exiftool's process group.

    pyexiftool waits with select() + os.read() for its sentinel and never checks for EOF
    (pyexiftool#81), so killing exiftool alone would leave the call spinning. A directory is put
    on the stdout and stderr descriptors (dup2): select() reports it readable, os.read() fails
    with EISDIR, and the call raises. dup2 keeps the descriptor numbers taken, so no file another
    thread opens meanwhile can land on them. Killing the whole group closes the pipes' write
    ends even if exiftool started a helper, which wakes the blocked select().
    """
    if os.name == "posix":
        directory = os.open("/", os.O_RDONLY)
        try:
            for stream in (popen.stdout, popen.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError, ValueError):
                        os.dup2(directory, stream.fileno())
        finally:
            os.close(directory)
    _kill_group(popen)


def _kill_group(popen: subprocess.Popen[bytes]) -> None:
    try:
        if os.name == "posix":
            os.killpg(popen.pid, signal.SIGKILL)  # start_new_session: group id == pid
        else:  # pragma: no cover
            popen.kill()
    except (ProcessLookupError, PermissionError):
        pass


def _resolve_executable(executable: str | Path) -> str:
    # An explicit path is taken as is; a bare name is looked up on PATH only, never in the
    # current directory (pyexiftool would take a file of that name in cwd first).
    text = os.fspath(executable)
    if os.sep in text or (os.altsep and os.altsep in text):
        if not os.path.isfile(text):
            raise _StartError(f"ExifTool not found at {text}", hint=_INSTALL_HINT)
        return os.path.abspath(text)
    found = shutil.which(text)
    if found is None:
        raise _StartError(f"ExifTool ({text}) is not on PATH", hint=_INSTALL_HINT)
    return found


# ---------------------------------------------------------------------- arguments


def _file_argument(path: Path) -> bytes:
    """The absolute path as exiftool receives it: bytes, so any file name the OS allows works."""
    text = os.fspath(path)
    _refuse_line_breaks(text, f"the file name {text!r}")
    return os.fsencode(Path(text).absolute())


def _refuse_line_breaks(value: str, what: str) -> None:
    if any(character in value for character in _FORBIDDEN_CHARACTERS):
        raise MetadataError(
            f"refused {what}: it contains a line break or NUL, which ExifTool would take as a new argument",
            hint="remove line breaks from titles, descriptions, keywords and file names",
        )


def _assignments(file_name: str, tags: Mapping[str, str | Sequence[str]]) -> tuple[list[str], list[str]]:
    if not tags:
        raise MetadataError(f"nothing to write into {file_name}")
    assignments: list[str] = []
    warnings: list[str] = []
    for requested, value in tags.items():
        name = _WRITABLE_BY_LOWER.get(str(requested).lower())
        if name is None:
            raise MetadataError(f"refused to write {requested!r}: not a tag stockbridge writes")
        if isinstance(value, str):
            values = [value] if value else []
        elif isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
            values = [item for item in value if item]
        else:
            raise MetadataError(f"refused to write {name}: the value must be text or a list of texts")
        if len(values) > 1 and not WRITABLE_TAGS[name]:
            raise MetadataError(f"refused to write {name}: it holds one value, got {len(values)}")
        for item in values:
            _refuse_line_breaks(item, f"the {name} value {item!r}")
        limit = IPTC_MAX_BYTES.get(name)
        if limit is not None:
            values = [_fit_bytes(item, limit, name, warnings) for item in values]
        if not values:
            assignments.append(f"-{name}=")  # deletes the tag
        assignments.extend(f"-{name}={item}" for item in values)
    return assignments, warnings


def _fit_bytes(value: str, limit: int, name: str, warnings: list[str]) -> str:
    encoded = value.encode("utf-8")
    if len(encoded) <= limit:
        return value
    # "ignore" drops the incomplete character at the cut, so the result is valid UTF-8.
    cut = encoded[:limit].decode("utf-8", "ignore")
    shown = value if len(value) <= 30 else value[:29] + "…"
    warnings.append(
        f"{name} {shown!r} is {len(encoded)} bytes, over IPTC's limit of {limit}: IPTC keeps the "
        f"first {len(cut)} characters (XMP, if written, keeps all {len(value)})"
    )
    return cut


# ---------------------------------------------------------------------- answers


def _entries_by_source(output: str | bytes) -> dict[str, dict[str, object]]:
    """exiftool -j output, keyed by SourceFile. JSON numbers stay text ("1990", "1.50")."""
    text = output.decode("utf-8") if isinstance(output, bytes) else output
    if not text.strip():
        return {}
    entries = json.loads(text, parse_int=str, parse_float=str)
    if not isinstance(entries, list):
        raise ValueError("ExifTool's JSON answer is not a list")
    return {str(entry.get("SourceFile")): entry for entry in entries if isinstance(entry, dict)}


def _extra_args(extra: Sequence[str]) -> list[str]:
    return [f"-{tag}" for tag in extra]


def _metadata_from(entry: Mapping[str, object], extra: Sequence[str] = ()) -> ImageMetadata:
    width, height = _dimensions(entry)
    file_type = _texts(entry.get("File:FileType"))
    warning = _texts(entry.get("ExifTool:Warning"))
    return ImageMetadata(
        title=_first_text(entry, TITLE_TAGS),
        description=_first_text(entry, DESCRIPTION_TAGS),
        keywords=_first_keywords(entry, KEYWORD_TAGS),
        width=width,
        height=height,
        file_type=file_type[0].lower() if file_type else None,
        warnings=tuple(warning),
        model_release_status=_first_text(entry, (MODEL_RELEASE_STATUS_TAG,)),
        model_release_ids=_clean_keywords(_texts(entry.get(MODEL_RELEASE_ID_TAG))),
        property_release_status=_first_text(entry, (PROPERTY_RELEASE_STATUS_TAG,)),
        property_release_ids=_clean_keywords(_texts(entry.get(PROPERTY_RELEASE_ID_TAG))),
        persons_in_image=_clean_keywords(_texts(entry.get(PERSON_IN_IMAGE_TAG))),
        extra=_extra_values(entry, extra),
    )


def _extra_values(entry: Mapping[str, object], extra: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The values of each requested tag, keyed as requested.

    -G1 names the family-1 group, so "XMP:Instructions" comes back as
    "XMP-photoshop:Instructions" and "EXIF:Artist" as "IFD0:Artist": the exact name is taken
    first, else the tag in a group of that family.
    """
    by_lower = {key.lower(): key for key in entry}
    values: dict[str, tuple[str, ...]] = {}
    for tag in extra:
        group, name = tag.lower().split(":", 1)
        key = by_lower.get(tag.lower())
        if key is None:
            key = next(
                (
                    candidate
                    for lower, candidate in by_lower.items()
                    if ":" in lower
                    and lower.split(":", 1)[1] == name
                    and _in_family(lower.split(":", 1)[0], group)
                ),
                None,
            )
        texts = tuple(text.strip() for text in _texts(entry.get(key)) if text.strip()) if key else ()
        if texts:
            values[tag] = texts
    return values


#: Family-1 groups of the EXIF family-0 group, as -G1 names them.
_EXIF_GROUPS = frozenset({"ifd0", "ifd1", "exififd", "gps", "interopifd", "subifd"})


def _in_family(group1: str, group0: str) -> bool:
    if group0 == "exif":
        return group1 in _EXIF_GROUPS
    return group1.startswith(f"{group0}-")  # XMP-dc, XMP-photoshop, ...


def _first_text(entry: Mapping[str, object], tags: Sequence[str]) -> str | None:
    for tag in tags:
        for text in _texts(entry.get(tag)):
            if text.strip():
                return text.strip()
    return None


def _first_keywords(entry: Mapping[str, object], tags: Sequence[str]) -> tuple[str, ...]:
    for tag in tags:
        keywords = _clean_keywords(_texts(entry.get(tag)))
        if keywords:
            return keywords
    return ()


def _clean_keywords(raw: Sequence[str]) -> tuple[str, ...]:
    """Stripped, empties dropped, duplicates (ignoring case) dropped, first spelling and order kept."""
    seen: set[str] = set()
    kept: list[str] = []
    for keyword in raw:
        keyword = keyword.strip()
        folded = keyword.casefold()
        if keyword and folded not in seen:
            seen.add(folded)
            kept.append(keyword)
    return tuple(kept)


def _texts(value: object) -> list[str]:
    """A tag value as a list of strings: ExifTool gives a single list item as a plain value."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [_decode_text(item) for item in items if item is not None]


def _decode_text(item: object) -> str:
    text = str(item)
    # ExifTool's JSON carries bytes that are not valid UTF-8 as "base64:..." (exiftool -j docs).
    if text.startswith("base64:"):
        try:
            return base64.b64decode(text[7:], validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return text
    return text


def _dimensions(entry: Mapping[str, object]) -> tuple[int | None, int | None]:
    width, height = _positive_int(entry.get("File:ImageWidth")), _positive_int(entry.get("File:ImageHeight"))
    if width and height:
        return width, height
    # PNG and TIFF keep their size in their own groups; Composite:ImageSize is "W H" under -n.
    size = str(entry.get("Composite:ImageSize") or "").replace("x", " ").split()
    if len(size) == 2:
        return _positive_int(size[0]), _positive_int(size[1])
    return None, None


def _positive_int(value: object) -> int | None:
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None


def _first_error_line(stderr: str | bytes | None) -> str | None:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else (stderr or "")
    for line in text.splitlines():
        if line.startswith("Error:"):
            return line.removeprefix("Error:").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else None


def _warning_lines(stderr: str) -> Iterator[str]:
    for line in stderr.splitlines():
        if line.startswith("Warning:"):
            yield line.removeprefix("Warning:").strip()
