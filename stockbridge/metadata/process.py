"""The ``exiftool -stay_open`` process itself: started our way, watched, killed.

:class:`_StayOpenProcess` is pyexiftool's ``ExifToolHelper`` started in its own session, in a
directory of the caller's choosing, with only a few environment variables and a pre-resolved
``prctl`` (decisions.md E-3, E-7; pyexiftool#102). :func:`_guarded` runs one command under a
watchdog thread that kills the process group when the deadline passes or exiftool dies, and makes
pyexiftool's blocked read fail (decisions.md E-1; pyexiftool#81). The names are private to the
``metadata`` package: :class:`~stockbridge.metadata.exiftool.ExifTool` is the one user.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from exiftool import ExifToolHelper
from exiftool.exceptions import ExifToolException
from loguru import logger

from stockbridge.errors import MetadataError

#: How often the watchdog looks at the process while a call runs. It bounds how long a call
#: spins after exiftool died on its own (pyexiftool busy-loops on EOF, pyexiftool#81).
_WATCH_INTERVAL = 0.1

_INSTALL_HINT = (
    "install ExifTool (Debian/Ubuntu: apt install libimage-exiftool-perl; macOS: brew install exiftool)"
)


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM exiftool when its parent dies (even by SIGKILL).

    ExifTool in -stay_open mode polls a closed stdin forever (ReadStayOpen sleeps 10 ms and tries
    again), so without this an exiftool outlives a killed stockbridge. pyexiftool does the same,
    but dlopens libc inside the forked child, which can deadlock when other threads held the loader
    lock at fork time (pyexiftool#102). Here libc is resolved once, in the parent; the child only
    makes the call. Note: the "parent" is the thread that started the process; if that thread ends,
    exiftool is stopped and the next call starts a new one.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1  # <linux/prctl.h>

    def set_parent_death_signal() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return set_parent_death_signal


_PREEXEC = _parent_death_signal()


#: Environment variables passed to ExifTool; everything else (passwords, tokens) stays behind.
_CHILD_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PERL5LIB", "SYSTEMROOT")


def _child_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name in _CHILD_ENV_KEEP}


class _StayOpenProcess(ExifToolHelper):
    """pyexiftool's ExifToolHelper, started our way.

    pyexiftool 0.5.6's ``run()`` takes no working directory, leaves exiftool in our process group
    and uses a thread-unsafe preexec_fn; this ``run()`` differs in exactly those points. Commands,
    the sentinel protocol and exit-status checks stay pyexiftool's.
    """

    def __init__(self, executable: str, cwd: Path) -> None:
        super().__init__(
            executable=executable,
            common_args=[],  # options are given per call: reads and writes need different ones
            config_file="",  # never load an .ExifTool_config (Perl code), decisions.md E-3
            encoding="utf-8",  # not the locale's: under LANG=C that would be ASCII, decisions.md E-4
            check_execute=True,
            auto_start=False,  # every start goes through ExifTool._start, under the watchdog
        )
        self._cwd = cwd
        # Our own reference: pyexiftool drops _process when it notices a dead exiftool, and we
        # still need it to reap the process.
        self._popen: subprocess.Popen[bytes] | None = None

    def run(self) -> None:
        args = [str(self.executable), "-config", "", "-stay_open", "True", "-@", "-"]
        if sys.platform == "win32":
            args += ["-common_args", "-charset", "filename=utf8"]  # decisions.md E-4
        self._popen = self._process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self._cwd,
            # Only what Perl and ExifTool need: passwords given as { env = ... } must not reach a
            # child process (decisions.md X-2), and EXIFTOOL_HOME must not point it at a config file.
            env=_child_environment(),
            # Own process group: a timeout kills exiftool and anything it started, and a Ctrl-C
            # in a terminal does not kill it mid-write (we stop it cleanly instead).
            start_new_session=True,
            preexec_fn=_PREEXEC,  # only a pre-resolved prctl call, see _parent_death_signal
        )
        self._running = True

    def set_version(self, version: str) -> None:
        self._ver = version

    @property
    def cwd(self) -> Path:
        return self._cwd

    def set_niceness(self, niceness: int) -> None:
        """Lower exiftool's priority (raising niceness needs no privilege); best effort."""
        if self._popen is not None and hasattr(os, "setpriority"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, self._popen.pid, niceness)

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def popen(self) -> subprocess.Popen[bytes]:
        assert self._popen is not None
        return self._popen

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def stop(self, grace: float) -> None:
        """Ask exiftool to finish (``-stay_open False``), kill it if it has not after ``grace`` s."""
        process = self._popen
        if process is None:
            return
        try:
            assert process.stdin is not None
            process.stdin.write(b"-stay_open\nFalse\n")
            process.stdin.flush()
            process.wait(timeout=grace)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.abandon()

    def abandon(self) -> None:
        """Kill the process group, reap it (no zombie), close the pipes, forget it."""
        process, self._popen = self._popen, None
        if process is None:
            return
        _kill_group(process)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not take 10 s
            logger.error("ExifTool (pid {}) survived SIGKILL", process.pid)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._flag_running_false()


class _StartError(MetadataError):
    """ExifTool itself cannot run: not one file's problem, so ``read`` raises it."""


class _Hung(Exception):
    """exiftool did not answer in time, or died during a call."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _guarded(process: _StayOpenProcess, params: Sequence[str | bytes], timeout: float) -> str | bytes:
    """``process.execute(*params)`` under a watchdog thread; raises _Hung on timeout or death."""
    popen = process.popen()
    finished = threading.Event()
    decision = threading.Lock()
    fired: list[str] = []

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while not finished.wait(min(_WATCH_INTERVAL, max(deadline - time.monotonic(), 0))):
            if popen.poll() is not None:
                reason = f"exited unexpectedly (status {popen.returncode})"
            elif time.monotonic() >= deadline:
                reason = f"did not answer within {timeout:g} s"
            else:
                continue
            with decision:
                if finished.is_set():
                    return
                fired.append(reason)
            _unblock(popen)
            return

    watchdog = threading.Thread(target=watch, name=f"exiftool-watchdog-{popen.pid}", daemon=True)
    watchdog.start()
    try:
        result = process.execute(*params)
    except BaseException as exc:
        with decision:
            finished.set()
        watchdog.join()
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit: never turned into a retry
        if fired:
            raise _Hung(fired[0]) from exc
        if isinstance(exc, OSError | ExifToolException) and not process.alive():
            raise _Hung(f"exited unexpectedly ({exc})") from exc
        raise
    with decision:
        finished.set()
    watchdog.join()
    if fired:
        # The answer arrived just as the watchdog fired and killed the process: treat it as the
        # timeout it almost was (the caller retries on a fresh process).
        raise _Hung(fired[0])
    return result


def _unblock(popen: subprocess.Popen[bytes]) -> None:
    """Make pyexiftool's blocked read fail, then kill exiftool's process group.

    pyexiftool waits with select() + os.read() for its sentinel and never checks for EOF
    (pyexiftool#81), so killing exiftool alone would leave the call spinning. A directory is put
    on the stdout and stderr descriptors (dup2): select() reports it readable, os.read() fails
    with EISDIR, and the call raises. dup2 keeps the descriptor numbers taken, so no file another
    thread opens meanwhile can land on them. Killing the whole group closes the pipes' write
    ends even if exiftool started a helper, which wakes the blocked select().
    """
    if os.name == "posix":
        directory = os.open("/", os.O_RDONLY)
        try:
            for stream in (popen.stdout, popen.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError, ValueError):
                        os.dup2(directory, stream.fileno())
        finally:
            os.close(directory)
    _kill_group(popen)


def _kill_group(popen: subprocess.Popen[bytes]) -> None:
    try:
        if os.name == "posix":
            os.killpg(popen.pid, signal.SIGKILL)  # start_new_session: group id == pid
        else:  # pragma: no cover
            popen.kill()
    except (ProcessLookupError, PermissionError):
        pass


def _resolve_executable(executable: str | Path) -> str:
    # An explicit path is taken as is; a bare name is looked up on PATH only, never in the
    # current directory (pyexiftool would take a file of that name in cwd first).
    text = os.fspath(executable)
    if os.sep in text or (os.altsep and os.altsep in text):
        if not os.path.isfile(text):
            raise _StartError(f"ExifTool not found at {text}", hint=_INSTALL_HINT)
        return os.path.abspath(text)
    found = shutil.which(text)
    if found is None:
        raise _StartError(f"ExifTool ({text}) is not on PATH", hint=_INSTALL_HINT)
    return found
