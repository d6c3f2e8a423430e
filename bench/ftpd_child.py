"""pyftpdlib in its own process, so a client in the benchmark's process does not share a GIL with it.

``python -m bench.ftpd_child ROOT TLS CERT KEY LIMIT`` prints ``{"port": N}`` once the server
listens on 127.0.0.1, then serves until its stdin closes or it gets SIGTERM (the parent holds the
pipe and stops it by PID). TLS is ``1`` or ``0``; CERT, KEY and LIMIT may be ``-``.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path

from stockbridge.demo.localserver import local_ftp_server

USERNAME = "bench"
PASSWORD = "bench-pass"


def main(argv: list[str]) -> int:
    root, tls, cert, key, limit = argv
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    # One INFO line per command would be the server's own work in every timing (vsftpd runs with
    # xferlog_enable=NO in these benchmarks).
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    with local_ftp_server(
        Path(root),
        tls=tls == "1",
        username=USERNAME,
        password=PASSWORD,
        certfile=None if cert == "-" else Path(cert),
        keyfile=None if key == "-" else Path(key),
        upload_limit=None if limit == "-" else int(limit),
    ) as server:
        print(json.dumps({"port": server.port}), flush=True)
        sys.stdin.read()  # until the parent closes the pipe (or exits)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
