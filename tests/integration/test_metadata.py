"""metadata.ExifTool and samples.make_image against the real ExifTool program.

What a contributor would notice: the title, description and keywords an agency receives; their
non-ASCII characters; one damaged file not stopping the others; a hung exiftool not hanging the
service; nothing left behind next to a written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stockbridge.demo.samples import make_image as make_sample
from stockbridge.errors import MetadataError
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.metadata.fields import ImageMetadata
from tests.images import DEFAULT_KEYWORDS, DEFAULT_TITLE, MakeImage, require_exiftool

REPO = Path(__file__).resolve().parents[2]
NON_ASCII_KEYWORDS = ["Zürich", "東京", "Ελλάδα", "naïve café"]


@pytest.fixture
def blank(tmp_path: Path) -> Callable[..., Path]:
    """A small JPEG without any metadata (no ExifTool involved), one per call."""
    counter = iter(range(1000))

    def make(name: str | None = None, fmt: str = "jpeg") -> Path:
        index = next(counter)
        return make_sample(tmp_path / (name or f"blank{index}.jpg"), width=64, height=48, fmt=fmt, seed=index)

    return make


def cli_json(path: Path, *tags: str) -> dict[str, object]:
    """What a separate ``exiftool -j -G1`` process (not our code) reads from ``path``."""
    command = [require_exiftool(), "-j", "-G1", *(f"-{tag}" for tag in tags), str(path)]
    output = subprocess.run(command, capture_output=True, check=True, timeout=30).stdout
    return json.loads(output.decode("utf-8"), parse_int=str, parse_float=str)[0]


def cli_bytes(path: Path, tag: str) -> bytes:
    """The raw bytes of one tag (``exiftool -b``), as an agency's parser would see them."""
    command = [require_exiftool(), "-b", f"-{tag}", str(path)]
    return subprocess.run(command, capture_output=True, check=True, timeout=30).stdout


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_one(exiftool: ExifTool, path: Path) -> ImageMetadata:
    result = exiftool.read([path])[path]
    assert isinstance(result, ImageMetadata), result
    return result


# ---------------------------------------------------------------------- read priority

PRIORITY_CASES = [
    # (field, tags in the file, what stockbridge reads)
    (
        "title",
        {"XMP-dc:Title": "XMP title", "IPTC:ObjectName": "IPTC name", "IPTC:Headline": "Headline"},
        "XMP title",
    ),
    ("title", {"IPTC:ObjectName": "IPTC name", "IPTC:Headline": "Headline"}, "IPTC name"),
    ("title", {"IPTC:Headline": "Headline"}, "Headline"),
    ("title", {"XMP-dc:Title": "   ", "IPTC:ObjectName": "IPTC name"}, "IPTC name"),
    ("title", {"XMP-dc:Description": "only a description"}, None),
    (
        "description",
        {"XMP-dc:Description": "XMP", "IPTC:Caption-Abstract": "IPTC", "EXIF:ImageDescription": "EXIF"},
        "XMP",
    ),
    ("description", {"IPTC:Caption-Abstract": "IPTC", "EXIF:ImageDescription": "EXIF"}, "IPTC"),
    ("description", {"EXIF:ImageDescription": "EXIF"}, "EXIF"),
    (
        "keywords",
        {"XMP-dc:Subject": ["xmp one", "xmp two"], "IPTC:Keywords": ["iptc"]},
        ("xmp one", "xmp two"),
    ),
    ("keywords", {"IPTC:Keywords": ["iptc one", "iptc two"]}, ("iptc one", "iptc two")),
    ("keywords", {"XMP-dc:Title": "no keywords anywhere"}, ()),
]


@pytest.mark.parametrize(
    ("field", "tags", "expected"),
    PRIORITY_CASES,
    ids=[f"{field}-from-{'+'.join(tags)}" for field, tags, _ in PRIORITY_CASES],
)
def test_each_field_is_read_from_the_first_non_empty_tag_in_priority_order(
    exiftool: ExifTool, blank: Callable[..., Path], field: str, tags: dict, expected: object
) -> None:
    path = blank()
    exiftool.write(path, tags)
    assert getattr(read_one(exiftool, path), field) == expected


def test_keywords_keep_their_order_and_lose_case_insensitive_duplicates_and_blanks(
    exiftool: ExifTool, blank: Callable[..., Path]
) -> None:
    path = blank()
    written = ["Sunset", "beach", "SUNSET", "  Beach ", "Zürich", "ZÜRICH", "1990", "007", "1.50", "   "]
    exiftool.write(path, {"XMP-dc:Subject": written})
    assert read_one(exiftool, path).keywords == ("Sunset", "beach", "Zürich", "1990", "007", "1.50")


@pytest.mark.parametrize("value", ["1990", "007", "1.50", "1e3"])
def test_a_single_numeric_keyword_or_title_comes_back_as_the_text_written(
    exiftool: ExifTool, blank: Callable[..., Path], value: str
) -> None:
    path = blank()
    exiftool.write(path, {"IPTC:Keywords": [value], "IPTC:ObjectName": value})
    meta = read_one(exiftool, path)
    assert meta.keywords == (value,)
    assert meta.title == value


@pytest.mark.parametrize(("fmt", "file_type"), [("jpeg", "jpeg"), ("png", "png"), ("tiff", "tiff")])
def test_size_and_type_are_read_for_every_accepted_format(
    exiftool: ExifTool, make_image: MakeImage, fmt: str, file_type: str
) -> None:
    path = make_image(f"picture.{fmt}", fmt=fmt, width=640, height=480)
    meta = read_one(exiftool, path)
    assert (meta.width, meta.height, meta.file_type) == (640, 480, file_type)
    assert meta.megapixels == pytest.approx(0.3072)
    assert meta.title == DEFAULT_TITLE
    assert meta.keywords == DEFAULT_KEYWORDS


# ---------------------------------------------------------------------- UTF-8

_ROUND_TRIP = textwrap.dedent(
    """
    import json, locale, sys
    from pathlib import Path
    from stockbridge.metadata.exiftool import ExifTool

    path, words = Path(sys.argv[1]), json.loads(sys.argv[2])
    with ExifTool() as exiftool:
        exiftool.write(path, {"IPTC:Keywords": words, "XMP-dc:Subject": words, "IPTC:ObjectName": words[0]})
        meta = exiftool.read([path])[path]
    print(json.dumps({"encoding": locale.getpreferredencoding(False), "keywords": meta.keywords}))
    """
)


@pytest.mark.parametrize("where", ["in process", "under LANG=C"])
def test_non_ascii_keywords_round_trip_through_iptc_and_xmp(
    exiftool: ExifTool, blank: Callable[..., Path], where: str
) -> None:
    path = blank()
    if where == "in process":
        exiftool.write(
            path,
            {
                "IPTC:Keywords": NON_ASCII_KEYWORDS,
                "XMP-dc:Subject": NON_ASCII_KEYWORDS,
                "IPTC:ObjectName": "Zürich",
            },
        )
        assert read_one(exiftool, path).keywords == tuple(NON_ASCII_KEYWORDS)
    else:
        # PYTHONUTF8=0 and PYTHONCOERCECLOCALE=0 keep Python from rescuing the C locale (PEP 538,
        # PEP 540): the preferred encoding is then ASCII, as for a service under a bare systemd.
        env = {**os.environ, "LANG": "C", "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
        words = json.dumps(NON_ASCII_KEYWORDS)  # ASCII-only on the command line
        done = subprocess.run(
            [sys.executable, "-c", _ROUND_TRIP, str(path), words],
            env=env,
            cwd=REPO,
            capture_output=True,
            timeout=60,
            check=True,
        )
        answer = json.loads(done.stdout.decode("ascii").strip().splitlines()[-1])
        assert answer["encoding"].lower() in {"ascii", "ansi_x3.4-1968", "us-ascii"}, "the locale was not C"
        assert answer["keywords"] == NON_ASCII_KEYWORDS
    # Checked by a separate exiftool, byte for byte, in both places agencies read keywords.
    tags = cli_json(path, "IPTC:Keywords", "XMP-dc:Subject", "IPTC:CodedCharacterSet", "IPTC:ObjectName")
    assert tags["IPTC:Keywords"] == NON_ASCII_KEYWORDS
    assert tags["XMP-dc:Subject"] == NON_ASCII_KEYWORDS
    assert tags["IPTC:CodedCharacterSet"] == "UTF8"
    assert cli_bytes(path, "IPTC:ObjectName") == "Zürich".encode()


def test_iptc_values_over_their_byte_limit_are_cut_between_characters_and_xmp_keeps_them_whole(
    exiftool: ExifTool, blank: Callable[..., Path]
) -> None:
    path = blank()
    long_keyword = "東" * 30  # 90 bytes in UTF-8; IPTC Keywords hold 64
    warnings = exiftool.write(path, {"IPTC:Keywords": [long_keyword], "XMP-dc:Subject": [long_keyword]})
    iptc = cli_bytes(path, "IPTC:Keywords")
    assert iptc.decode("utf-8") == "東" * 21  # 63 bytes: the 22nd character would not fit whole
    assert cli_json(path, "XMP-dc:Subject")["XMP-dc:Subject"] == long_keyword
    assert any("IPTC:Keywords" in warning and "64" in warning for warning in warnings)


# ---------------------------------------------------------------------- injection and refusals

INJECTIONS = [
    ("a title with a newline", {"XMP-dc:Title": "sunset\n-all="}),
    ("a keyword with a newline", {"IPTC:Keywords": ["ok", "sunset\n-all="]}),
    ("a description with a carriage return", {"XMP-dc:Description": "fine\r-all="}),
    ("a title with a NUL", {"IPTC:ObjectName": "nul\0-all="}),
    ("a tag outside the allowlist", {"FileName": "moved.jpg"}),
    ("an option as a tag", {"-all": ""}),
    ("an assignment smuggled in a tag name", {"XMP-dc:Title=x\n-all": "y"}),
    ("several values for a one-value tag", {"XMP-dc:Title": ["one", "two"]}),
]


@pytest.mark.parametrize("tags", [tags for _, tags in INJECTIONS], ids=[name for name, _ in INJECTIONS])
def test_a_refused_write_raises_and_leaves_the_file_untouched(
    exiftool: ExifTool, make_image: MakeImage, tags: dict
) -> None:
    path = make_image()
    before_bytes, before = digest(path), read_one(exiftool, path)
    with pytest.raises(MetadataError):
        exiftool.write(path, tags)
    assert digest(path) == before_bytes
    assert read_one(exiftool, path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_file_name_with_a_newline_is_refused_for_reading_and_writing(
    exiftool: ExifTool, blank: Callable[..., Path]
) -> None:
    evil = blank("evil\n-all=.jpg")
    with pytest.raises(MetadataError, match="line break"):
        exiftool.write(evil, {"XMP-dc:Title": "x"})
    assert isinstance(exiftool.read([evil])[evil], MetadataError)


def test_a_relative_file_name_that_looks_like_an_option_is_taken_as_a_file(
    exiftool: ExifTool, blank: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = blank("-if 1.jpg")
    other = blank("other.jpg")
    untouched = digest(other)
    monkeypatch.chdir(path.parent)
    exiftool.write(Path("-if 1.jpg"), {"XMP-dc:Title": "literal"})
    assert read_one(exiftool, path).title == "literal"
    assert digest(other) == untouched


def test_writing_leaves_no_backup_or_temporary_file_next_to_the_image(
    exiftool: ExifTool, make_image: MakeImage
) -> None:
    path = make_image()
    exiftool.write(path, {"XMP-dc:Title": "new", "IPTC:ObjectName": "new", "IPTC:Keywords": ["a", "b"]})
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert read_one(exiftool, path).title == "new"


def test_an_empty_value_deletes_the_tag(exiftool: ExifTool, make_image: MakeImage) -> None:
    path = make_image()
    exiftool.write(
        path, {"XMP-dc:Subject": [], "IPTC:Keywords": [], "XMP-dc:Title": "", "IPTC:ObjectName": ""}
    )
    meta = read_one(exiftool, path)
    assert (meta.title, meta.keywords) == (None, ())


def test_writing_into_a_file_exiftool_cannot_write_gives_exiftools_reason(
    exiftool: ExifTool, tmp_path: Path
) -> None:
    fake = tmp_path / "notes.jpg"
    fake.write_text("not a photo\n")
    with pytest.raises(MetadataError, match="Not a valid JPG"):
        exiftool.write(fake, {"XMP-dc:Title": "x"})
    assert fake.read_text() == "not a photo\n"


def test_an_exiftool_config_file_in_its_directory_or_home_is_never_run(
    tmp_path: Path, blank: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_exiftool()
    marker = tmp_path / "config-ran"
    home = tmp_path / "home"
    home.mkdir()
    (home / ".ExifTool_config").write_text(f"open(my $f, '>', '{marker}'); close($f); 1;\n")
    monkeypatch.setenv("EXIFTOOL_HOME", str(home))
    monkeypatch.setenv("HOME", str(home))
    path = blank()
    with ExifTool(cwd=home) as session:
        assert read_one(session, path).width == 64
    assert not marker.exists()


# ---------------------------------------------------------------------- batches and bad files


def test_a_damaged_file_in_a_batch_gets_its_own_error_and_the_others_read_fine(
    exiftool: ExifTool, make_image: MakeImage, tmp_path: Path
) -> None:
    first = make_image("first.jpg", title="First")
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(os.urandom(4096))
    empty = tmp_path / "empty.jpg"
    empty.touch()
    header_only = tmp_path / "header-only.jpg"
    header_only.write_bytes(first.read_bytes()[:20])
    folder = tmp_path / "a-folder.jpg"
    folder.mkdir()
    missing = tmp_path / "missing.jpg"
    last = make_image("last.jpg", title="Last")

    results = exiftool.read([first, garbage, empty, header_only, folder, missing, last])

    assert list(results) == [first, garbage, empty, header_only, folder, missing, last]
    assert isinstance(results[first], ImageMetadata) and results[first].title == "First"
    assert isinstance(results[last], ImageMetadata) and results[last].title == "Last"
    for bad in (garbage, empty, folder, missing):
        assert isinstance(results[bad], MetadataError), bad
        assert bad.name in results[bad].message
    assert "format error" in results[garbage].message
    # A JPEG cut inside its header is still a JPEG to ExifTool, but without a size, and it says so.
    cut = results[header_only]
    assert isinstance(cut, ImageMetadata)
    assert (cut.width, cut.height, cut.file_type) == (None, None, "jpeg")
    assert cut.warnings


def test_many_files_are_read_in_batches_and_each_answer_belongs_to_its_file(
    exiftool: ExifTool, blank: Callable[..., Path], tmp_path: Path
) -> None:
    session = ExifTool(cwd=tmp_path, batch_size=4)
    paths = [blank() for _ in range(10)]
    for index, path in enumerate(paths):
        exiftool.write(path, {"XMP-dc:Title": f"title {index}"})
    with session:
        results = session.read(paths + paths[:2])  # repeats are answered once
    assert list(results) == paths
    assert [getattr(results[path], "title", None) for path in paths] == [f"title {i}" for i in range(10)]


def test_threads_sharing_one_exiftool_each_get_their_own_files_answers(
    exiftool: ExifTool, blank: Callable[..., Path]
) -> None:
    paths = [blank() for _ in range(6)]
    for index, path in enumerate(paths):
        exiftool.write(path, {"XMP-dc:Title": f"title {index}"})
    mismatches: list[str] = []

    def worker(offset: int) -> None:
        for round_ in range(8):
            index = (offset + round_) % len(paths)
            result = exiftool.read([paths[index]])[paths[index]]
            if getattr(result, "title", None) != f"title {index}":
                mismatches.append(f"{paths[index].name}: {result}")

    threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert mismatches == []


def test_exiftool_is_replaced_after_serving_its_quota_of_calls(
    blank: Callable[..., Path], tmp_path: Path
) -> None:
    require_exiftool()
    path = blank()
    pids = []
    with ExifTool(cwd=tmp_path, recycle_after=2) as session:
        for _ in range(5):
            assert read_one(session, path).width == 64
            pids.append(session.pid)
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_an_exiftool_killed_between_calls_is_restarted_for_the_next_one(
    blank: Callable[..., Path], tmp_path: Path
) -> None:
    require_exiftool()
    path = blank()
    with ExifTool(cwd=tmp_path) as session:
        first = session.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        _wait_until_gone_or_zombie(first)
        assert read_one(session, path).width == 64
        assert session.pid not in (None, first)


# ---------------------------------------------------------------------- timeouts

_FAKE_EXIFTOOL = """#!{perl}
# A fake exiftool for the timeout tests. It records its pid and starts a helper process that
# holds its stdout and stderr open (as a real exiftool's child could), answers -ver, hangs on a
# command on a file whose name starts with "hang" (or on everything in "start" mode), and answers
# anything else with a minimal JSON entry per absolute path.
use strict;
use warnings;
$| = 1;
my $mode = '{mode}';
sub record {{ open(my $f, '>>', '{pids}') or die; print $f "@_\\n"; close($f); }}
record("main", $$);
my $helper = fork();
if ($helper == 0) {{ exec('sleep', '300'); }}
record("helper", $helper);
my @args;
while (my $line = <STDIN>) {{
    chomp $line;
    if ($line =~ /^-execute(\\d+)$/) {{
        my $n = $1;
        my @files = grep {{ m{{^/}} }} @args;
        if ($mode eq 'start' || grep {{ m{{/hang[^/]*$}} }} @files) {{
            # A real exiftool killed mid-write leaves its temporary file behind.
            for my $file (@files) {{ open(my $t, '>', "${{file}}_exiftool_tmp"); close($t); }}
            sleep 1 while 1;
        }}
        if (grep {{ $_ eq '-ver' }} @args) {{ print STDOUT "12.57\\n"; }}
        else {{ print STDOUT '[' . join(',', map {{ qq({{"SourceFile": "$_", "File:FileType": "JPEG"}}) }} @files) . "]\\n"; }}
        print STDOUT "{{ready$n}}\\n";
        print STDERR "=0=post$n\\n";
        @args = ();
    }} elsif ($line eq 'False' && @args && $args[-1] eq '-stay_open') {{
        exit 0;
    }} else {{
        push @args, $line;
    }}
}}
"""

TIMEOUT = 1.0


def _fake_exiftool(directory: Path, mode: str) -> tuple[Path, Path]:
    perl = shutil.which("perl")
    if perl is None:
        pytest.skip("perl is not installed (ExifTool itself needs it; CI has it)")
    pids = directory / "pids"
    script = directory / f"fake-exiftool-{mode}"
    script.write_text(_FAKE_EXIFTOOL.format(perl=perl, mode=mode, pids=pids))
    script.chmod(0o755)
    return script, pids


def _recorded(pids: Path) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {"main": [], "helper": []}
    for line in pids.read_text().splitlines():
        role, pid = line.split()
        found[role].append(int(pid))
    return found


def _state(pid: int) -> str | None:
    """The process state letter from /proc ("R", "S", "Z", ...), or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def _wait_until_gone_or_zombie(pid: int, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while _state(pid) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.02)


def _assert_nothing_left(pids: Path) -> None:
    recorded = _recorded(pids)
    # Our own children must be reaped: not even a zombie. Helpers were re-parented when their
    # parent died; whoever adopted them reaps them, so for those "not running" is what we own.
    assert [pid for pid in recorded["main"] if _state(pid) is not None] == []
    for pid in recorded["helper"]:
        _wait_until_gone_or_zombie(pid)
    assert [pid for pid in recorded["helper"] if _state(pid) not in (None, "Z")] == []


@pytest.fixture
def needs_proc() -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("process checks read /proc (Linux)")


@pytest.mark.usefixtures("needs_proc")
def test_a_file_exiftool_hangs_on_fails_after_one_retry_and_leaves_no_process(
    tmp_path: Path, blank: Callable[..., Path]
) -> None:
    fake, pids = _fake_exiftool(tmp_path, "read")
    hang = blank("hang.jpg")
    session = ExifTool(cwd=tmp_path, executable=fake, timeout=TIMEOUT, start_timeout=5)
    started = time.monotonic()
    result = session.read([hang])[hang]
    elapsed = time.monotonic() - started
    assert isinstance(result, MetadataError)
    assert "hang.jpg" in result.message and "did not answer within 1 s" in result.message
    assert elapsed < 30, "waited for the hung ExifTool instead of giving up after its timeout"
    assert len(_recorded(pids)["main"]) == 2  # one try, one retry on a fresh process (decisions.md E-1)
    _assert_nothing_left(pids)  # before close(): the failed call cleaned up after itself
    session.close()


@pytest.mark.usefixtures("needs_proc")
def test_a_hanging_file_in_a_batch_does_not_stop_the_others(
    tmp_path: Path, blank: Callable[..., Path]
) -> None:
    fake, pids = _fake_exiftool(tmp_path, "read")
    hang, fine = blank("hang.jpg"), blank("fine.jpg")
    with ExifTool(cwd=tmp_path, executable=fake, timeout=TIMEOUT, start_timeout=5) as session:
        results = session.read([hang, fine])
        assert isinstance(results[hang], MetadataError)
        assert isinstance(results[fine], ImageMetadata) and results[fine].file_type == "jpeg"
    _assert_nothing_left(pids)


@pytest.mark.usefixtures("needs_proc")
def test_a_write_that_hangs_fails_naming_the_file_and_leaves_no_temporary_file(
    tmp_path: Path, blank: Callable[..., Path]
) -> None:
    fake, pids = _fake_exiftool(tmp_path, "read")
    path = blank("hang.jpg")
    before = digest(path)
    session = ExifTool(cwd=tmp_path, executable=fake, timeout=TIMEOUT, start_timeout=5)
    with session, pytest.raises(MetadataError, match=r"hang\.jpg"):
        session.write(path, {"XMP-dc:Title": "x"})
    assert digest(path) == before
    assert not Path(f"{path}_exiftool_tmp").exists()
    _assert_nothing_left(pids)


@pytest.mark.usefixtures("needs_proc")
def test_an_exiftool_that_never_starts_fails_within_the_start_timeout(tmp_path: Path) -> None:
    fake, pids = _fake_exiftool(tmp_path, "start")
    session = ExifTool(cwd=tmp_path, executable=fake, start_timeout=TIMEOUT)
    started = time.monotonic()
    with pytest.raises(MetadataError, match="did not start"):
        session.start()
    assert time.monotonic() - started < 30, "waited for ExifTool instead of giving up after the start timeout"
    _assert_nothing_left(pids)


@pytest.mark.usefixtures("needs_proc")
def test_an_exiftool_spawned_ahead_that_never_answers_fails_as_a_plain_start_does(tmp_path: Path) -> None:
    # `once` spawns ExifTool before its imports and waits for it later (issue 14): the same two
    # attempts, the same error, nothing left behind.
    fake, pids = _fake_exiftool(tmp_path, "start")
    session = ExifTool(cwd=tmp_path, executable=fake, start_timeout=TIMEOUT)
    session.spawn()
    with pytest.raises(MetadataError, match="did not start"):
        session.start()
    assert len(_recorded(pids)["main"]) == 2
    _assert_nothing_left(pids)


def test_a_missing_exiftool_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MetadataError) as caught:
        ExifTool(cwd=tmp_path, executable=tmp_path / "no-exiftool-here").start()
    assert "not found" in caught.value.message
    assert "libimage-exiftool-perl" in (caught.value.hint or "")


# ---------------------------------------------------------------------- samples


def test_a_sample_carries_its_title_description_and_keywords_in_xmp_and_iptc(
    exiftool: ExifTool, tmp_path: Path
) -> None:
    path = make_sample(
        tmp_path / "sample.jpg",
        width=300,
        height=200,
        title="Red boat",
        description="A red boat on a lake",
        keywords=["boat", "lake", "Boat"],
        exiftool=exiftool,
    )
    tags = cli_json(
        path, "XMP-dc:Title", "IPTC:ObjectName", "XMP-dc:Description", "IPTC:Caption-Abstract", "XMP-dc:Subject",
        "IPTC:Keywords", "File:ImageWidth", "File:ImageHeight",
    )  # fmt: skip
    assert tags["XMP-dc:Title"] == tags["IPTC:ObjectName"] == "Red boat"
    assert tags["XMP-dc:Description"] == tags["IPTC:Caption-Abstract"] == "A red boat on a lake"
    assert tags["XMP-dc:Subject"] == tags["IPTC:Keywords"] == ["boat", "lake", "Boat"]  # as given
    assert (tags["File:ImageWidth"], tags["File:ImageHeight"]) == ("300", "200")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample.jpg"]  # no temporary left behind


def test_samples_are_the_same_bytes_for_a_seed_and_differ_between_seeds(
    exiftool: ExifTool, tmp_path: Path
) -> None:
    def sample(name: str, seed: int) -> str:
        path = make_sample(
            tmp_path / name, width=320, height=240, title="T", keywords=["k"], exiftool=exiftool, seed=seed
        )
        return digest(path)

    assert sample("a.jpg", seed=7) == sample("b.jpg", seed=7)
    assert sample("c.jpg", seed=8) != sample("a.jpg", seed=7)


def test_the_image_fixture_gives_each_image_of_a_test_its_own_content(make_image: MakeImage) -> None:
    first, second = make_image("one.jpg"), make_image("two.jpg")
    assert digest(first) != digest(second)


def test_exiftool_inherits_no_password_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENCY_PASSWORD", "env-secret-for-agency")
    monkeypatch.setenv("EXIFTOOL_HOME", str(tmp_path))
    with ExifTool(cwd=tmp_path) as tool:
        image = make_sample(tmp_path / "a.jpg", width=64, height=48, exiftool=tool)
        tool.read([image])
        assert tool.pid is not None
        environ = Path(f"/proc/{tool.pid}/environ").read_bytes().decode("utf-8", "replace")
    assert "env-secret-for-agency" not in environ and "EXIFTOOL_HOME" not in environ
    assert "PATH=" in environ
