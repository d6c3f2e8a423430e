"""The long crash test: `stockbridge run` SIGKILLed 100 times over 120 files, then checked.

Runs tests/e2e/test_crash.py with bigger numbers (CI runs it with 20 kills over 50 files) and prints
its summary: kills and where they landed, lost files, duplicate remote files, re-sent cut-off
transfers, time. Not part of ``make test``.

    .venv/bin/python bench/crash.py [--kills 100] [--files 120] [--seed N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--seed", type=int, default=None, help="repeat an earlier run (its seed is printed)")
    args = parser.parse_args()
    env = dict(os.environ)
    env["STOCKBRIDGE_CRASH_KILLS"] = str(args.kills)
    env["STOCKBRIDGE_CRASH_FILES"] = str(args.files)
    if args.seed is not None:
        env["STOCKBRIDGE_CRASH_SEED"] = str(args.seed)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-s",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/e2e/test_crash.py",
    ]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
