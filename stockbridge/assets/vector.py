"""Vectors (EPS, AI, SVG): their size, version and soundness, without rendering a pixel (issue 15).

An illustrator's export is a drawing with no pixels of its own. What agencies measure is its
bounding box (EPS) or artboard (AI, SVG) in points, counted as pixels at 72 per inch: Illustrator's
"px" is a point, so a 2000×2000 pt artboard is 4 MP (decisions.md D-1).

- **EPS and PostScript AI**: the DSC header comments (``%%BoundingBox``, ``%%HiResBoundingBox``,
  ``%%Creator``, ``%%AI8_CreatorVersion``) and one Ghostscript ``bbox`` run, which gives the
  bounding box of what is really drawn. A DOS EPS (binary header C5D0D3C6) is checked through its
  PostScript section.
- **AI (PDF-based, Illustrator 9 and later)**: the same ``bbox`` run on its first page.
- **SVG**: ``width``/``height`` (with units), else the ``viewBox``; parsed with ``defusedxml``, which
  refuses entity declarations and external references, so nothing is fetched or expanded.

A vector is a program (PostScript) or a document that may point outside itself (SVG), so each is
refused with one line when it reaches for more than its drawing: PostScript that names a pipe or
deletes or renames files (refused before Ghostscript starts), PostScript that does anything else
Ghostscript's ``-dSAFER`` stops (the error is the reason), PostScript that does not finish (a
timeout), an SVG with ``<script>``, event handlers, HTML inside, external entities or links to
files outside itself. Nothing is ever rendered or converted here.

Ghostscript runs once per file, with ``-dSAFER -dNOPAUSE -dBATCH -q -sDEVICE=bbox
-dUseFastColor``, stdin closed, a timeout and its own process group killed on timeout
(decisions.md D-2; ``UseFastColor``, which skips ICC colour management a box does not need:
decisions.md D-4).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from stockbridge.assets import mediatypes
from stockbridge.assets.filetype import sniff
from stockbridge.assets.integrity import check_file, cut_off
from stockbridge.errors import InputError, MetadataError

if TYPE_CHECKING:
    from stockbridge.metadata.exiftool import ExifTool
    from stockbridge.rules.plan import AssetFacts

#: Ghostscript's program name (Debian: ``ghostscript``).
GHOSTSCRIPT = "gs"
#: How long one ``bbox`` run may take. An Illustrator EPS of 100 MB takes about a second; a file
#: that is still running after this is refused as one that may never end.
GS_TIMEOUT_SECONDS = 20.0
#: How much of a file's start holds its DSC header comments (Illustrator writes ~2 KB of them).
_HEAD = 64 * 1024
_TAIL = 4096
_SCAN_BLOCK = 1024 * 1024

#: PostScript that reaches outside the drawing: a pipe to a shell, deleting or renaming files.
#: ``-dSAFER`` stops them too; refusing them first means Ghostscript never sees them.
#: ``currentfile`` (used by every Illustrator prolog) is a different word and does not match.
_HOSTILE = re.compile(rb"%pipe%|(?<![\w/])(?:deletefile|renamefile)(?![\w])")
_DSC = re.compile(rb"^%%?([A-Za-z0-9_]+):[ \t]*([^\r\n]*)", re.M)
_BBOX = re.compile(rb"%%HiResBoundingBox:\s*([-\d.eE+]+)\s+([-\d.eE+]+)\s+([-\d.eE+]+)\s+([-\d.eE+]+)")
_LOW_BBOX = re.compile(rb"%%BoundingBox:\s*(-?\d+)\s+(-?\d+)\s+(-?\d+)\s+(-?\d+)")
_GS_ERROR = re.compile(r"Error:\s*(/\w+)(?:\s+in\s+(\S+))?")
#: "%%Creator: Adobe Illustrator(R) 10.0": the format level Illustrator saved the file as (an
#: "Illustrator 10 EPS" saved from a newer Illustrator says 10.0 here and the real application in
#: %%AI8_CreatorVersion). The same line Sergey Osokin's FileVersionInformer.jsx reads.
_ILLUSTRATOR = re.compile(r"Adobe Illustrator\s*(?:\(R\))?\s*(\d+(?:\.\d+)?)")
#: XMP's creator tool, as an element or an attribute, when Illustrator is named: what follows.
_CREATOR_TOOL = re.compile(
    rb'xmp:CreatorTool(?:>|\s*=\s*")\s*Adobe Illustrator\s*(?:\(R\)\s*)?([^<"\r\n]{0,40})'
)
_CREATIVE_SUITE = {"": 11.0, "2": 12.0, "3": 13.0, "4": 14.0, "5": 15.0, "6": 16.0}
_CREATIVE_CLOUD = {
    "": 17.0,
    "2014": 18.0,
    "2015": 19.0,
    "2015.3": 20.0,
    "2017": 21.0,
    "2018": 22.0,
    "2019": 23.0,
}
_DOS_EPS = b"\xc5\xd0\xd3\xc6"

#: SVG lengths in points (72 per inch). Illustrator opens an SVG with 1 px = 1 pt, so "px" and
#: plain numbers count as points, as agencies' "pixels" of a vector do (decisions.md D-1).
_SVG_UNITS = {"": 1.0, "px": 1.0, "pt": 1.0, "pc": 12.0, "in": 72.0, "cm": 72 / 2.54, "mm": 72 / 25.4}
_SVG_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*([a-z%]*)\s*$")
_SVG_NS = "{http://www.w3.org/2000/svg}"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


@dataclass(frozen=True, slots=True)
class VectorProbe:
    """What one vector file is: its size in points, who made it, and whether it may be taken."""

    file_type: str
    #: Width and height of the drawing in points (= agencies' pixels of a vector), None if unknown.
    width_pt: float | None = None
    height_pt: float | None = None
    #: Where the size came from: "Ghostscript bbox", "%%HiResBoundingBox", "width/height", "viewBox".
    size_from: str = ""
    #: The header's own bounding box, in points (EPS), for explain.
    header_bbox: tuple[float, float, float, float] | None = None
    #: The DSC ``%%Creator`` (EPS, AI) or the SVG's generator comment / root attributes.
    creator: str | None = None
    #: The Illustrator format level from ``%%Creator: Adobe Illustrator(R) N``; None: not
    #: checkable (another program wrote it, or it says nothing).
    illustrator_version: float | None = None
    #: The first line's level, "EPSF-3.0"; the SVG's version attribute.
    level: str | None = None
    #: Why the file cannot be taken at all (one line), or None.
    problem: str | None = None
    #: A PDF-based AI (no ``%%Creator`` line): the Illustrator version that saved it, from its XMP
    #: ``xmp:CreatorTool`` ("Adobe Illustrator CS6 (Windows)" = 16). Its format level is at most
    #: this: a file saved down-level ("Illustrator 10") still names the program that saved it
    #: (decisions.md D-5).
    saved_by: float | None = None

    @property
    def width(self) -> int | None:
        return round(self.width_pt) if self.width_pt else None

    @property
    def height(self) -> int | None:
        return round(self.height_pt) if self.height_pt else None

    @property
    def megapixels(self) -> float | None:
        if not self.width_pt or not self.height_pt:
            return None
        return self.width_pt * self.height_pt / 1e6

    @property
    def version_text(self) -> str:
        """ "Illustrator 10", or why the version is not checkable."""
        if self.illustrator_version is not None:
            return f"Illustrator {self.illustrator_version:g}"
        if self.file_type == "svg":
            return f"SVG {self.level}" if self.level else "SVG (no version attribute)"
        if self.saved_by is not None:
            return f"at most {self.saved_by:g} (saved by Illustrator {self.saved_by:g}, its XMP CreatorTool)"
        maker = f"made by {self.creator}" if self.creator else "no %%Creator comment"
        return f"not checkable ({maker})"

    def summary(self) -> str:
        """One line for ``status``: "EPS, 2400×1800 pt (4.3 MP), Illustrator 10"."""
        parts = [mediatypes.label(self.file_type)]
        if self.megapixels is not None:
            parts.append(f"{self.width}×{self.height} pt ({self.megapixels:.1f} MP)")
        parts.append(self.version_text)
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class PreviewCheck:
    """A vector's preview as found beside it: its type and size, or why it cannot serve."""

    path: Path
    file_type: str | None
    width: int | None = None
    height: int | None = None
    problem: str | None = None

    @property
    def megapixels(self) -> float | None:
        return self.width * self.height / 1e6 if self.width and self.height else None


def probe(path: Path, file_type: str, *, timeout: float | None = None) -> VectorProbe:
    """Measure and check the vector at ``path`` (a private copy, or the source for ``explain``).
    Raises InputError only when Ghostscript is missing (the machine's problem, not the file's)."""
    if file_type == "svg":
        return _probe_svg(path)
    return _probe_postscript_or_pdf(path, file_type, GS_TIMEOUT_SECONDS if timeout is None else timeout)


# ------------------------------------------------------------------------------------ EPS and AI


def _probe_postscript_or_pdf(path: Path, file_type: str, timeout: float) -> VectorProbe:
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(_HEAD)
        start, length = _postscript_section(head, size)
        if start is None:
            return VectorProbe(file_type, problem=cut_off("inside its DOS EPS header"))
        handle.seek(max(start, start + length - _TAIL))
        tail = handle.read(min(length, _TAIL))
        hostile = _scan_hostile(handle, start, length)
    if start:
        head = head[start : start + length]
    comments = _dsc_comments(head)
    creator = comments.get("Creator")
    version = _illustrator_version(creator)
    saved_by = _saved_by(path, head, size) if version is None and head.startswith(b"%PDF-") else None
    level = head.split(b"\n", 1)[0].split(b"\r", 1)[0].decode("latin-1").partition(" ")[2].strip() or None
    base = VectorProbe(
        file_type,
        header_bbox=_header_bbox(head),
        creator=creator,
        illustrator_version=version,
        level=level,
        saved_by=saved_by,
    )
    if hostile is not None:
        return _with(base, problem=f"runs PostScript that reaches outside the drawing ({hostile}); not taken")
    if b"%%EOF" not in tail.rstrip(b"\x00\x04\r\n\t ")[-1024:]:
        return _with(base, problem=cut_off("before its %%EOF comment (the vector is incomplete)"))
    measured = _ghostscript_bbox(path, file_type, timeout)
    if isinstance(measured, str):
        return _with(base, problem=measured)
    if measured is not None and measured[2] > measured[0] and measured[3] > measured[1]:
        return _with(base, size=measured, size_from="Ghostscript bbox")
    if base.header_bbox is not None:
        return _with(base, size=base.header_bbox, size_from="%%BoundingBox (nothing drawn)")
    return _with(base, problem="draws nothing and has no bounding box; export it again")


def _with(
    base: VectorProbe,
    *,
    size: tuple[float, float, float, float] | None = None,
    size_from: str = "",
    problem: str | None = None,
) -> VectorProbe:
    width = height = None
    if size is not None:
        width, height = size[2] - size[0], size[3] - size[1]
    return VectorProbe(
        base.file_type,
        width,
        height,
        size_from,
        base.header_bbox,
        base.creator,
        base.illustrator_version,
        base.level,
        problem,
        base.saved_by,
    )


def _postscript_section(head: bytes, size: int) -> tuple[int | None, int]:
    """Where the PostScript is: (0, size), or a DOS EPS's section from its header (TN 5002 §2:
    offset and length of the PostScript at bytes 4 and 8, little-endian)."""
    if not head.startswith(_DOS_EPS):
        return 0, size
    if len(head) < 12:
        return None, 0
    offset, length = struct.unpack("<II", head[4:12])
    if offset < 30 or length == 0 or offset + length > size:
        return None, 0
    return offset, length


def _scan_hostile(stream: BinaryIO, start: int, length: int) -> str | None:
    """The first PostScript word that reaches outside the drawing, or None (read in blocks)."""
    stream.seek(start)
    remaining, carry = length, b""
    while remaining > 0:
        block = stream.read(min(_SCAN_BLOCK, remaining))
        if not block:
            break
        remaining -= len(block)
        found = _HOSTILE.search(carry + block)
        if found:
            return found.group(0).decode("latin-1")
        carry = block[-16:]
    return None


def _dsc_comments(head: bytes) -> dict[str, str]:
    """The header's DSC comments (first of each), up to %%EndComments."""
    end = head.find(b"%%EndComments")
    text = head if end < 0 else head[:end]
    found: dict[str, str] = {}
    for match in _DSC.finditer(text):
        key = match.group(1).decode("latin-1")
        found.setdefault(key, match.group(2).decode("latin-1", "replace").strip())
    return found


def _saved_by(path: Path, head: bytes, size: int) -> float | None:
    """The Illustrator version named by a PDF's XMP ``xmp:CreatorTool``: Illustrator writes its
    packet near the start; a metadata edit (ExifTool's, say) appends one at the end, which wins."""
    with open(path, "rb") as handle:
        handle.seek(max(0, size - _HEAD))
        tail = handle.read(_HEAD)
    found = _CREATOR_TOOL.findall(head) + _CREATOR_TOOL.findall(tail)
    return _illustrator_release(found[-1].decode("latin-1")) if found else None


def _illustrator_release(name: str) -> float | None:
    """ "27.0 (Macintosh)" → 27, "CS6 (Windows)" → 16, "CC 2017" → 21, "CC 22.1" → 22.1 (Adobe's numbering:
    CS = 11 ... CS6 = 16, CC = 17 ... CC 2019 = 23, then 2020 = 24 by number; decisions.md D-5)."""
    name = name.strip()
    if number := re.match(r"(\d+(?:\.\d+)?)", name):
        return float(number.group(1))
    if suite := re.match(r"CS(\d?)\b", name):
        return _CREATIVE_SUITE.get(suite.group(1))
    if cloud := re.match(r"CC(?:\s*(\d+(?:\.\d+)?))?", name):
        year = cloud.group(1) or ""
        # "CC 2017" names a year; CC 2018 and 2019 also wrote their number ("CC 22.1").
        return _CREATIVE_CLOUD.get(year) if not year or float(year) >= 2000 else float(year)
    return None


def _illustrator_version(creator: str | None) -> float | None:
    match = _ILLUSTRATOR.search(creator or "")
    return float(match.group(1)) if match else None


def _header_bbox(head: bytes) -> tuple[float, float, float, float] | None:
    for pattern in (_BBOX, _LOW_BBOX):
        match = pattern.search(head)
        if match:
            try:
                x0, y0, x1, y1 = (float(value) for value in match.groups())
            except ValueError:
                continue
            return (x0, y0, x1, y1)
    return None


def ghostscript_command(path: Path, file_type: str) -> list[str]:
    """The one Ghostscript run per file: the bounding box of what page 1 draws, nothing written."""
    # UseFastColor: device colours by the PDF spec's formulas, not through ICC profiles (lcms2 set
    # up profiles for a fifth of each run); a box is where marks land (decisions.md D-4).
    command = [GHOSTSCRIPT, "-dSAFER", "-dNOPAUSE", "-dBATCH", "-q", "-sDEVICE=bbox", "-dUseFastColor"]
    if file_type == "ai":
        command += ["-dFirstPage=1", "-dLastPage=1"]
    return [*command, "--", str(path)]


def _ghostscript_bbox(
    path: Path, file_type: str, timeout: float
) -> tuple[float, float, float, float] | str | None:
    """Ghostscript's bounding box, None when it drew nothing, or a one-line refusal.

    ``-dSAFER`` still lets PostScript write into the temporary folder (Ghostscript's own scratch
    space), so TMPDIR is a fresh empty folder of ours, removed afterwards: the only place a file
    could write to, and a file that wrote there is refused too."""
    sandbox = Path(tempfile.mkdtemp(prefix="stockbridge-gs-"))
    environment = {**os.environ, "TMPDIR": str(sandbox), "TEMP": str(sandbox), "TMP": str(sandbox)}
    try:
        try:
            process = subprocess.Popen(
                ghostscript_command(path.resolve(), file_type),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own group: a timeout ends it and anything it started
                cwd=sandbox,
                env=environment,
            )
        except FileNotFoundError:
            # Not the file's fault: no answer is recorded for it, it is taken once gs is there.
            raise InputError(
                f"{path.name}: Ghostscript (gs) is not installed, so a vector cannot be measured",
                hint="install ghostscript (Debian: apt-get install ghostscript)",
            ) from None
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            return f"Ghostscript did not finish in {timeout:g} s (PostScript that may never end); not taken"
        written = sorted(entry.name for entry in sandbox.iterdir())
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)
    output = (stdout + stderr).decode("utf-8", "replace")
    if process.returncode != 0 or "Error:" in output:
        error = _GS_ERROR.search(output)
        detail = (
            error.group(1) + (f" in {error.group(2)}" if error.group(2) else "")
            if error
            else (output.strip().splitlines() or [f"exit status {process.returncode}"])[-1][:120]
        )
        return f"Ghostscript refused to run it ({detail}); not taken, nothing it asked for was done"
    if written:
        return f"runs PostScript that writes files ({written[0]}); not taken, what it wrote was deleted"
    match = _BBOX.search(output.encode())
    if not match:
        return None
    x0, y0, x1, y1 = (float(value) for value in match.groups())
    return (x0, y0, x1, y1)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


# ------------------------------------------------------------------------------------------- SVG


def _probe_svg(path: Path) -> VectorProbe:
    from xml.etree.ElementTree import Element, ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import parse

    try:
        root: Element = parse(
            str(path), forbid_dtd=False, forbid_entities=True, forbid_external=True
        ).getroot()
    except DefusedXmlException as exc:
        return VectorProbe(
            "svg",
            problem=f"declares XML entities or external references ({type(exc).__name__}); not taken, nothing was fetched",
        )
    except ParseError as exc:
        return VectorProbe("svg", problem=f"damaged or cut off: not well-formed XML ({exc}); export it again")
    if root.tag not in (f"{_SVG_NS}svg", "svg"):
        return VectorProbe("svg", problem="its root element is not <svg>; not an SVG drawing")
    unsafe = _svg_unsafe(root)
    version = root.get("version")
    if unsafe is not None:
        return VectorProbe("svg", level=version, problem=f"{unsafe}; agencies refuse active SVG, not taken")
    width, height = _svg_length(root.get("width")), _svg_length(root.get("height"))
    size_from = "width/height"
    if width is None or height is None:
        box = _view_box(root.get("viewBox"))
        if box is None:
            return VectorProbe(
                "svg", level=version, problem="has no width/height and no viewBox: its size is unknown"
            )
        width, height, size_from = box[2], box[3], "viewBox"
    if width <= 0 or height <= 0:
        return VectorProbe("svg", level=version, problem="has an empty size (width or height 0)")
    return VectorProbe("svg", width, height, size_from, level=version, creator=None)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _svg_unsafe(root: object) -> str | None:
    """Why this SVG is active or reaches outside itself, or None."""
    from xml.etree.ElementTree import Element

    assert isinstance(root, Element)
    for element in root.iter():
        tag = _local(element.tag) if isinstance(element.tag, str) else ""
        if tag == "script":
            return "holds a <script>"
        if tag == "foreignObject":
            return "holds HTML (<foreignObject>)"
        for name, value in element.attrib.items():
            local = _local(name)
            if local.lower().startswith("on"):
                return f"holds an event handler ({local}=)"
            if name in ("href", _XLINK_HREF) and _external(value):
                return f"links to a file outside itself ({value[:60]})"
    return None


def _external(reference: str) -> bool:
    value = reference.strip().lower()
    return not (value == "" or value.startswith("#") or value.startswith("data:"))


def _svg_length(value: str | None) -> float | None:
    match = _SVG_LENGTH.match(value or "")
    if not match or match.group(2) not in _SVG_UNITS:
        return None  # "100%", "auto", an unknown unit: the viewBox decides
    return float(match.group(1)) * _SVG_UNITS[match.group(2)]


def _view_box(value: str | None) -> tuple[float, float, float, float] | None:
    parts = re.split(r"[\s,]+", (value or "").strip())
    if len(parts) != 4:
        return None
    try:
        x, y, width, height = (float(part) for part in parts)
    except ValueError:
        return None
    return (x, y, width, height)


# ------------------------------------------------------------------------------------ previews


def preview_candidates(vector: Path) -> list[Path]:
    """The names a vector's preview may have beside it: same stem, a preview type's ending (any
    case the folder spells it in)."""
    endings = {ending for media in mediatypes.preview_types() for ending in media.extensions}
    try:
        names = os.listdir(vector.parent)
    except OSError:
        return []
    stem = vector.stem
    return sorted(
        vector.parent / name
        for name in names
        if Path(name).stem == stem and Path(name).suffix.lower() in endings and name != vector.name
    )


def expected_preview(vector: Path) -> str:
    """The name a missing preview should have: "art.jpg"."""
    return f"{vector.stem}{mediatypes.preview_types()[0].extension}"


def vector_beside(path: Path) -> Path | None:
    """The vector whose preview ``path`` is (same stem, same folder), or None. Only JPEG and PNG
    names can be previews; the vector is found by its name's ending (content is checked when the
    vector itself is taken)."""
    media = mediatypes.from_filename(path.name)
    if media is None or not media.preview:
        return None
    try:
        names = os.listdir(path.parent)
    except OSError:
        return None
    for name in sorted(names):
        other = mediatypes.from_filename(name)
        if other is not None and other.kind == mediatypes.VECTOR and Path(name).stem == path.stem:
            return path.parent / name
    return None


def check_preview(path: Path) -> PreviewCheck:
    """The preview at ``path``: a whole JPEG or PNG of a size Pillow may open, or why not.
    Nothing is decoded: the structure check finds a cut-off file, a zip named .jpg is not a JPEG,
    and a header claiming more pixels than stockbridge opens is a decompression bomb."""
    from stockbridge.render.pixels import image_props

    name = path.name
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        return PreviewCheck(path, None, problem=f"preview {name}: cannot read it ({exc.strerror})")
    if not stat.S_ISREG(mode):  # a link is never followed (decisions.md X-10), a pipe never opened
        what = "a symbolic link, never followed" if stat.S_ISLNK(mode) else "not a regular file"
        return PreviewCheck(path, None, problem=f"preview {name} is {what}")
    try:
        found = sniff(path)
    except InputError as exc:
        return PreviewCheck(path, None, problem=f"preview {name}: {exc.message}")
    media = mediatypes.get(found)
    if media is None or not media.preview:
        labels = " or ".join(media.label for media in mediatypes.preview_types())
        what = f"{found.upper()} content" if found else "unknown content"
        return PreviewCheck(path, found, problem=f"preview {name} is not a {labels} ({what})")
    problem = check_file(path)
    if problem is not None:
        return PreviewCheck(path, media.name, problem=f"preview {name}: {problem}")
    try:
        props = image_props(path, media.name, name=name)
    except InputError as exc:
        return PreviewCheck(path, media.name, problem=f"preview {name}: {exc.message}")
    width, height = props.display_size
    return PreviewCheck(path, media.name, width, height)


def with_preview(facts: AssetFacts, source: Path, exiftool: ExifTool | None) -> AssetFacts:
    """``facts`` of the vector at ``source`` with its preview: found beside it (same stem), checked,
    and its metadata read. Where the vector has no title, description or keywords, the preview's
    are taken; where both have them, the vector's stand (the vector is what is sold)."""
    candidates = preview_candidates(source)
    expected = expected_preview(source)
    if not candidates:
        return replace(facts, preview=None, preview_expected=expected)
    checked = [check_preview(candidate) for candidate in candidates]
    preview = next((check for check in checked if check.problem is None), checked[0])
    facts = replace(facts, preview=preview, preview_expected=expected)
    if preview.problem is not None or exiftool is None:
        return facts
    absolute = preview.path.resolve()
    result = exiftool.read([absolute]).get(absolute)
    if result is None or isinstance(result, MetadataError):
        return facts
    taken = []
    title, description, keywords = facts.title, facts.description, facts.keywords
    if not (title or "").strip() and (result.title or "").strip():
        title = result.title
        taken.append("title")
    if not (description or "").strip() and (result.description or "").strip():
        description = result.description
        taken.append("description")
    if not keywords and result.keywords:
        keywords = result.keywords
        taken.append("keywords")
    return replace(
        facts, title=title, description=description, keywords=keywords, preview_fields=tuple(taken)
    )
