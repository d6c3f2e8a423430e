"""Hostile and malformed configuration files, through the real CLI (issue 4).

Each row is one file a user (or an attacker, or a bad editor) might hand to ``stockbridge check``,
and what they must see: exit code 2, the file's name, the key path or line and column, what to do,
no Python traceback, and never the secret the case carries.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from stockbridge.cli.main import EXIT_USAGE, main

REPO = Path(__file__).resolve().parents[2]

#: Used as the password in every case that carries one; must never reach the output.
SECRET = "Tr0ub4dor-and-3-hostile"
ENV_NAME = "SB_HOSTILE_PASSWORD"

HEAD = """\
[watch]
folder = "exports"
settle_seconds = 0.1

[state]
dir = "state"
"""

AGENCY = """\
[platforms.agency]
protocol = "ftps"
host = "ftp.example.com"
username = "me"
password = { env = "SB_HOSTILE_PASSWORD" }
"""

VALID = HEAD + "\n" + AGENCY


def agency(**changes: str) -> str:
    """VALID with some lines of the agency table replaced or added (TOML right-hand sides)."""
    lines = AGENCY.splitlines()
    for key, value in changes.items():
        lines = [line for line in lines if not line.startswith(f"{key} =")]
        lines.append(f"{key} = {value}")
    return HEAD + "\n" + "\n".join(lines) + "\n"


Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    id: str
    content: str | bytes
    #: Fragments the output must hold: where (key path or line/column) and what to do.
    expect: tuple[str, ...]
    exit_code: int = EXIT_USAGE
    setup: Setup | None = None
    #: Not to be run as root (root reads any file).
    #: A value that must not appear in the output (besides SECRET, checked always).
    secret: str | None = None


def unset_env(_: Path) -> None:
    os.environ.pop(ENV_NAME, None)


def mkdir(name: str) -> Setup:
    return lambda tmp: (tmp / name).mkdir(parents=True, exist_ok=True)


def write_file(name: str, data: bytes, mode: int = 0o600) -> Setup:
    def setup(tmp: Path) -> None:
        (tmp / name).write_bytes(data)
        (tmp / name).chmod(mode)

    return setup


def remove_exports(tmp: Path) -> None:
    (tmp / "exports").rmdir()


def exports_is_a_file(tmp: Path) -> None:
    (tmp / "exports").rmdir()
    (tmp / "exports").write_text("not a folder\n")


CASES = [
    # ---- TOML syntax: line and column, and where to look -------------------------------------
    Case(
        "unclosed-string", agency(password=f'"{SECRET}'), ("line 12, column 36", "fix the file at that line")
    ),
    Case(
        "unclosed-table-header",
        HEAD + "[platforms.agency\nprotocol = 'ftp'\n",
        ("Expected ']'", "line 7, column 18", "fix the file"),
    ),
    Case(
        "missing-equals",
        HEAD + "[platforms.agency]\nprotocol 'ftps'\n",
        ("Expected '='", "line 8, column 10", "fix the file"),
    ),
    Case(
        "duplicate-key",
        agency(host='"a.example.com"\nhost = "b.example.com"'),
        ("already set above", "keep one", "line 13"),
    ),
    Case("duplicate-table", VALID + "\n" + AGENCY, ("declared twice", "merge the two", "line 14")),
    Case(
        "nul-byte",
        VALID.replace("ftp.example.com", "ftp\0example.com"),
        ("line 10, column 12", "fix the file"),
    ),
    # ---- wrong types: the key path, what was expected, what was found ----------------------
    Case(
        "string-port",
        agency(port='"21"'),
        ('platforms.agency.port: expected an integer, got "21"', "without quotes"),
    ),
    Case("list-where-a-table-is-expected", "watch = ['exports']\n", ("watch: expected a table, got a list",)),
    Case(
        "platforms-as-array-of-tables",
        HEAD + "[[platforms]]\nprotocol = 'ftp'\n",
        ("platforms: expected a table, got a list",),
    ),
    Case(
        "boolean-timeout",
        agency(timeout_seconds="true"),
        ("platforms.agency.timeout_seconds: expected a number, got true",),
    ),
    Case(
        "password-as-a-number",
        agency(password="31415926535"),
        ("platforms.agency.password: expected a string or a table, got an integer (not shown",),
        secret="31415926535",
    ),
    # ---- numbers out of range ---------------------------------------------------------------
    Case(
        "port-0",
        agency(port="0"),
        ("platforms.agency.port: input should be greater than or equal to 1, got 0",),
    ),
    Case(
        "port-70000",
        agency(port="70000"),
        ("platforms.agency.port: input should be less than or equal to 65535",),
    ),
    Case(
        "negative-timeout",
        agency(timeout_seconds="-5"),
        ("timeout_seconds: input should be greater than 0, got -5",),
    ),
    Case(
        "huge-timeout",
        agency(timeout_seconds="1e300"),
        ("timeout_seconds: input should be less than or equal to 3600",),
    ),
    Case(
        "nan-timeout",
        agency(timeout_seconds="nan"),
        ("timeout_seconds: input should be a finite number, got nan",),
    ),
    Case(
        "inf-settle-time",
        HEAD.replace("0.1", "inf") + "\n" + AGENCY,
        ("watch.settle_seconds: input should be a finite number",),
    ),
    # ---- unknown keys -----------------------------------------------------------------------
    Case(
        "misspelled-key",
        agency(timout_seconds="10"),
        ('platforms.agency.timout_seconds: unknown key; did you mean "timeout_seconds"?',),
    ),
    Case(
        "misspelled-table",
        VALID + "\n[watchh]\nfolder = 'x'\n",
        ('watchh: unknown key; did you mean "watch"?',),
    ),
    # ---- names and strings: control characters never reach the terminal raw ------------------
    Case(
        "platform-name-with-space",
        HEAD + '[platforms."my agency"]\nprotocol = "ftp"\n',
        ('platforms."my agency": a platform name may hold only letters, digits',),
    ),
    Case(
        "platform-name-with-newline",
        HEAD + '[platforms."a\\nb"]\nprotocol = "ftp"\n',
        ('platforms."a\\nb": a platform name may hold only',),
    ),
    Case(
        "platform-name-with-terminal-escape",
        HEAD + '[platforms."a\\u001b[2Jb"]\nprotocol = "ftp"\n',
        ('platforms."a\\u001b[2Jb": a platform name may hold only',),
    ),
    Case(
        "schedule-window-with-terminal-escape",
        agency(schedule='{ windows = ["\\u001b[2J"] }'),
        ("platforms.agency.schedule.windows", 'expected "HH:MM-HH:MM"', "\\x1b[2J"),
    ),
    Case(
        "remote-dir-dotdot",
        agency(remote_dir='"/uploads/../../etc"'),
        ('platforms.agency.remote_dir: must not contain ".."', 'e.g. "/uploads"'),
    ),
    Case(
        "editorial-remote-dir-dotdot",
        agency(rules='{ editorial = { remote_dir = "../editorial" } }'),
        ('platforms.agency.rules.editorial.remote_dir: must not contain ".."',),
    ),
    Case(
        "remote-dir-nul",
        agency(remote_dir='"/up\\u0000loads"'),
        ("platforms.agency.remote_dir: must not contain line breaks or NUL",),
    ),
    Case(
        "remote-dir-newline",
        agency(remote_dir='"/uploads\\nDELE x"'),
        ("platforms.agency.remote_dir: must not contain line breaks or NUL",),
    ),
    Case(
        "host-with-space",
        agency(host='"ftp.example .com"'),
        ("platforms.agency.host: must not contain spaces", "give only the server name"),
    ),
    Case(
        "host-with-newline",
        agency(host='"ftp.example.com\\n"'),
        ("platforms.agency.host: must not contain spaces or line breaks",),
    ),
    Case(
        "host-user-at-host-port",
        agency(host='"me@ftp.example.com:2121"'),
        (
            "platforms.agency.host: give only the server name",
            "the login goes in username",
            "the port in port",
        ),
    ),
    Case(
        "host-with-password-pasted-in",
        agency(host=f'"me:{SECRET}@ftp.example.com"'),
        ("platforms.agency.host: give only the server name",),
    ),
    Case(
        "host-url",
        agency(host='"ftps://ftp.example.com/"'),
        ('platforms.agency.host: give only the server name, without "ftp://"',),
    ),
    Case(
        "five-megabyte-host",
        agency(host='"' + "h" * 5_000_000 + '"'),
        ("platforms.agency.host: longer than 253 characters (5000000)",),
    ),
    # ---- bytes ------------------------------------------------------------------------------
    Case("empty-file", "", ("the file is empty", "stockbridge init")),
    Case("only-comments", "# [watch]\n# folder = 'x'\n\n", ("the file is empty", "stockbridge init")),
    Case("binary-garbage", bytes(range(256)) * 4, ("not UTF-8 text (line 2, byte 128)", "Save it as UTF-8")),
    Case(
        "latin-1-bytes",
        VALID.replace("ftp.example.com", "ftp.b\xe4r.example").encode("latin-1"),
        ("not UTF-8 text (line 10, byte 122)", "Save it as UTF-8"),
    ),
    Case(
        "utf-16-from-notepad", VALID.encode("utf-16"), ("not UTF-8 text (line 1, byte 0)", "Save it as UTF-8")
    ),
    Case("utf-8-bom-is-valid", "\ufeff" + VALID, ("valid; 1 enabled platform",), exit_code=0),
    Case(
        "crlf-line-endings-are-valid",
        VALID.replace("\n", "\r\n"),
        ("valid; 1 enabled platform",),
        exit_code=0,
    ),
    Case(
        "ten-thousand-nested-arrays",
        "a = " + "[" * 10_000 + "]" * 10_000 + "\n",
        ("nested too deeply to read (around line 1)", "look for a run of ["),
    ),
    Case(
        "ten-thousand-nested-inline-tables",
        "a = " + "{b = " * 10_000 + "1" + "}" * 10_000 + "\n",
        ("nested too deeply to read", "look for a run of ["),
    ),
    Case(
        "forty-nested-arrays",
        "a = " + "[" * 40 + "]" * 40 + "\n",
        ("a[0][0][0]", "nested more than 16 levels deep", "remove the extra"),
    ),
    Case(
        "five-megabytes-of-comments-are-valid",
        ("# " + "x" * 98 + "\n") * 50_000 + VALID,
        ("valid; 1 enabled platform",),
        exit_code=0,
    ),
    # ---- secrets ----------------------------------------------------------------------------
    Case(
        "password-source-of-unknown-kind",
        agency(password=f'{{ vault = "{SECRET}" }}'),
        ("platforms.agency.password.vault: unknown key; known keys: env, file, credential, keyring",),
    ),
    Case(
        "password-source-with-two-kinds",
        agency(password=f'{{ env = "X", file = "{SECRET}" }}'),
        ("platforms.agency.password: give exactly one of",),
    ),
    Case(
        "password-env-unset",
        VALID,
        ("platforms.agency.password: environment variable SB_HOSTILE_PASSWORD is not set", "Environment="),
        setup=unset_env,
    ),
    Case(
        "password-file-missing",
        agency(password='{ file = "missing.txt" }'),
        (
            "platforms.agency.password: cannot read password file",
            "missing.txt (No such file or directory)",
            "check the path",
        ),
    ),
    Case(
        "password-file-is-a-directory",
        agency(password='{ file = "pwdir" }'),
        ("platforms.agency.password: cannot read password file", "pwdir (Is a directory)"),
        setup=mkdir("pwdir"),
    ),
    Case(
        # Unreadable even for root (CI runs as root, where a mode-000 file would be readable).
        "password-file-unreadable",
        agency(password='{ file = "pw.txt/password" }'),
        ("platforms.agency.password: cannot read password file", "(Not a directory)", "permissions"),
        setup=write_file("pw.txt", SECRET.encode() + b"\n", 0o600),
    ),
    Case(
        "password-file-is-dev-zero",
        agency(password='{ file = "/dev/zero" }'),
        ("platforms.agency.password: password file /dev/zero is not a regular file",),
    ),
    Case(
        "password-file-not-utf-8",
        agency(password='{ file = "pw.txt" }'),
        ("platforms.agency.password: password file", "is not UTF-8 text; save it as UTF-8"),
        setup=write_file("pw.txt", b"\xff\xfe" + SECRET.encode("utf-16-le")),
    ),
    Case(
        "password-file-empty",
        agency(password='{ file = "pw.txt" }'),
        ("platforms.agency.password: password file", "is empty; put the password on its first line"),
        setup=write_file("pw.txt", b""),
    ),
    # ---- folders: the service never writes into the watch folder ----------------------------
    Case(
        "watch-folder-missing",
        VALID,
        ("watch.folder:", "exports does not exist", "create it"),
        setup=remove_exports,
    ),
    Case(
        "watch-folder-is-a-file",
        VALID,
        ("watch.folder:", "exports is a file, not a folder"),
        setup=exports_is_a_file,
    ),
    Case(
        "state-dir-is-the-watch-folder",
        VALID.replace('dir = "state"', 'dir = "exports"'),
        ("state.dir:", "is the watch folder", "put it elsewhere"),
    ),
    Case(
        "state-dir-inside-the-watch-folder",
        VALID.replace('dir = "state"', 'dir = "exports/.state"'),
        ("state.dir:", "is inside the watch folder", "put it elsewhere"),
    ),
    Case(
        "state-dir-reaching-the-watch-folder-by-symlink",
        VALID.replace('dir = "state"', 'dir = "link-to-exports/.state"'),
        ("state.dir:", "is inside the watch folder"),
        setup=lambda tmp: (tmp / "link-to-exports").symlink_to(tmp / "exports"),
    ),
    Case(
        "folder-platform-writing-into-the-watch-folder",
        HEAD + '\n[platforms.archive]\nprotocol = "folder"\npath = "exports/sent"\n',
        ("platforms.archive.path:", "is inside the watch folder", "choose a folder outside it"),
    ),
    # Allowed: the service writes only objects/, csv/ and the ledger inside its state dir.
    Case(
        "watch-folder-inside-the-state-dir-is-valid",
        VALID.replace('dir = "state"', 'dir = "."'),
        ("valid; 1 enabled platform",),
        exit_code=0,
    ),
]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "exports").mkdir()
    monkeypatch.setenv(ENV_NAME, SECRET)
    return tmp_path


def invoke_check(config: Path) -> tuple[int, str, float]:
    started = time.monotonic()
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    elapsed = time.monotonic() - started
    # An exception other than SystemExit is a crash: CliRunner would hide its traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.output, elapsed


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_hostile_config_gets_one_clear_answer_and_no_traceback(case: Case, workspace: Path) -> None:
    config = workspace / "config.toml"
    config.write_bytes(case.content if isinstance(case.content, bytes) else case.content.encode())
    config.chmod(0o600)
    if case.setup is not None:
        case.setup(workspace)

    code, output, elapsed = invoke_check(config)

    assert code == case.exit_code, output
    assert str(config) in output  # names the file
    for fragment in case.expect:  # the key path or line/column, and what to do
        assert fragment in output, f"{fragment!r} not in:\n{output}"
    assert "Traceback" not in output
    assert SECRET not in output
    assert case.secret is None or case.secret not in output
    assert "\x1b" not in output and "\0" not in output  # nothing from the file drives the terminal
    assert len(output) < 2_000  # a 5 MB value is not echoed back
    assert elapsed < 30, "a hostile file must not make `check` crawl"  # milliseconds when all is well


def run_service(config: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``stockbridge run`` as the service manager starts it: it must refuse and exit by itself (a
    service that started instead would run until ``timeout`` and fail the test)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), ENV_NAME: SECRET}
    try:
        return subprocess.run(
            [sys.executable, "-m", "stockbridge", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            cwd=config.parent,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`stockbridge run` did not refuse: still running after {timeout:g} s")


RUN_CASES = {
    "literal-password-in-a-world-readable-file": (
        VALID.replace('{ env = "SB_HOSTILE_PASSWORD" }', f'"{SECRET}"'),
        0o644,
        ("other users can read it", "chmod 600"),
    ),
    "ten-thousand-nested-arrays": (
        "a = " + "[" * 10_000 + "]" * 10_000 + "\n",
        0o600,
        ("nested too deeply to read",),
    ),
    "state-dir-inside-the-watch-folder": (
        VALID.replace('dir = "state"', 'dir = "exports/.state"'),
        0o600,
        ("state.dir:", "is inside the watch folder"),
    ),
}


@pytest.mark.parametrize("text, mode, expect", RUN_CASES.values(), ids=list(RUN_CASES))
def test_run_refuses_to_start_with_the_same_message_and_exits_promptly(
    text: str, mode: int, expect: tuple[str, ...], workspace: Path
) -> None:
    config = workspace / "config.toml"
    config.write_text(text)
    config.chmod(mode)

    finished = run_service(config)

    assert finished.returncode == EXIT_USAGE, finished.stderr
    for fragment in (str(config), *expect):
        assert fragment in finished.stderr, finished.stderr
    assert "Traceback" not in finished.stderr + finished.stdout
    assert SECRET not in finished.stderr + finished.stdout
    assert not (workspace / "exports" / ".state").exists()  # refused before writing anything
    if mode == 0o600:  # check says the same, word for word
        _, check_output, _ = invoke_check(config)
        assert check_output.strip() in finished.stderr


def test_allow_insecure_config_is_the_way_past_the_refusal_and_still_warns(workspace: Path) -> None:
    """The way out the refusal names works: `once` starts, does its (empty) round, exits 0."""
    config = workspace / "config.toml"
    config.write_text(
        "allow_insecure_config = true\n"
        + HEAD
        + f'\n[platforms.archive]\nprotocol = "folder"\npath = "sent"\npassword = "{SECRET}"\n'
    )
    config.chmod(0o644)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    finished = subprocess.run(
        [sys.executable, "-m", "stockbridge", "once", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    assert "other users can read it" in finished.stderr  # still warned about, every start
    assert SECRET not in finished.stderr + finished.stdout
