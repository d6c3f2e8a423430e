"""Vectors measured and checked by the real Ghostscript and defusedxml (issue 15).

What an illustrator would notice: the megapixels an agency counts (the drawing's bounding box,
1 pt = 1 px), the Illustrator level read from the header, and every hostile or broken file
refused with one line, with nothing it asked for done.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from PIL import Image

from stockbridge.assets import vector
from stockbridge.assets.filetype import sniff
from stockbridge.assets.vector import check_preview, probe
from stockbridge.demo.vectors import make_eps, make_svg

pytestmark = pytest.mark.skipif(shutil.which("gs") is None, reason="needs Ghostscript")

EPS_HEADER = "%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n%%EndComments\n"


@pytest.fixture(scope="module")
def eps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_eps(tmp_path_factory.mktemp("eps") / "hills.eps", width_pt=2400, height_pt=1800)


def hostile_eps(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(EPS_HEADER + body + "\n0 0 moveto 100 100 lineto stroke\nshowpage\n%%EOF\n")
    return path


def test_an_eps_from_ghostscript_is_measured_by_its_drawing(eps: Path) -> None:
    assert sniff(eps) == "eps"
    found = probe(eps, "eps")
    assert found.problem is None
    assert (found.width, found.height) == (2400, 1800)  # the drawing fills the page
    assert found.megapixels == pytest.approx(4.32, abs=0.01)
    assert found.size_from == "Ghostscript bbox"
    # Not Illustrator's: its level cannot be checked, and it says who made it.
    assert found.illustrator_version is None
    assert found.version_text.startswith("not checkable (made by GPL Ghostscript")


def test_the_illustrator_level_comes_from_the_creator_line(tmp_path: Path) -> None:
    text = (
        "%!PS-Adobe-3.1 EPSF-3.0\n%%Creator: Adobe Illustrator(R) 10.0\n%%AI8_CreatorVersion: 27.0.1\n"
        "%%BoundingBox: 0 0 2000 2000\n%%HiResBoundingBox: 0 0 2000 2000\n%%EndComments\n"
        "0 0 moveto 2000 0 lineto 2000 2000 lineto closepath fill\nshowpage\n%%EOF\n"
    )
    path = tmp_path / "ai10.eps"
    path.write_text(text)
    found = probe(path, "eps")
    assert found.problem is None and found.illustrator_version == 10.0
    assert found.version_text == "Illustrator 10" and found.megapixels == pytest.approx(4.0, abs=0.01)
    old_ai = tmp_path / "old.ai"
    old_ai.write_text(text.replace("EPSF-3.0", "").replace("10.0", "8.0"))
    assert sniff(old_ai) == "ai" and probe(old_ai, "ai").illustrator_version == 8.0


@pytest.mark.parametrize(
    ("width", "height", "view_box", "expected"),
    [
        ("2000", "2500", None, (2000, 2500)),  # plain numbers are px = pt
        ("200mm", "100mm", "0 0 10 5", (567, 283)),  # units win over the viewBox
        ("100%", "100%", "0 0 3000 2000", (3000, 2000)),  # relative size: the viewBox decides
    ],
)
def test_an_svg_is_measured_by_its_size_or_view_box(
    tmp_path: Path, width: str, height: str, view_box: str | None, expected: tuple[int, int]
) -> None:
    path = make_svg(tmp_path / "a.svg", width=width, height=height, view_box=view_box)
    found = probe(path, "svg")
    assert found.problem is None and (found.width, found.height) == expected and found.level == "1.1"


def test_hostile_postscript_is_refused_and_nothing_it_asks_for_is_done(tmp_path: Path) -> None:
    target = tmp_path / "written-by-the-eps"
    cases = {
        "writes.eps": f"({target}) (w) file (pwned) writestring",
        "tmp.eps": f"(/tmp/{tmp_path.name}-pwned) (w) file (pwned) writestring",
        "pipe.eps": f"(%pipe%touch {target}) (w) file",
        "delete.eps": f"({target}) deletefile",
    }
    reasons = {name: probe(hostile_eps(tmp_path, name, body), "eps").problem for name, body in cases.items()}
    assert (
        reasons["writes.eps"] and "Ghostscript refused to run it (/invalidfileaccess" in reasons["writes.eps"]
    )
    # -dSAFER alone lets PostScript write into the temporary folder: ours is a private, empty one.
    assert reasons["tmp.eps"] and "Ghostscript refused to run it" in reasons["tmp.eps"]
    assert reasons["pipe.eps"] == "runs PostScript that reaches outside the drawing (%pipe%); not taken"
    assert reasons["delete.eps"] == "runs PostScript that reaches outside the drawing (deletefile); not taken"
    assert not target.exists() and not Path(f"/tmp/{tmp_path.name}-pwned").exists()
    assert all("\n" not in reason for reason in reasons.values() if reason)


def test_postscript_that_never_ends_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vector, "GS_TIMEOUT_SECONDS", 0.5)
    found = probe(hostile_eps(tmp_path, "loop.eps", "{ } loop"), "eps")
    assert found.problem == "Ghostscript did not finish in 0.5 s (PostScript that may never end); not taken"


def test_a_cut_off_eps_is_refused_without_running_it(tmp_path: Path, eps: Path) -> None:
    cut = tmp_path / "cut.eps"
    cut.write_bytes(eps.read_bytes()[: eps.stat().st_size // 2])
    assert probe(cut, "eps").problem == (
        "cut off: the file ends before its %%EOF comment (the vector is incomplete); export it again"
    )
    dos = tmp_path / "dos.eps"  # a DOS EPS header pointing past the end of the file
    dos.write_bytes(b"\xc5\xd0\xd3\xc6" + struct.pack("<II", 30, 10_000) + b"\0" * 40)
    assert probe(dos, "eps").problem == "cut off: the file ends inside its DOS EPS header; export it again"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            '<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&xxe;</text></svg>',
            "declares XML entities or external references (EntitiesForbidden); not taken, nothing was fetched",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>',
            "holds a <script>; agencies refuse active SVG, not taken",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="alert(1)"/>',
            "holds an event handler (onload=); agencies refuse active SVG, not taken",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10"'
            ' height="10"><image xlink:href="file:///etc/passwd"/></svg>',
            "links to a file outside itself (file:///etc/passwd); agencies refuse active SVG, not taken",
        ),
        ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect', None),
    ],
    ids=["xxe", "script", "onload", "external-href", "cut-off"],
)
def test_hostile_svg_is_refused_with_one_line(tmp_path: Path, body: str, reason: str | None) -> None:
    path = tmp_path / "x.svg"
    path.write_text(body)
    found = probe(path, "svg").problem
    assert found is not None and "\n" not in found
    if reason is None:
        assert found.startswith("damaged or cut off: not well-formed XML")
    else:
        assert found == reason


def test_a_preview_must_be_a_whole_jpeg_or_png_of_a_sane_size(tmp_path: Path) -> None:
    good = tmp_path / "art.jpg"
    Image.new("RGB", (300, 200), (10, 20, 200)).save(good, "JPEG")
    assert (check_preview(good).width, check_preview(good).height, check_preview(good).problem) == (
        300,
        200,
        None,
    )
    link = tmp_path / "link.jpg"
    link.symlink_to(good)
    assert check_preview(link).problem == "preview link.jpg is a symbolic link, never followed"
    zipped = tmp_path / "zip.jpg"  # a zip (a zip bomb, for all we know) offered as the preview
    zipped.write_bytes(b"PK\x03\x04" + b"\0" * 200)
    assert check_preview(zipped).problem == "preview zip.jpg is not a JPEG or PNG (unknown content)"
    bomb = tmp_path / "bomb.png"  # a PNG whose header claims 100,000 × 100,000 pixels
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )
    problem = check_preview(bomb).problem
    assert (
        problem is not None and problem.startswith("preview bomb.png: ") and "decompression bomb" in problem
    )


def test_a_pdf_based_illustrator_file_is_measured_on_its_first_page(tmp_path: Path) -> None:
    drawing = tmp_path / "d.ps"
    drawing.write_text("%!PS\n0 0 moveto 3000 0 lineto 3000 2000 lineto closepath fill showpage\n")
    art = tmp_path / "art.ai"
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dNOPAUSE", "-dBATCH", "-sDEVICE=pdfwrite", "-dDEVICEWIDTHPOINTS=3000",
         "-dDEVICEHEIGHTPOINTS=2000", f"-sOutputFile={art}", str(drawing)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    found = probe(art, "ai")
    assert found.problem is None and (found.width, found.height) == (3000, 2000)
    assert found.saved_by is None  # no CreatorTool: the level is not checkable
    # Its XMP names the Illustrator that saved it (written here by ExifTool, appended at the end).
    subprocess.run(
        ["exiftool", "-q", "-overwrite_original", "-XMP-xmp:CreatorTool=Adobe Illustrator CS6 (Windows)", str(art)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    saved = probe(art, "ai")
    assert saved.problem is None and (saved.illustrator_version, saved.saved_by) == (None, 16.0)
    assert saved.version_text == "at most 16 (saved by Illustrator 16, its XMP CreatorTool)"
    cut = tmp_path / "cut.ai"
    cut.write_bytes(art.read_bytes()[:-200])
    assert probe(cut, "ai").problem is not None


def test_without_ghostscript_a_vector_waits_with_a_reason_instead_of_a_verdict(
    eps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stockbridge.errors import InputError

    monkeypatch.setattr(vector, "GHOSTSCRIPT", "/nonexistent/gs")
    with pytest.raises(InputError, match="Ghostscript \\(gs\\) is not installed") as caught:
        probe(eps, "eps")
    assert caught.value.hint == "install ghostscript (Debian: apt-get install ghostscript)"
