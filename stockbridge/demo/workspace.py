"""``stockbridge demo``: the main job end to end, on this machine only.

Makes a throwaway workspace, generates sample images with real metadata, starts an FTPS server on
127.0.0.1 (self-signed certificate, trusted through ``ca_file`` as a real one would be through the
system store), writes a config for two platforms — a folder archive and an FTPS "agency" with
rules — runs the pipeline once, and prints file × platform → state and reason. It then checks the
results against what the rules say must happen and exits 1 if anything differs.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from stockbridge.cli.report import STATE_STYLES, status_payload
from stockbridge.config.loading import load_config
from stockbridge.config.models import Config
from stockbridge.demo.clip import ffmpeg_missing, make_clip
from stockbridge.demo.localserver import local_ftp_server
from stockbridge.demo.samples import make_image
from stockbridge.demo.vectors import make_eps
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.service.once import run_once

PASSWORD_ENV = "STOCKBRIDGE_DEMO_PASSWORD"

#: Photo-like keywords, in an editor's order; the benchmarks use them too.
SAMPLE_KEYWORDS = [
    "harbour",
    "boat",
    "sea",
    "water",
    "dawn",
    "morning",
    "travel",
    "coast",
    "fishing",
    "reflection",
    "calm",
    "blue",
    "europe",
    "summer",
    "nautical",
    "mooring",
    "pier",
    "village",
    "light",
    "sky",
    "quiet",
    "colour",
    "outdoor",
    "nobody",
    "scenic",
    "landscape",
    "peaceful",
    "holiday",
    "tourism",
    "marine",
    "vessel",
    "anchor",
    "rope",
    "dock",
    "wharf",
    "mast",
    "sail",
    "tide",
    "wave",
    "shore",
    "bay",
]


@dataclass(frozen=True)
class Sample:
    name: str
    width: int
    height: int
    title: str | None
    keywords: tuple[str, ...]
    expect: dict[str, str]  # platform → expected state
    note: str


SAMPLES = (
    Sample(
        "harbour_at_dawn.jpg",
        2000,
        1500,
        "Fishing boats in a calm harbour at dawn",
        tuple(SAMPLE_KEYWORDS[:12]),
        {"archive": "uploaded", "agency": "uploaded"},
        "fits every platform",
    ),
    Sample(
        "beach_hut_small.jpg",
        1200,
        900,
        "Blue beach hut",
        tuple(SAMPLE_KEYWORDS[:10]),
        {"archive": "uploaded", "agency": "rejected"},
        "1.1 MP: too small for the agency",
    ),
    Sample(
        "market_many_keywords.jpg",
        2000,
        1500,
        "Harbour market stalls",
        tuple(SAMPLE_KEYWORDS[:40]),
        {"archive": "uploaded", "agency": "uploaded"},
        "40 keywords: the agency's copy keeps the first 25",
    ),
    Sample(
        "forest_untitled.jpg",
        2000,
        1500,
        None,
        tuple(SAMPLE_KEYWORDS[:8]),
        {"archive": "uploaded", "agency": "held"},
        "no title: held for the agency",
    ),
)


#: The demo's vector pair: an EPS made by Ghostscript and its JPEG preview (issue 15).
VECTOR = "sunny_hills.eps"
VECTOR_PREVIEW = "sunny_hills.jpg"
#: The sample clip (when ffmpeg is there): native to both platforms, its metadata in no copy.
CLIP = "test_pattern.mp4"


def _serve_page(config: Config, console: Console) -> None:
    """The service, live, with its web page, until Ctrl-C: drop photos into the folder and watch."""
    from stockbridge.service.daemon import Service
    from stockbridge.web.server import page_url

    console.print(f"  web page: [bold]{page_url(config.web, config.state.dir)}[/]", soft_wrap=True)
    console.print(f"  drop photos into {config.watch.folder} to watch them go; Ctrl-C stops")
    service = Service(config)
    service.install_signal_handlers()
    service.run()


def _config_text(workspace: Path, port: int, ca_file: Path, web: bool = False) -> str:
    listen = f"127.0.0.1:{_page_port()}" if web else ""
    return f"""# Written by `stockbridge demo`.
[watch]
folder = "{workspace / "exports"}"
settle_seconds = 0.5

[state]
dir = "{workspace / "state"}"

[platforms.archive]
protocol = "folder"
path = "{workspace / "archive"}"

[platforms.archive.rules.vector]
formats = ["eps", "svg"]
travel = "pair"                   # the vector and its preview side by side

[platforms.agency]
protocol = "ftps"
host = "127.0.0.1"
port = {port}
username = "demo"
password = {{ env = "{PASSWORD_ENV}" }}
ca_file = "{ca_file}"
remote_dir = "/incoming"

[platforms.agency.rules]
formats = ["jpeg"]
min_megapixels = 2.0
keywords = {{ min = 5, max = 25 }}
title = {{ required = true, max_chars = 100 }}

[platforms.agency.rules.vector]
formats = ["eps"]
min_megapixels = 2.0
preview = "required"
travel = "zip"                    # one zip of the EPS and its JPEG preview

[platforms.agency.batch]
max_files = 10
max_wait_seconds = 2

[platforms.agency.rules.video]
containers = ["mp4", "mov"]
min_seconds = 2
max_seconds = 60
frame_rates = [24, 25, 29.97, 30]
max_clips_per_batch = 25

[platforms.archive.rules.video]
containers = ["mp4", "mov"]

[web]
listen = "{listen}"
"""


def _page_port() -> int:
    """8765 (the service's default) when it is free, else any free port."""
    import socket

    from stockbridge.demo.localserver import free_port

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 8765))
        except OSError:
            return free_port()
    return 8765


def run_demo(keep: Path | None = None, console: Console | None = None, web: bool = False) -> int:
    """``web``: after the run, keep the FTPS server up and serve the live service's web page
    until Ctrl-C (``stockbridge demo --web``)."""
    console = console or Console()
    started = time.monotonic()
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        workspace = keep.resolve()
        cleanup = False
    else:
        workspace = Path(tempfile.mkdtemp(prefix="stockbridge-demo-"))
        cleanup = True
    try:
        return _run(workspace, console, started, web)
    finally:
        if cleanup:
            shutil.rmtree(workspace, ignore_errors=True)


def _run(workspace: Path, console: Console, started: float, web: bool = False) -> int:
    exports = workspace / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    (workspace / "archive").mkdir(exist_ok=True)
    console.print(f"[bold]stockbridge demo[/] in {workspace}")
    with ExifTool() as exiftool:
        for index, sample in enumerate(SAMPLES):
            make_image(
                exports / sample.name,
                width=sample.width,
                height=sample.height,
                title=sample.title,
                description=f"Sample image: {sample.note}.",
                keywords=sample.keywords,
                exiftool=exiftool,
                seed=index + 1,
            )
        make_eps(
            exports / VECTOR,
            width_pt=2000,
            height_pt=1500,
            title="Sunny hills, a vector drawing",
            keywords=SAMPLE_KEYWORDS[:8],
            exiftool=exiftool,
        )
        make_image(exports / VECTOR_PREVIEW, width=1000, height=750, exiftool=exiftool, seed=9)
        clip = _sample_clip(exports, exiftool, console)
    (exports / "notes.jpg").write_text("not a picture, just text with a .jpg name\n")
    console.print(f"  made {len(SAMPLES)} sample images with metadata, and notes.jpg (text, not an image)")
    console.print(f"  made {VECTOR} (Ghostscript eps2write) and its preview {VECTOR_PREVIEW}")

    password = secrets.token_urlsafe(12)
    os.environ[PASSWORD_ENV] = password
    with local_ftp_server(workspace / "ftps-server", tls=True, username="demo", password=password) as server:
        assert server.ca_file is not None
        ca_file = workspace / "demo-ca.pem"
        shutil.copyfile(server.ca_file, ca_file)
        config_path = workspace / "config.toml"
        config_path.write_text(_config_text(workspace, server.port, ca_file, web))
        config_path.chmod(0o600)
        console.print(f"  FTPS server on 127.0.0.1:{server.port} (TLS required, certificate verified)")
        config = load_config(config_path)
        report = run_once(config)
        payload = status_payload(config)
        stores = server.commands.count("STOR")
        run_once(config)  # the same folder again: the ledger knows every file, nothing is re-sent
        resent = server.commands.count("STOR") - stores
        _print_table(console, payload)
        problems = _check(payload, workspace, clip)
        if web and not problems and not resent:
            _serve_page(config, console)

    if resent:
        problems.append(f"the second run sent {resent} file(s) again")
    else:
        console.print("  second run over the same folder: nothing sent again")
    elapsed = time.monotonic() - started
    if problems:
        for problem in problems:
            console.print(f"[red]unexpected:[/] {problem}")
        return 1
    console.print(
        f"[green]demo finished in {elapsed:.1f} s[/]: every file has one final answer per platform "
        f"({sum(report.counts.values())} jobs)."
    )
    console.print(
        "Try it yourself: `stockbridge demo --keep ./demo-workspace`, then "
        "`stockbridge status --config ./demo-workspace/config.toml`."
    )
    return 0


def _print_table(console: Console, payload: dict) -> None:
    table = Table(title="file × platform")
    table.add_column("file")
    table.add_column("platform")
    table.add_column("state")
    table.add_column("reason / remote name", overflow="fold")
    for entry in sorted(payload["files"], key=lambda item: Path(item["path"]).name):
        for platform, job in sorted(entry["platforms"].items()):
            style = STATE_STYLES.get(job["state"], "")
            detail = job["reason"] or (f"as {job['remote_name']}" if job["remote_name"] else "")
            if job.get("preview"):  # a vector's preview goes with it: beside it, or in its zip
                detail += f" + {job['preview']}"
            if job.get("changes"):
                detail += "; " + "; ".join(job["changes"])
            table.add_row(Path(entry["path"]).name, platform, f"[{style}]{job['state']}[/]", detail)
    console.print(table)


def _sample_clip(exports: Path, exiftool: ExifTool, console: Console) -> bool:
    """One short clip for both platforms, or one line saying why there is none."""
    missing = ffmpeg_missing()
    if missing is None:
        try:
            make_clip(
                exports / CLIP,
                title="Test pattern in motion",
                keywords=SAMPLE_KEYWORDS[:8],
                exiftool=exiftool,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            missing = f"ffmpeg failed ({exc})"
    if missing is not None:
        console.print(f"  {missing}: no sample clip (install ffmpeg to see a clip handled too)")
        return False
    console.print(f"  made {CLIP}, a 3 s clip (ffmpeg testsrc2) with title and keywords in its XMP")
    return True


def _check(payload: dict, workspace: Path, clip: bool = False) -> list[str]:
    """The demo proves itself: states as the rules say, files on the servers at full size."""
    problems = []
    by_name = {Path(entry["path"]).name: entry for entry in payload["files"]}
    expected = {sample.name: sample.expect for sample in SAMPLES}
    expected["notes.jpg"] = {"archive": "rejected", "agency": "rejected"}
    expected[VECTOR] = {"archive": "uploaded", "agency": "uploaded"}  # the preview goes with it
    if VECTOR_PREVIEW in by_name:
        problems.append(f"{VECTOR_PREVIEW} was taken as a photo; it is {VECTOR}'s preview")
    if not (workspace / "archive" / VECTOR_PREVIEW).is_file():
        problems.append(f"{VECTOR_PREVIEW} did not travel beside {VECTOR} to the archive")
    if clip:
        expected[CLIP] = {"archive": "uploaded", "agency": "uploaded"}
    for name, platforms in expected.items():
        entry = by_name.get(name)
        if entry is None:
            problems.append(f"{name} was not seen")
            continue
        for platform, state in platforms.items():
            got = entry["platforms"].get(platform, {}).get("state")
            if got != state:
                problems.append(f"{name} on {platform}: expected {state}, got {got}")
    for entry in payload["files"]:
        for platform, job in entry["platforms"].items():
            if job["state"] != "uploaded":
                continue
            where = workspace / ("archive" if platform == "archive" else "ftps-server/incoming")
            if not (where / job["remote_name"]).is_file():
                problems.append(f"{job['remote_name']} is not in {where}")
    many = SAMPLES[2]
    with ExifTool() as exiftool:
        sent = workspace / "ftps-server" / "incoming" / many.name
        archived = workspace / "archive" / many.name
        result = exiftool.read([sent, archived])
    for path, count in ((sent, 25), (archived, len(many.keywords))):
        metadata = result[path]
        got = "unreadable" if isinstance(metadata, Exception) else len(metadata.keywords)
        if got != count:
            problems.append(f"{path} carries {got} keywords, expected {count}")
    return problems
