"""A slow, far-away uplink on one machine (issue 14 item 3): vsftpd (FTPS) and OpenSSH sshd in a
network namespace behind a rate-limited veth pair, reached through a relay that adds the round trip.

    with LinkEmulator(PROFILES["20up-200ms"], workdir) as link:
        link.ftps, link.sftp       # bench.servers.Server: host 127.0.0.1, the relay's ports
        link.ftp_host, link.ftp_port, link.sftp_port
        link.cut()                 # reset every connection through the link (a dropped line)
        link.validate(files_dir)   # ping-pong RTT and lftp goodput against the profile

Needs root (``ip netns``, ``tc``); ``LinkEmulator.available()`` says why not otherwise.

How (``bench/README.md`` says what this reproduces and what not):
* **rate**: the kernel's ``tbf`` on the host end of the veth pair shapes everything toward the
  servers (the uplink); a profile with a downlink rate gets a second ``tbf`` on the namespace end.
  The rate is set on Ethernet frames as tbf counts them, scaled by 1514/1448 so that TCP *payload*
  arrives at the profile's rate: the link bound is then exactly payload bytes ÷ rate.
* **latency**: ``bench/link_relay.py``, a process of its own, listens on 127.0.0.1 and forwards each
  connection into the namespace, delaying every chunk by half the RTT in each direction, with a
  slow-starting window per direction (see its docstring). vsftpd's passive ports are relayed one to
  one and it advertises ``pasv_address=127.0.0.1``, so data connections take the same path.

Everything is undone in ``__exit__``: servers and relay stopped by their PIDs (process groups), the
namespace deleted (which deletes the veth pair and its qdiscs). Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from bench.servers import Server, sshd_binary, sshd_files, vsftpd_binary
from stockbridge.demo.localserver import make_self_signed_cert, stop_process_group, vsftpd_config

FTP_PORT, SSH_PORT, ECHO_PORT = 2121, 2222, 7777  # inside the namespace (its own port space)
PASV_PORTS = 16
READY_TIMEOUT = 15.0
PAYLOAD_PER_FRAME = 1514 / 1448  # Ethernet frame / TCP payload of a full segment (MTU 1500, timestamps)
SUBNET_POOL = ipaddress.ip_network("10.213.0.0/16")
TOLERANCE = 0.10  # validation: RTT and rate within ±10 %

ECHO_SERVER = """
import socket, sys, threading
def serve(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
import os
try:
    os.setpriority(os.PRIO_PROCESS, 0, -10)  # part of the link, like the relay
except OSError:
    pass
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((sys.argv[1], int(sys.argv[2])))
listener.listen(8)
while True:
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


@dataclass(frozen=True)
class Profile:
    """A link: uplink rate, optional downlink rate (None: not shaped), round-trip time."""

    name: str
    up_mbit: float
    down_mbit: float | None
    rtt_ms: float

    @property
    def up_bytes_per_second(self) -> float:
        return self.up_mbit * 1e6 / 8

    @property
    def bdp_bytes(self) -> int:
        """Bandwidth-delay product of the uplink: the window a sender needs to fill it."""
        return int(self.up_bytes_per_second * self.rtt_ms / 1000)

    def describe(self) -> str:
        down = f", {self.down_mbit:g} Mbit/s down" if self.down_mbit else " (downlink not shaped)"
        return f"{self.up_mbit:g} Mbit/s up{down}, {self.rtt_ms:g} ms RTT"


PROFILES = {
    "20up-200ms": Profile("20up-200ms", 20, None, 200),  # Jakarta → US (issue 14)
    "100-30ms": Profile("100-30ms", 100, 100, 30),  # a European fibre line
}


def parse_profile(text: str) -> Profile:
    """A profile by name, or ``UP[/DOWN]@RTT`` in Mbit/s and ms, e.g. ``20@200`` or ``100/100@30``."""
    if text in PROFILES:
        return PROFILES[text]
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(?:/(\d+(?:\.\d+)?))?@(\d+(?:\.\d+)?)", text.strip())
    if match is None:
        raise ValueError(
            f"link profile {text!r}: use one of {sorted(PROFILES)} or UP[/DOWN]@RTT_MS, e.g. 20@200"
        )
    up, down, rtt = float(match[1]), float(match[2]) if match[2] else None, float(match[3])
    if up <= 0 or rtt < 0 or (down is not None and down <= 0):
        raise ValueError(f"link profile {text!r}: rates must be > 0 and the RTT ≥ 0")
    return Profile(text.strip(), up, down, rtt)


def link_bound(total_bytes: int, profile: Profile) -> float:
    """Seconds the payload alone needs at the uplink's rate: no client can beat it."""
    return total_bytes / profile.up_bytes_per_second


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip() or done.returncode}")
    return done


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 of 10.213/16 no interface here uses (another run's emulator may hold one)."""
    used = _run("ip", "-o", "-4", "addr", "show").stdout
    start = os.getpid() % 16000
    subnets: list[ipaddress.IPv4Network] = list(SUBNET_POOL.subnets(new_prefix=30))  # type: ignore[arg-type]
    for index in range(len(subnets)):
        subnet = subnets[(start + index) % len(subnets)]
        if str(subnet[1]) not in used and str(subnet[2]) not in used:
            return subnet
    raise RuntimeError("no free /30 in 10.213.0.0/16 for the link emulator")


def _wait_banner(host: str, port: int, prefix: bytes, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} (log in the work dir)")
        try:
            with socket.create_connection((host, port), timeout=2.0) as conn:
                if not prefix or conn.recv(64).startswith(prefix):
                    return
        except OSError as exc:
            error = exc
        time.sleep(0.05)
    raise RuntimeError(f"{what} on {host}:{port} not ready after {READY_TIMEOUT:.0f} s ({error})")


class LinkEmulator:
    """vsftpd and sshd in a namespace behind ``profile``; see the module docstring."""

    _count = 0

    def __init__(self, profile: Profile, workdir: Path, cert: tuple[Path, Path] | None = None) -> None:
        self.profile = profile
        self.workdir = workdir
        self.cert = cert
        LinkEmulator._count += 1
        tag = f"{os.getpid() % 100000}{LinkEmulator._count}"
        self.namespace = f"sblink{tag}"
        self.host_end, self.ns_end = f"sblh{tag}"[:15], f"sbln{tag}"[:15]
        self.host_ip = self.ns_ip = ""
        self._stack = contextlib.ExitStack()
        self.relay: subprocess.Popen[bytes] | None = None
        self.ports: dict[int, int] = {}
        self.pasv_base = 0
        self.ftps: Server
        self.sftp: Server

    @staticmethod
    def available() -> str | None:
        """None when this machine can run the emulator, else why not."""
        if os.geteuid() != 0:
            return "needs root (ip netns, tc)"
        for tool in ("ip", "tc"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed (iproute2)"
        return None

    # -- what clients use
    @property
    def ftp_host(self) -> str:
        return "127.0.0.1"

    @property
    def ftp_port(self) -> int:
        return self.ports[FTP_PORT]

    @property
    def sftp_port(self) -> int:
        return self.ports[SSH_PORT]

    @property
    def echo_port(self) -> int:
        return self.ports[ECHO_PORT]

    def cut(self) -> None:
        """Reset every connection through the link now (both ends see a reset), as a line that
        drops; new connections are relayed again at once."""
        if self.relay is not None and self.relay.poll() is None:
            os.kill(self.relay.pid, signal.SIGUSR1)

    # -- set-up and tear-down
    def __enter__(self) -> LinkEmulator:
        why = self.available()
        if why:
            raise RuntimeError(f"link emulator: {why}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._network()
            self._start_relay()
            self._start_servers()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()

    def _network(self) -> None:
        subnet = _free_subnet()
        self.host_ip, self.ns_ip = str(subnet[1]), str(subnet[2])
        _run("ip", "netns", "add", self.namespace)
        self._stack.callback(_run, "ip", "netns", "delete", self.namespace, check=False)
        _run("ip", "link", "add", self.host_end, "type", "veth", "peer", "name", self.ns_end)
        # Deleting the namespace deletes its end and so the pair; this is for a failure before.
        self._stack.callback(_run, "ip", "link", "delete", self.host_end, check=False)
        _run("ip", "link", "set", self.ns_end, "netns", self.namespace)
        _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_end)
        _run("ip", "link", "set", self.host_end, "up")
        inside = ("ip", "netns", "exec", self.namespace)
        _run(*inside, "ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_end)
        _run(*inside, "ip", "link", "set", self.ns_end, "up")
        _run(*inside, "ip", "link", "set", "lo", "up")
        self._shape(self.host_end, self.profile.up_mbit, ())
        if self.profile.down_mbit:
            self._shape(self.ns_end, self.profile.down_mbit, inside)

    @staticmethod
    def _shape(device: str, mbit: float, prefix: tuple[str, ...]) -> None:
        rate = int(mbit * 1e6 * PAYLOAD_PER_FRAME)  # bit/s on the wire for payload at ``mbit``
        burst = max(16 * 1024, int(rate / 8 * 0.002))  # ≥ 2 ms of traffic: smooth, not bursty
        _run(*prefix, "tc", "qdisc", "add", "dev", device, "root", "tbf", "rate", f"{rate}bit",
             "burst", str(burst), "latency", "50ms")  # fmt: skip

    def _inside(self, command: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.namespace, *command],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group, stopped by our PID
            )
        self._stack.callback(stop_process_group, process)
        return process

    def _start_relay(self) -> None:
        cap = max(2 * self.profile.bdp_bytes, 64 * 1024)
        down = self.profile.down_mbit or self.profile.up_mbit * 10
        cap_down = max(int(2 * down * 1e6 / 8 * self.profile.rtt_ms / 1000), 64 * 1024)
        config = {
            "delay": self.profile.rtt_ms / 2000,
            "target": self.ns_ip,
            "ports": [[0, FTP_PORT], [0, SSH_PORT], [0, ECHO_PORT]],
            "pasv": PASV_PORTS,
            "cap_up": cap,
            "cap_down": cap_down,
        }
        with (self.workdir / "relay.log").open("ab") as log:
            self.relay = subprocess.Popen(
                [sys.executable, "-m", "bench.link_relay", json.dumps(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=Path(__file__).resolve().parent.parent,
                start_new_session=True,
            )
        self._stack.callback(stop_process_group, self.relay)
        assert self.relay.stdout is not None
        ready, _, _ = select.select([self.relay.stdout], [], [], READY_TIMEOUT)
        line = self.relay.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"bench.link_relay did not start (exit {self.relay.poll()}); see relay.log")
        answer = json.loads(line)
        self.ports = {int(target): int(port) for target, port in answer["ports"].items()}
        self.pasv_base = int(answer["pasv_base"])

    def _start_servers(self) -> None:
        served = self.workdir / "served"
        echo = self._inside(
            [sys.executable, "-c", ECHO_SERVER, self.ns_ip, str(ECHO_PORT)], self.workdir / "echo.log"
        )
        _wait_banner(self.ns_ip, ECHO_PORT, b"", echo, "echo server")
        # vsftpd: FTPS, require_ssl_reuse=YES, passive ports relayed one to one.
        cert = self.cert or make_self_signed_cert(self.workdir / "tls")
        base = served / "vsftpd"
        root, empty = base / "root", base / "empty"
        for directory in (root, empty):
            directory.mkdir(parents=True, exist_ok=True)
        text = vsftpd_config(
            FTP_PORT,
            root,
            empty,
            cert[0],
            cert[1],
            [
                "xferlog_enable=NO",
                "pasv_enable=YES",
                f"pasv_min_port={self.pasv_base}",
                f"pasv_max_port={self.pasv_base + PASV_PORTS - 1}",
                "pasv_address=127.0.0.1",
                "pasv_addr_resolve=NO",
            ],
        ).replace("listen_address=127.0.0.1", f"listen_address={self.ns_ip}")
        (base / "vsftpd.conf").write_text(text)
        vsftpd = self._inside([vsftpd_binary(), str(base / "vsftpd.conf")], base / "vsftpd.out")
        _wait_banner(self.ns_ip, FTP_PORT, b"220", vsftpd, "vsftpd")
        self.ftps = Server(
            name="ftps-vsftpd",
            protocol="ftps",
            root=root,
            remote_dir=str(root),
            host=self.ftp_host,
            port=self.ftp_port,
            username="anonymous",
            password="bench@example.com",
            ca_file=cert[0],
            pid=vsftpd.pid,
        )
        # sshd: internal-sftp, throwaway keys.
        base = served / "sshd"
        files = sshd_files(base)
        root = base / "root"
        root.mkdir(exist_ok=True)
        (base / "sshd_config").write_text(files.config(self.ns_ip, SSH_PORT))
        sshd = self._inside([sshd_binary(), "-D", "-e", "-f", str(base / "sshd_config")], base / "sshd.log")
        _wait_banner(self.ns_ip, SSH_PORT, b"SSH-", sshd, "sshd")
        import getpass

        self.sftp = Server(
            name="sftp",
            protocol="sftp",
            root=root,
            remote_dir=str(root),
            host=self.ftp_host,
            port=self.sftp_port,
            username=getpass.getuser(),
            key_file=files.user_key,
            host_key=files.fingerprint,
            known_hosts=files.known_hosts(self.ftp_host, self.sftp_port),
            pid=sshd.pid,
        )

    # -- validation
    def ping_pong(self, count: int = 7) -> float:
        """Median seconds of a 1-byte round trip through the link (after the handshake)."""
        times = []
        with socket.create_connection((self.ftp_host, self.echo_port), timeout=10) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sendall(b"w")  # warm-up: the first exchange also finishes the handshake
            if conn.recv(1) != b"w":
                raise RuntimeError("echo through the link returned the wrong byte")
            for _ in range(count):
                started = time.perf_counter()
                conn.sendall(b"x")
                if conn.recv(1) != b"x":
                    raise RuntimeError("echo through the link returned the wrong byte")
                times.append(time.perf_counter() - started)
        return statistics.median(times)


@contextlib.contextmanager
def emulated(profile: Profile, workdir: Path) -> Iterator[LinkEmulator]:
    """``with emulated(profile, dir) as link:`` — the same as ``with LinkEmulator(...)``."""
    with LinkEmulator(profile, workdir) as link:
        yield link
