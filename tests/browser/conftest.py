"""The page in a real browser: Debian's Chromium driven by Selenium through Debian's chromedriver.

One Chromium for the whole session (``browser``) and one real ``stockbridge run`` for the module
(``site``), against the suite's FTP server (pyftpdlib) and a second agency whose server is down
at first (its port is bound and never listens, so connections are refused, the way
tests/e2e/test_faults.py does it). Both are stopped by what started them. Skipped, with the
reason, when Chromium or chromedriver is missing (``.ci/system-deps test`` installs them).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stockbridge.demo.localserver import FTPServerThread, free_port, local_ftp_server
from stockbridge.demo.samples import make_image
from stockbridge.metadata.exiftool import ExifTool
from tests.e2e.conftest import Workspace, platform_table, service
from tests.servers import LocalServer, pyftpdlib_platform
from tests.waiting import wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "s3cret-pass"
BROWSER_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium with a fresh profile; quit (chromedriver stopped) at the end."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install -e '.[dev]' (selenium)")
    for program in (CHROMIUM, CHROMEDRIVER):
        if not Path(program).exists() and shutil.which(Path(program).name) is None:
            pytest.skip(f"{program} is not installed (apt install chromium chromium-driver); CI installs it")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))
    for flag in BROWSER_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver_path = CHROMEDRIVER if Path(CHROMEDRIVER).exists() else str(shutil.which("chromedriver"))
    # A given driver path: Selenium Manager never goes to the network to find one.
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class Site:
    """The running service and what the tests reach through it."""

    workspace: Workspace
    url: str  # the page with its token, as `stockbridge web url` prints it
    base: str  # the page without the token
    agency: LocalServer  # up from the start
    backup_root: Path
    backup_port: int
    backup_holder: socket.socket  # keeps the down server's port ours until the server takes it
    log: Path
    exiftool: ExifTool
    backup: FTPServerThread | None = None

    def add_photo(self, name: str, seed: int) -> Path:
        """A small tagged JPEG written beside the folder, then moved in whole (as an export does)."""
        staging = self.workspace.root / "staging" / name
        make_image(
            staging,
            width=900,
            height=600,
            title=f"Harbour photo {seed}",
            keywords=KEYWORDS,
            seed=seed,
            exiftool=self.exiftool,
        )
        target = self.workspace.exports / name
        staging.replace(target)
        return target

    def start_backup(self) -> None:
        self.backup = FTPServerThread(
            root=self.backup_root,
            tls=False,
            username="photographer",
            password=PASSWORD,
            port=self.backup_port,
        )
        self.backup.start()
        self.backup_holder.close()


KEYWORDS = ("harbour", "boat", "sea", "summer", "travel", "water", "coast", "blue", "holiday", "sky")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, exiftool: ExifTool) -> Iterator[Site]:
    """`stockbridge run` with its page, two photos already sent to ``agency`` and waiting for
    ``backup`` (down)."""
    pytest.importorskip("pyftpdlib", reason="pip install 'stockbridge[demo]'")
    root = tmp_path_factory.mktemp("page")
    workspace = Workspace(
        root=root / "ws",
        exports=root / "ws" / "exports",
        state=root / "ws" / "state",
        config=root / "ws" / "c.toml",
    )
    workspace.exports.mkdir(parents=True)
    backup_root = root / "backup-root"
    backup_root.mkdir()
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    backup = LocalServer(
        name="backup",
        protocol="ftp",
        root=backup_root,
        remote_dir="/",
        host="127.0.0.1",
        port=holder.getsockname()[1],
        username="photographer",
        password=PASSWORD,
    )
    web_port = free_port()
    with local_ftp_server(
        root / "agency-root", tls=False, username="photographer", password=PASSWORD
    ) as ftpd:
        agency = pyftpdlib_platform(ftpd, root / "agency-root")
        workspace.write_config(
            platform_table("agency", agency, **{"batch.max_wait_seconds": 0}),
            platform_table("backup", backup, timeout_seconds=3, **{"batch.max_wait_seconds": 0}),
            f'[web]\nlisten = "127.0.0.1:{web_port}"\n',
        )
        site = Site(
            workspace=workspace,
            url="",
            base=f"http://127.0.0.1:{web_port}/",
            agency=agency,
            backup_root=backup_root,
            backup_port=backup.port or 0,
            backup_holder=holder,
            log=root / "run.log",
            exiftool=exiftool,
        )
        site.add_photo("harbour-1.jpg", 1)
        site.add_photo("harbour-2.jpg", 2)
        try:
            with service(workspace, site.log, ready=b"web page at"):
                printed = subprocess.run(
                    [sys.executable, "-m", "stockbridge", "web", "url", "--config", str(workspace.config)],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    env=workspace.env(),
                    stdin=subprocess.DEVNULL,
                )
                assert printed.returncode == 0, printed.stderr
                site.url = printed.stdout.strip().splitlines()[-1]
                wait_for(
                    lambda: len(list((root / "agency-root").glob("harbour-*.jpg"))) == 2,
                    60,
                    "the first two photos on the agency's server",
                )
                yield site
        finally:
            holder.close()
            if site.backup is not None:
                site.backup.stop()


_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A real service and a real browser: ``slow``, like tests/e2e (``make test-quick`` leaves them out)."""
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.slow)


def wait_for_page(driver: Any, script: str, what: str, timeout: float = 20) -> Any:
    """Poll a JavaScript expression in the page until it is true (the page's own state, no sleep)."""
    return wait_for(lambda: driver.execute_script(f"return {script}"), timeout, what)


def click(driver: Any, element_script: str, what: str, timeout: float = 20) -> None:
    """Click the element a JavaScript expression finds, with a real mouse click, as soon as it is
    there; a card redrawn by a live update between finding and clicking is found again."""
    from selenium.common.exceptions import StaleElementReferenceException

    def attempt() -> bool:
        element = driver.execute_script(f"return {element_script}")
        if element is None:
            return False
        try:
            element.click()
        except StaleElementReferenceException:
            return False
        return True

    wait_for(attempt, timeout, what)
