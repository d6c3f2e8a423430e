"""An FTP(S)-only run never loads paramiko: it is ~80 ms of start-up and ~16 MB of memory that a
contributor without an SFTP platform would pay on every `once` (issue 14, bench/README)."""

from __future__ import annotations

import subprocess
import sys

FTP_PATH = (
    "stockbridge.cli.main",
    "stockbridge.service.once",
    "stockbridge.delivery.prepare",
    "stockbridge.delivery.uploader",
    "stockbridge.transports.base",
    "stockbridge.transports.ftp",
    "stockbridge.transports.resume",
)


def test_the_ftp_path_does_not_import_paramiko() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {FTP_PATH!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'paramiko'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", f"paramiko loaded on the FTP path: {done.stdout.strip()}"
