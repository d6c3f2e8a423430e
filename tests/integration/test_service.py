"""Running as a service: the units pass systemd's own checks, install/uninstall, and sd_notify.

The sd_notify tests bind a real ``AF_UNIX`` datagram socket, the way systemd does, and read what
stockbridge sends; the last one starts ``stockbridge run`` as a subprocess pointed at it.
"""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from stockbridge.cli.main import main
from stockbridge.service import units as services
from stockbridge.service.sd_notify import SystemdNotifier, notify
from tests.e2e.conftest import Workspace, platform_table
from tests.images import require_exiftool
from tests.waiting import GENEROUS, wait_for

REPO = Path(__file__).resolve().parents[2]
MAX_EXPOSURE = 3.0


# ---------------------------------------------------------------------- helpers


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed (apt install systemd); CI has it")
    return found


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str | None]]:
    """An environment whose $HOME is a tmp dir, with no systemctl on PATH (nothing is started).

    Only that $HOME counts as a home directory, so a checkout under /home (CI) may install the
    system unit; a test that sets $HOME to the checkout sees the refusal."""
    monkeypatch.setattr(services, "HOME_ROOTS", (), raising=False)
    monkeypatch.setattr(services, "_user_homes", lambda: [Path(os.environ["HOME"])], raising=False)
    (tmp_path / "home").mkdir()
    (tmp_path / "bin").mkdir()
    yield {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": None,
        "XDG_STATE_HOME": None,
        "STOCKBRIDGE_CONFIG": None,
        "PATH": str(tmp_path / "bin"),
    }


def cli(env: dict[str, str | None], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def write_config(path: Path) -> Path:
    (path.parent / "exports").mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'[watch]\nfolder = "{path.parent / "exports"}"\n\n[state]\ndir = "{path.parent / "state"}"\n'
    )
    path.chmod(0o600)
    return path


def system_unit(env: dict[str, str | None], tmp_path: Path, config: Path) -> Path:
    """The system unit as `install --system` would write it (dry run: /etc is not ours to touch)."""
    code, out, err = cli(env, "service", "install", "--system", "--dry-run", "--config", str(config))
    assert code == 0, err
    unit_dir = tmp_path / "system"
    unit_dir.mkdir()
    unit = unit_dir / "stockbridge.service"
    unit.write_text(out)
    return unit


class NotifySocket:
    """A datagram socket bound like systemd's $NOTIFY_SOCKET; collects what arrives."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address if not address.startswith("@") else "\0" + address[1:])
        self.sock.settimeout(0.05)
        #: (arrival time, datagram), recorded by a thread as they arrive.
        self.messages: list[tuple[float, str]] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, OSError):
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def receive_until(self, predicate: str, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(predicate in text for text in self.texts()):
                return self.texts()
            time.sleep(0.02)
        raise AssertionError(f"no {predicate!r} within {timeout} s; got {self.texts()}")

    def texts(self) -> list[str]:
        return [text for _, text in list(self.messages)]

    def close(self) -> None:
        self._closed.set()
        self._thread.join(1)
        self.sock.close()


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    folder = tempfile.mkdtemp(prefix="sb-", dir="/tmp")  # short: sun_path holds 108 bytes
    receiver = NotifySocket(os.path.join(folder, "notify"))
    try:
        yield receiver
    finally:
        receiver.close()
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------- units


def test_the_user_unit_written_by_install_passes_systemd_analyze_verify(home, tmp_path):
    analyze = systemd_analyze()
    config = write_config(tmp_path / "home" / ".config" / "stockbridge" / "config.toml")
    code, _, err = cli(home, "service", "install", "--user")
    assert code == 0, err
    unit = tmp_path / "home" / ".config" / "systemd" / "user" / "stockbridge.service"
    assert str(config) in unit.read_text()
    # verify needs a runtime dir for a user manager, and no man pages in a slim container.
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path), "HOME": home["HOME"] or ""}
    result = subprocess.run(
        [analyze, "--user", "--man=no", "verify", str(unit)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_system_unit_passes_systemd_analyze_verify(home, tmp_path):
    analyze = systemd_analyze()
    unit = system_unit(home, tmp_path, write_config(tmp_path / "etc" / "config.toml"))
    result = subprocess.run([analyze, "--man=no", "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_system_unit_exposes_at_most_3_0_to_systemd_analyze_security(home, tmp_path):
    analyze = systemd_analyze()
    unit = system_unit(home, tmp_path, write_config(tmp_path / "etc" / "config.toml"))
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        cwd=unit.parent,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    exposure = float(match.group(1))
    print(f"systemd-analyze security exposure of stockbridge-system.service: {exposure}")
    assert exposure <= MAX_EXPOSURE


def test_both_units_restart_on_failure_but_not_on_a_config_error_and_use_the_watchdog():
    for name in ("stockbridge.service", "stockbridge-system.service"):
        text = (REPO / "service" / name).read_text()
        for line in (
            "Type=notify",
            "NotifyAccess=main",
            "Restart=on-failure",
            "RestartPreventExitStatus=2",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
        ):
            assert re.search(rf"^{re.escape(line)}$", text, re.MULTILINE), f"{name}: no {line}"
        assert re.search(r"^WatchdogSec=\S+", text, re.MULTILINE)
        assert re.search(r"^#LoadCredential=", text, re.MULTILINE)


def test_every_hardening_line_of_the_units_says_when_to_relax_it():
    hardening = re.compile(
        r"^(NoNewPrivileges|Protect\w+|Private\w+|Restrict\w+|LockPersonality|MemoryDenyWriteExecute"
        r"|SystemCall\w+|CapabilityBoundingSet|AmbientCapabilities|UMask|RemoveIPC|ProcSubset|ReadWritePaths)="
    )
    for name in ("stockbridge.service", "stockbridge-system.service"):
        lines = (REPO / "service" / name).read_text().splitlines()
        for index, line in enumerate(lines):
            if not hardening.match(line):
                continue
            block = []  # the comment lines above this line's group of settings
            cursor = index - 1
            while cursor >= 0 and not lines[cursor].startswith("#") and hardening.match(lines[cursor]):
                cursor -= 1
            while cursor >= 0 and lines[cursor].startswith("#"):
                block.append(lines[cursor])
                cursor -= 1
            assert any("Relax" in comment for comment in block), f"{name}: {line} has no 'Relax ...' comment"


def test_the_launch_agent_is_a_plist_with_the_keys_launchd_needs(home, tmp_path):
    for text in (
        (REPO / "service" / "com.stockbridge.agent.plist").read_text(),
        services.render(
            "launchd",
            ["/opt/stockbridge/bin/stockbridge"],
            Path("/Users/ann/Library/Application Support/stockbridge/config.toml"),
            Path("/unused"),
            Path("/Users/ann"),
        ),
    ):
        agent = plistlib.loads(text.encode())
        assert agent["Label"] == "com.stockbridge.agent"
        assert agent["ProgramArguments"][1:3] == ["run", "--config"]
        assert agent["RunAtLoad"] is True
        assert agent["KeepAlive"] == {"SuccessfulExit": False}
        assert agent["ProcessType"] == "Background"
        assert agent["ExitTimeOut"] >= 90
        assert "/opt/homebrew/bin" in agent["EnvironmentVariables"]["PATH"].split(":")
        assert "/usr/local/bin" in agent["EnvironmentVariables"]["PATH"].split(":")
        assert "/Library/Logs/" in agent["StandardErrorPath"]
        assert "/Library/Logs/" in agent["StandardOutPath"]
    assert agent["ProgramArguments"][0] == "/opt/stockbridge/bin/stockbridge"
    assert agent["StandardErrorPath"] == "/Users/ann/Library/Logs/stockbridge.log"


def test_the_package_ships_the_same_templates_as_the_service_folder():
    for name in ("stockbridge.service", "stockbridge-system.service", "com.stockbridge.agent.plist"):
        shipped = REPO / "stockbridge" / "service" / "templates" / name
        assert shipped.read_bytes() == (REPO / "service" / name).read_bytes(), (
            f"copy service/{name} to stockbridge/service/templates/"
        )


# ---------------------------------------------------------------------- install / uninstall


def write_config_with(path: Path, tables: str) -> Path:
    write_config(path)
    path.write_text(path.read_text() + tables)
    return path


STAGING_AND_FTP = """
[platforms.staging]
preset = "istock"
path = "{staging}"

[platforms.agency]
preset = "shutterstock"
username = "12345"
password = {{ env = "SHUTTERSTOCK_PASSWORD" }}
"""


def test_the_unit_gets_the_environment_file_and_every_folder_it_writes(home, tmp_path):
    config_dir = tmp_path / "home" / ".config" / "stockbridge"
    config = write_config_with(
        config_dir / "config.toml", STAGING_AND_FTP.format(staging=tmp_path / "staging")
    )
    code, out, err = cli(home, "service", "install", "--user", "--dry-run", "--config", str(config))
    assert code == 0, err
    assert f"EnvironmentFile=-{config_dir / 'stockbridge.env'}" in out.splitlines()
    assert f"ReadWritePaths={config_dir / 'state'} -{tmp_path / 'staging'}" in out.splitlines()


def test_install_warns_about_a_password_variable_the_service_will_not_have_until_the_env_file_sets_it(
    home, tmp_path
):
    config_dir = tmp_path / "home" / ".config" / "stockbridge"
    config = write_config_with(
        config_dir / "config.toml", STAGING_AND_FTP.format(staging=tmp_path / "staging")
    )
    code, _, err = cli(home, "service", "install", "--user", "--config", str(config))
    assert code == 0, err
    env_file = config_dir / "stockbridge.env"
    assert (
        "warning: the config reads $SHUTTERSTOCK_PASSWORD (platforms.agency.password), which the service"
        " will not have" in err
    )
    assert f"put the line SHUTTERSTOCK_PASSWORD=... in {env_file} (chmod 600)" in err
    env_file.write_text("# for stockbridge.service\nSHUTTERSTOCK_PASSWORD=s3cret\n")
    env_file.chmod(0o600)
    code, _, err = cli(home, "service", "install", "--user", "--config", str(config))
    assert code == 0 and "warning" not in err, err
    env_file.chmod(0o644)
    _, _, err = cli(home, "service", "install", "--user", "--config", str(config))
    assert f"other users can read it: chmod 600 {env_file}" in err


def test_a_system_install_refuses_an_executable_inside_a_home_directory(home, tmp_path):
    # This checkout (and its .venv) inside $HOME: what a pipx or venv install in a home looks like.
    config = write_config(tmp_path / "etc" / "config.toml")
    code, out, err = cli(
        {**home, "HOME": str(REPO)}, "service", "install", "--system", "--dry-run", "--config", str(config)
    )
    assert code == 1 and out == ""
    assert "runs from inside a home directory" in err and "user stockbridge cannot enter" in err
    assert "sudo pipx install --global stockbridge" in err and "/opt/stockbridge" in err


def test_the_system_units_config_folder_is_open_to_its_user_and_install_says_how_to_hand_over_the_file(
    home, tmp_path, monkeypatch
):
    import pwd

    text = (REPO / "service" / "stockbridge-system.service").read_text()
    mode = int(re.search(r"^ConfigurationDirectoryMode=(\d+)$", text, re.MULTILINE).group(1), 8)
    assert mode & 0o001, "User=stockbridge must be able to enter /etc/stockbridge (systemd makes it root's)"
    config = write_config(tmp_path / "etc" / "config.toml")  # root's (the test's), mode 600
    service_user = pwd.struct_passwd(
        ("stockbridge", "x", 64123, 64123, "", "/var/lib/stockbridge", "/bin/false")
    )
    monkeypatch.setattr(pwd, "getpwnam", lambda name: service_user)
    code, _, err = cli(home, "service", "install", "--system", "--dry-run", "--config", str(config))
    assert code == 0
    assert (
        f"is not readable by the service's user stockbridge; run: chown stockbridge: {config} && chmod 600"
        in err
    )


def allowed_system_calls(unit_text: str) -> set[str]:
    """The system calls a unit's SystemCallFilter= lines allow, merged the way systemd merges them
    (an allow list first; later "~" lines remove, later plain lines add), groups expanded by
    systemd-analyze."""
    analyze = systemd_analyze()

    def expand(names: list[str]) -> set[str]:
        found: set[str] = set()
        for name in names:
            if not name.startswith("@"):
                found.add(name)
                continue
            listing = subprocess.run(
                [analyze, "syscall-filter", name], capture_output=True, text=True, check=True
            )
            for line in listing.stdout.splitlines()[1:]:
                word = line.strip()
                if word and not word.startswith("#"):
                    found |= expand([word]) if word.startswith("@") else {word}
        return found

    allowed: set[str] | None = None
    for value in re.findall(r"^SystemCallFilter=(.*)$", unit_text, re.MULTILINE):
        deny = value.startswith("~")
        names = expand(value.removeprefix("~").split())
        if allowed is None:
            assert not deny, "the units start from an allow list"
            allowed = names
        elif deny:
            allowed -= names
        else:
            allowed |= names
    assert allowed is not None
    return allowed


@pytest.mark.parametrize("name", ["stockbridge.service", "stockbridge-system.service"])
def test_the_units_let_image_work_run_at_a_lower_priority(name):
    # prepare.py lowers each preparing thread's priority with setpriority(2); under a filter that
    # denies it the call fails with EPERM, silently, and resizes compete with uploads.
    allowed = allowed_system_calls((REPO / "service" / name).read_text())
    assert "setpriority" in allowed
    assert "sched_setscheduler" in allowed  # the thumbnail child asks for SCHED_IDLE
    assert "setrlimit" not in allowed  # the rest of @resources stays denied


def test_install_writes_a_user_unit_naming_this_executable_and_the_config(home, tmp_path):
    config = write_config(tmp_path / "my config" / "config.toml")
    code, out, err = cli(home, "service", "install", "--user", "--config", str(config))
    assert code == 0, err
    unit = tmp_path / "home" / ".config" / "systemd" / "user" / "stockbridge.service"
    text = unit.read_text()
    exec_start = re.search(r"^ExecStart=(.*)$", text, re.MULTILINE)
    assert exec_start is not None
    executable = services.service_command()[0]
    assert Path(executable).is_file() and os.access(executable, os.X_OK)
    assert exec_start.group(1).startswith(executable)
    assert f'run --config "{config}"' in exec_start.group(1)  # quoted: the path has a space
    assert f'ReadWritePaths="{config.parent / "state"}"' in text  # the config's state dir, quoted
    assert (config.parent / "state").is_dir()  # must exist to be mounted writable
    assert "systemctl --user daemon-reload && systemctl --user enable --now stockbridge" in out


def test_install_honours_xdg_config_home(home, tmp_path):
    env = {**home, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    code, _, err = cli(
        env, "service", "install", "--user", "--config", str(write_config(tmp_path / "c.toml"))
    )
    assert code == 0, err
    assert (tmp_path / "xdg" / "systemd" / "user" / "stockbridge.service").is_file()


def test_install_refuses_to_overwrite_a_unit_you_edited_unless_forced(home, tmp_path):
    config = write_config(tmp_path / "config.toml")
    assert cli(home, "service", "install", "--user", "--config", str(config))[0] == 0
    unit = tmp_path / "home" / ".config" / "systemd" / "user" / "stockbridge.service"
    # Unchanged: installing again (even for another config) replaces it.
    other = write_config(tmp_path / "other" / "config.toml")
    assert cli(home, "service", "install", "--user", "--config", str(other))[0] == 0
    assert str(other) in unit.read_text()
    edited = unit.read_text().replace("RestartSec=30s", "RestartSec=5min")
    unit.write_text(edited)
    code, _, err = cli(home, "service", "install", "--user", "--config", str(config))
    assert code == 1
    assert "changed since stockbridge wrote it" in err
    assert unit.read_text() == edited
    code, out, _ = cli(home, "service", "status", "--user")
    assert "edited since it was installed" in out
    assert cli(home, "service", "install", "--user", "--config", str(config), "--force")[0] == 0
    assert "RestartSec=30s" in unit.read_text()


def test_uninstall_removes_the_unit_install_wrote(home, tmp_path):
    config = write_config(tmp_path / "config.toml")
    assert cli(home, "service", "install", "--user", "--config", str(config))[0] == 0
    unit = tmp_path / "home" / ".config" / "systemd" / "user" / "stockbridge.service"
    code, out, _ = cli(home, "service", "status", "--user")
    assert f"installed at {unit}" in out
    code, out, err = cli(home, "service", "uninstall", "--user")
    assert code == 0, err
    assert not unit.exists()
    assert "systemctl --user disable --now stockbridge" in out  # no systemctl here: told, not run
    code, out, _ = cli(home, "service", "status", "--user")
    assert "not installed" in out


def test_uninstall_leaves_a_unit_stockbridge_did_not_write(home, tmp_path):
    unit = tmp_path / "home" / ".config" / "systemd" / "user" / "stockbridge.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    code, _, err = cli(home, "service", "uninstall", "--user")
    assert code == 1 and "not written by" in err
    assert unit.exists()


# ---------------------------------------------------------------------- sd_notify


def test_notify_without_a_socket_sends_nothing_and_does_not_raise():
    assert notify("READY=1", {}) is False
    assert notify("READY=1", {"NOTIFY_SOCKET": "/nonexistent/socket"}) is False
    assert SystemdNotifier({}).ready() is False
    assert SystemdNotifier({}).watchdog_interval() is None


def test_ready_status_and_stopping_arrive_on_the_notify_socket(notify_socket):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": notify_socket.address})
    assert notifier.ready("nothing queued")
    assert notifier.status("12 queued,\nshutterstock uploading 3/20")
    assert notifier.stopping()
    assert not notifier.stopping()  # once is enough
    notify_socket.receive_until("STOPPING=1", 2)
    assert notify_socket.texts() == [
        "READY=1\nSTATUS=nothing queued",
        "STATUS=12 queued, shutterstock uploading 3/20",  # one line: a newline would start a new key
        "STOPPING=1",
    ]


def test_an_abstract_notify_socket_works_too():
    receiver = NotifySocket(f"@stockbridge-test-{os.getpid()}-{time.monotonic_ns()}")
    try:
        assert notify("READY=1", {"NOTIFY_SOCKET": receiver.address})
        assert receiver.receive_until("READY=1", 2) == ["READY=1"]
    finally:
        receiver.close()


class RecordingStop(threading.Event):
    """The watchdog's stop event, remembering how long the loop asked to wait each time."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(timeout)


def test_the_watchdog_pings_every_half_interval_while_healthy_and_stops_when_not(notify_socket):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "200000"})
    assert notifier.watchdog_interval() == pytest.approx(0.2)
    stop, healthy = RecordingStop(), threading.Event()
    healthy.set()
    checks: list[bool] = []

    def is_healthy() -> bool:
        checks.append(healthy.is_set())
        if checks.count(False) == 3:
            stop.set()  # three looks while stuck are enough to see that it stays silent
        return checks[-1]

    thread = notifier.start_watchdog(stop, is_healthy)
    assert thread is not None
    wait_for(lambda: notify_socket.texts().count("WATCHDOG=1") >= 4, GENEROUS, "four watchdog pings")
    healthy.clear()  # stuck: no more pings, so systemd would restart us
    thread.join(GENEROUS)
    assert not thread.is_alive()
    # Datagrams arrive in order: once this one is in, every ping sent before it is too.
    assert notify("END", {"NOTIFY_SOCKET": notify_socket.address})
    texts = notify_socket.receive_until("END", GENEROUS)
    pings = texts[: texts.index("END")]
    assert set(pings) == {"WATCHDOG=1"}
    assert len(pings) == checks.count(True), "one ping per healthy look, none once it was stuck"
    assert checks.count(False) == 3 and checks[-3:] == [False] * 3
    assert stop.waits and stop.waits == pytest.approx([0.1] * len(stop.waits)), "every half of 0.2 s"


def test_the_watchdog_is_not_ours_when_watchdog_pid_names_another_process(notify_socket):
    env = {"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "200000"}
    assert SystemdNotifier({**env, "WATCHDOG_PID": str(os.getpid())}).watchdog_interval() == pytest.approx(
        0.2
    )
    notifier = SystemdNotifier({**env, "WATCHDOG_PID": "1"})
    assert notifier.watchdog_interval() is None
    assert notifier.start_watchdog(threading.Event(), lambda: True) is None


def test_stockbridge_run_says_ready_pings_the_watchdog_and_says_stopping_on_sigterm(
    notify_socket, folder_target, tmp_path
):
    require_exiftool()
    root = tmp_path / "ws"
    workspace = Workspace(root=root, exports=root / "exports", state=root / "state", config=root / "c.toml")
    workspace.exports.mkdir(parents=True)
    workspace.write_config(platform_table("archive", folder_target))
    env = {**workspace.env(), "NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "1000000"}
    env.pop("WATCHDOG_PID", None)
    process = subprocess.Popen(
        workspace.command("run"),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        notify_socket.receive_until("READY=1", 30)
        ready = next(text for text in notify_socket.texts() if "READY=1" in text)
        assert "STATUS=nothing queued" in ready
        notify_socket.receive_until("WATCHDOG=1", 5)
        process.send_signal(signal.SIGTERM)
        notify_socket.receive_until("STOPPING=1", 10)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    texts = notify_socket.texts()
    assert texts.index(ready) < texts.index("STOPPING=1")


def test_the_command_in_the_unit_starts_this_stockbridge():
    command = services.service_command()
    result = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "stockbridge" in result.stdout, result.stderr
    assert os.path.isabs(command[0])
    assert sys.executable  # the fallback, python -m stockbridge, needs an interpreter path
