"""Sample vectors for ``stockbridge demo`` and the tests: a real EPS and a real SVG (issue 15).

The EPS is made the way a PostScript workflow makes one: a tiny PostScript drawing (a few filled
shapes on a page of the asked size) turned into an EPS by Ghostscript's ``eps2write`` device, so
the file has a true DSC header, a bounding box and a %%EOF, as an editor's export does. Metadata
goes in by ExifTool, as XMP (what an editor writes into an EPS). The SVG is written as text.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from stockbridge.assets.vector import GHOSTSCRIPT
from stockbridge.metadata.exiftool import ExifTool

_DRAWING = """%!PS
% A sample drawing: sky, sun, two hills. Coordinates in points, the page is {w} x {h}.
0.55 0.75 0.95 setrgbcolor 0 0 moveto {w} 0 lineto {w} {h} lineto 0 {h} lineto closepath fill
1 0.8 0.1 setrgbcolor {sx} {sy} {sr} 0 360 arc closepath fill
0.2 0.6 0.25 setrgbcolor 0 0 moveto {w} 0 lineto {w} {h3} lineto {w2} {h2} lineto 0 {h3} lineto closepath fill
0.1 0.45 0.2 setrgbcolor 0 0 moveto {w} 0 lineto 0 {h4} lineto closepath fill
showpage
"""


def make_eps(
    path: Path,
    *,
    width_pt: int,
    height_pt: int,
    title: str | None = None,
    keywords: Sequence[str] = (),
    exiftool: ExifTool | None = None,
) -> Path:
    """An EPS of ``width_pt`` × ``height_pt`` points (= agencies' pixels), made by Ghostscript."""
    drawing = _DRAWING.format(
        w=width_pt,
        h=height_pt,
        w2=width_pt // 2,
        h2=height_pt // 2,
        h3=height_pt // 3,
        h4=height_pt // 4,
        sx=width_pt * 3 // 4,
        sy=height_pt * 3 // 4,
        sr=max(1, min(width_pt, height_pt) // 8),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    with tempfile.TemporaryDirectory(prefix="stockbridge-eps-") as scratch:
        source = Path(scratch) / "drawing.ps"
        source.write_text(drawing)
        subprocess.run(
            [
                GHOSTSCRIPT,
                "-dSAFER",
                "-dNOPAUSE",
                "-dBATCH",
                "-q",
                "-sDEVICE=eps2write",
                f"-dDEVICEWIDTHPOINTS={width_pt}",
                f"-dDEVICEHEIGHTPOINTS={height_pt}",
                f"-sOutputFile={partial}",
                str(source),
            ],
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
    _tag(partial, title, keywords, exiftool)
    partial.rename(path)
    return path


def make_svg(
    path: Path,
    *,
    width: str,
    height: str,
    view_box: str | None = None,
    title: str | None = None,
    keywords: Sequence[str] = (),
    extra: str = "",
) -> Path:
    """An SVG 1.1 drawing with the given ``width``/``height`` attributes (units as written). A
    ``title`` and ``keywords`` go into its <metadata> as XMP (dc:title, dc:subject), as Illustrator
    and Inkscape write them; ExifTool reads them from there."""
    box = f' viewBox="{view_box}"' if view_box else ""
    heading = _svg_xmp(title, keywords) if title or keywords else ""
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<svg xmlns="http://www.w3.org/2000/svg" version="1.1"'
        f' width="{width}" height="{height}"{box}>{heading}'
        '<rect x="0" y="0" width="100%" height="100%" fill="#8cc0f0"/>'
        f'<circle cx="50%" cy="40%" r="10%" fill="#ffcc1a"/>{extra}</svg>\n'
    )
    return path


def _tag(path: Path, title: str | None, keywords: Sequence[str], exiftool: ExifTool | None) -> None:
    tags: dict[str, str | list[str]] = {}
    if title:
        tags["XMP-dc:Title"] = title
    if keywords:
        tags["XMP-dc:Subject"] = list(keywords)
    if not tags:
        return
    if exiftool is not None:
        exiftool.write(path, tags)
        return
    with ExifTool() as tool:
        tool.write(path, tags)


def _svg_xmp(title: str | None, keywords: Sequence[str]) -> str:
    alt = (
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(title)}</rdf:li></rdf:Alt></dc:title>'
        if title
        else ""
    )
    bag = "".join(f"<rdf:li>{escape(keyword)}</rdf:li>" for keyword in keywords)
    subject = f"<dc:subject><rdf:Bag>{bag}</rdf:Bag></dc:subject>" if keywords else ""
    return (
        '<metadata><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
        ' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
        f' xmlns:dc="http://purl.org/dc/elements/1.1/">{alt}{subject}</rdf:Description></rdf:RDF>'
        "</x:xmpmeta></metadata>"
    )
