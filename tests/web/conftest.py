"""One real ledger for the web tests: ``once`` against a real FTP server (pyftpdlib) that refuses
one file with a reply carrying a marker, and a folder platform. The config's login, password and
host, and the marker, must never appear in a response."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from stockbridge.config.loading import load_config
from stockbridge.config.models import Config
from stockbridge.demo.samples import make_image
from stockbridge.ledger.store import Ledger
from stockbridge.render.thumbnail import thumbnail
from stockbridge.service.once import run_once
from stockbridge.web.app import WebContext, build_app
from stockbridge.web.token import TokenKeeper
from tests.e2e.conftest import Workspace, platform_table
from tests.e2e.test_faults import FaultyFTPServer, as_platform
from tests.servers import LocalServer

LOGIN = "login-5e1f"
PASSWORD = "pw-9c2d-very-secret"
MARKER = "MARKER-7f3a"
LISTEN = "127.0.0.1:8765"
ORIGIN = f"http://{LISTEN}"
NAMES = ("IMG_0.jpg", "IMG_1.jpg", "IMG_2.jpg")


@dataclass
class Site:
    workspace: Workspace
    config: Config
    server: FaultyFTPServer
    archive: Path

    @property
    def secrets(self) -> list[str]:
        """What no response may contain: the login, the password, the host name, the server's words."""
        return [LOGIN, PASSWORD, MARKER, str(self.server.host)]


def photos(folder: Path, exiftool: Any, names: tuple[str, ...] = NAMES, seed: int = 700) -> list[Path]:
    return [
        make_image(
            folder / name, width=640, height=480, title=f"Photo {name}", exiftool=exiftool, seed=seed + i
        )
        for i, name in enumerate(names)
    ]


def write_site_config(
    root: Path, server: FaultyFTPServer, archive: Path, web: str = f'[web]\nlisten = "{LISTEN}"\n'
) -> Workspace:
    """``once`` never serves the page: [web] only says where it would be."""
    for name in ("exports", "state"):
        (root / name).mkdir(exist_ok=True)
    workspace = Workspace(
        root=root, exports=root / "exports", state=root / "state", config=root / "config.toml"
    )
    target = LocalServer(name="folder", protocol="folder", root=archive, remote_dir="/")
    workspace.write_config(
        platform_table("agency", as_platform(server)), platform_table("archive", target), web
    )
    return workspace


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, exiftool: Any) -> Iterator[Site]:
    pytest.importorskip("pyftpdlib")
    root = tmp_path_factory.mktemp("web-site")
    (root / "ftp").mkdir()
    (root / "archive").mkdir()
    server = FaultyFTPServer(root=root / "ftp", tls=False, username=LOGIN, password=PASSWORD)
    server.replies[("STOR", 2)] = f"550 {MARKER} not allowed on {server.host}"
    server.start()
    try:
        workspace = write_site_config(root, server, root / "archive")
        photos(workspace.exports, exiftool)
        config = load_config(workspace.config)
        report = run_once(config)
        assert report.failed, "one file is refused by the server"
        # What `run`'s maker would have made while serving the page (once makes none: test_thumbnail_maker).
        ledger = Ledger(config.ledger_path)
        for asset in ledger.assets():
            thumbnail(config.state.dir, asset.sha256, Path(asset.path), asset.file_type)
        ledger.close()
        yield Site(workspace, config, server, root / "archive")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def keeper(site: Site) -> TokenKeeper:
    return TokenKeeper(site.config.state.dir)


@pytest.fixture(scope="module")
def client(site: Site, keeper: TokenKeeper) -> Iterator[TestClient]:
    """A signed-in client (the bearer token) at the listen address."""
    context = WebContext(site.config)
    app = build_app(context, keeper, listen=LISTEN)
    with TestClient(app, base_url=ORIGIN) as test_client:
        test_client.headers["Authorization"] = f"Bearer {keeper.current()}"
        test_client.headers["Origin"] = ORIGIN
        yield test_client
    context.reader.close()


@pytest.fixture
def anonymous(site: Site, keeper: TokenKeeper) -> Iterator[TestClient]:
    app = build_app(WebContext(site.config), keeper, listen=LISTEN)
    with TestClient(app, base_url=ORIGIN) as test_client:
        yield test_client
