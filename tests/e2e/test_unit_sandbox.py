"""init → fill in → check → service install → start gives a running service (issue 13, item 8).

There is no systemd here, so the installed system unit's ``ExecStart`` is run the way systemd would
run it, with what of the unit can be reproduced as root: the variables of its ``EnvironmentFile=``
and nothing of the caller's environment, another user (``User=``; ``nobody`` stands in for
``stockbridge``, a test adds no users), its ``UMask=``, and ``ProtectSystem=strict`` /
``ProtectHome=read-only`` (every mount read-only in a private mount namespace) with only its
``ReadWritePaths=`` writable. Not reproduced: the seccomp filter (tests/integration/test_service.py
checks what it allows), PrivateTmp and the other namespaces.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockbridge.demo.samples import make_image
from tests.e2e.test_packaging import copy_of_the_tree
from tests.integration.test_service import NotifySocket
from tests.waiting import GENEROUS, wait_for

NOBODY = 65534

#: Run by root in a new mount namespace: every mount read-only (ProtectSystem=strict,
#: ProtectHome=read-only), then each ReadWritePaths= entry writable again, then exec the rest.
SANDBOX = r"""
import os, subprocess, sys
split = sys.argv.index("--")
writable, command = sys.argv[1:split], sys.argv[split + 1:]
probe_dir = writable.pop(0)
points = []
for line in open("/proc/self/mountinfo"):
    point = line.split()[4].encode().decode("unicode_escape")
    if not point.startswith(("/proc", "/sys", "/dev")):
        points.append(point)
for point in sorted(set(points), key=len):
    subprocess.run(["mount", "-o", "remount,bind,ro", point], capture_output=True)
try:
    open(os.path.join(probe_dir, "probe"), "w").close()
except OSError:
    pass
else:
    sys.exit(77)  # the file system stayed writable: ProtectSystem cannot be reproduced here
for path in writable:
    subprocess.run(["mount", "--bind", path, path], check=True)
    subprocess.run(["mount", "-o", "remount,bind,rw", path], check=True)
os.execvp(command[0], command)
"""


def unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def systemd_words(value: str) -> list[str]:
    """A unit's command line as systemd splits it (the quoting `service install` writes)."""
    return [word.replace("$$", "$").replace("%%", "%") for word in shlex.split(value)]


def env_file_variables(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            found[name.strip()] = value.strip()
    return found


def python_outside_homes() -> str:
    """A Python the service user can run: not in a home directory (pyenv's is in ~/.pyenv)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", sys.executable):
        real = os.path.realpath(candidate)
        if os.path.isfile(real) and not real.startswith(("/home/", "/root/")):
            version = subprocess.run(
                [candidate, "-c", "import sys, venv; print(sys.version_info >= (3, 10))"],
                capture_output=True,
                text=True,
            )
            if version.stdout.strip() == "True":
                return candidate
    pytest.skip("no Python 3.10+ outside the home directories to install the system service with")


@pytest.fixture
def machine() -> Iterator[Path]:
    """A folder the service user can reach (pytest's tmp folders are root's, mode 700)."""
    for tool in ("unshare", "setpriv", "mount"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (util-linux)")
    if os.geteuid() != 0:
        pytest.skip("running a unit as another user in a private mount namespace needs root")
    base = Path(tempfile.mkdtemp(prefix="sb-unit-", dir="/var/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def cli(*args: str, env: dict[str, str], program: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(program), *args] if program else [sys.executable, "-m", "stockbridge", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_the_installed_system_units_command_starts_as_its_user_with_its_environment_file_and_sandbox(
    machine: Path, ftp_server, exiftool
):
    # 0. stockbridge installed for the whole machine, as the README says: a venv outside /home.
    venv = machine / "opt-stockbridge"
    subprocess.run([python_outside_homes(), "-m", "venv", str(venv)], check=True, timeout=120)
    source = copy_of_the_tree(machine / "source")
    installing = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(source)], capture_output=True, text=True, timeout=900
    )
    assert installing.returncode == 0, installing.stderr[-3000:]
    program = venv / "bin" / "stockbridge"
    etc, exports, state, staging = (machine / name for name in ("etc", "exports", "state", "staging"))
    exports.mkdir(mode=0o755)
    shell = {key: value for key, value in os.environ.items() if not key.startswith("STOCKBRIDGE_")}
    # 1. init, then fill in what it marks FILL-IN: the export folder, the state folder, a staging
    #    folder (iStock) and an FTP agency whose password init reads from an environment variable.
    config = etc / "config.toml"
    initialised = cli("init", str(config), "--preset", "istock", env=shell)
    assert initialised.returncode == 0, initialised.stderr
    text = config.read_text()
    text = text.replace('folder = "~/Pictures/stock-exports"', f'folder = "{exports}"')
    text = text.replace("# [state]\n", "[state]\n").replace(
        '# dir = "~/.local/state/stockbridge"', f'dir = "{state}"'
    )
    text = text.replace('path = "FILL-IN"', f'path = "{staging}"')
    text += (
        f'\n[platforms.agency]\nprotocol = "ftp"\nhost = "{ftp_server.host}"\nport = {ftp_server.port}\n'
        f'username = "{ftp_server.username}"\npassword = {{ env = "AGENCY_PASSWORD" }}\n'
        "[platforms.agency.batch]\nmax_wait_seconds = 0\n[platforms.istock.batch]\nmax_wait_seconds = 0\n"
    )
    config.write_text(text.replace("settle_seconds = 10", "settle_seconds = 0.3"))
    # 2. check, in the user's shell, where the password variable is set.
    checked = cli("check", "--config", str(config), env={**shell, "AGENCY_PASSWORD": ftp_server.password})
    assert checked.returncode == 0, checked.stderr
    # 3. service install: it says the service will not have the variable, and where to put it.
    installed = cli(
        "service", "install", "--system", "--dry-run", "--config", str(config), env=shell, program=program
    )
    assert installed.returncode == 0, installed.stderr
    env_file = etc / "stockbridge.env"
    assert f"put the line AGENCY_PASSWORD=... in {env_file}" in installed.stderr
    env_file.write_text(f"AGENCY_PASSWORD={ftp_server.password}\n")
    env_file.chmod(0o600)
    installed = cli(
        "service", "install", "--system", "--dry-run", "--config", str(config), env=shell, program=program
    )
    assert installed.returncode == 0 and "AGENCY_PASSWORD" not in installed.stderr, installed.stderr
    unit = unit_settings(installed.stdout)
    # What the README says to do by hand: the service user owns its config, state and staging
    # folders (systemd's StateDirectory= does it for /var/lib/stockbridge) and reads the exports.
    for path in (state, staging):
        path.mkdir(mode=0o700)
        os.chown(path, NOBODY, NOBODY)
    os.chown(config, NOBODY, NOBODY)
    etc.chmod(0o755)  # ConfigurationDirectoryMode=

    # 4. start: ExecStart as User= with only the EnvironmentFile's variables, in the sandbox.
    (env_path,) = unit["EnvironmentFile"]
    environment = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(state),
        "LANG": "C.UTF-8",
        **env_file_variables(Path(env_path.removeprefix("-"))),
    }
    assert unit["User"] == ["stockbridge"] and "ProtectSystem=strict" in installed.stdout
    (writable,) = unit["ReadWritePaths"]
    rw = [word.removeprefix("-") for word in systemd_words(writable)]
    assert sorted(rw) == sorted([str(state), str(staging)])
    notify_dir = Path(tempfile.mkdtemp(prefix="sb-", dir="/tmp"))
    notify_dir.chmod(0o755)
    receiver = NotifySocket(str(notify_dir / "notify"))
    (notify_dir / "notify").chmod(0o777)
    (umask,) = unit["UMask"]
    command = [
        "unshare", "--mount", "--propagation", "private", "--",
        sys.executable, "-c", SANDBOX, str(machine), *rw, "--",
        "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
        "sh", "-c", f'umask {umask}; exec "$@"', "sh", *systemd_words(unit["ExecStart"][0]),
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        env={**environment, "NOTIFY_SOCKET": receiver.address},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(
            lambda: process.poll() is not None or any("READY=1" in text for text in receiver.texts()),
            60,
            "READY=1 or the end of the service",
        )
        if process.poll() is not None:
            _, err = process.communicate(timeout=30)
            if process.returncode == 77:
                pytest.skip("mounts cannot be made read-only here: ProtectSystem is not reproducible")
            raise AssertionError(f"exit {process.returncode}: {err.decode(errors='replace')}")
        make_image(exports / "IMG_1.jpg", width=1600, height=1200, exiftool=exiftool, seed=1,
                   title="A harbour at dawn", keywords=[f"keyword{n}" for n in range(12)])  # fmt: skip
        (exports / "IMG_1.jpg").chmod(0o644)
        staged = wait_for(
            lambda: [p for p in staging.iterdir() if p.suffix == ".jpg"], GENEROUS, "the staged copy"
        )
        assert staged[0].stat().st_uid == NOBODY  # written by the service's user, not root
        assert staged[0].stat().st_mode & 0o777 == 0o600  # UMask=0077
        wait_for(lambda: (ftp_server.root / "IMG_1.jpg").exists(), GENEROUS, "the FTP upload")
        process.send_signal(signal.SIGTERM)
        receiver.receive_until("STOPPING=1", GENEROUS)
        assert process.wait(timeout=GENEROUS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        receiver.close()
        shutil.rmtree(notify_dir, ignore_errors=True)
