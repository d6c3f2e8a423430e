"""No file without an answer (issue 13): an error nobody foresaw while preparing one platform's copy
becomes a ``failed`` job for that platform with the error as its reason, the other platforms still
get theirs, the log keeps the traceback, and ``once`` exits 1. Run in-process (``CliRunner``) so
the render can be made to fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stockbridge.cli.main import main
from stockbridge.delivery import prepare
from stockbridge.render.images import RenderSpec
from tests.e2e.conftest import Workspace, platform_table
from tests.images import MakeImage
from tests.servers import LocalServer


def folder(tmp_path: Path, name: str) -> LocalServer:
    root = tmp_path / name
    root.mkdir()
    return LocalServer(name=name, protocol="folder", root=root, remote_dir="/")


def workspace_in(tmp_path: Path) -> Workspace:
    workspace = Workspace(
        root=tmp_path, exports=tmp_path / "exports", state=tmp_path / "state", config=tmp_path / "config.toml"
    )
    workspace.exports.mkdir()
    return workspace


def test_an_unexpected_error_in_one_platforms_render_fails_that_job_and_once_exits_1(
    tmp_path: Path, make_image: MakeImage, monkeypatch: pytest.MonkeyPatch
):
    workspace = workspace_in(tmp_path)
    make_image(str(workspace.exports / "IMG_0001.jpg"))  # 1200×900: "small" needs a downscale, "as_is" not
    small, as_is = folder(tmp_path, "small"), folder(tmp_path, "as_is")
    workspace.write_config(
        platform_table("small", small, **{"rules.max_long_edge": 1000}),
        platform_table("as_is", as_is),
    )
    real_render = prepare.render

    def render(source: Path, target: Path, spec: RenderSpec, exiftool: Any) -> Any:
        if spec.size is not None:  # only the downscaled copy: the platform "small"
            raise ValueError("point operation not supported for this mode")
        return real_render(source, target, spec, exiftool)

    monkeypatch.setattr(prepare, "render", render)
    runner = CliRunner()

    once = runner.invoke(main, ["once", "--config", str(workspace.config), "--verbose"])

    assert once.exit_code == 1, once.output
    reason = "could not prepare this platform's copy: point operation not supported for this mode"
    assert f"IMG_0001.jpg for small: {reason}" in once.output
    assert "Traceback" in once.output and "ValueError" in once.output  # the traceback, at DEBUG
    status = runner.invoke(main, ["status", "--config", str(workspace.config), "--json"])
    assert status.exit_code == 0, status.output
    [entry] = json.loads(status.stdout)["files"]
    assert entry["platforms"]["small"]["state"] == "failed"
    assert entry["platforms"]["small"]["reason"] == reason
    assert entry["platforms"]["as_is"]["state"] == "uploaded"
    assert [path.name for path in as_is.root.iterdir()] == ["IMG_0001.jpg"]
    assert list(small.root.iterdir()) == []


def test_once_exits_1_when_a_file_got_no_answer_at_all(
    tmp_path: Path, make_image: MakeImage, monkeypatch: pytest.MonkeyPatch
):
    workspace = workspace_in(tmp_path)
    make_image(str(workspace.exports / "IMG_0001.jpg"))
    workspace.write_config(platform_table("as_is", folder(tmp_path, "as_is")))

    def accept_file(self: prepare.Pipeline, path: Path) -> None:
        raise RuntimeError("a bug before any job")  # past every guard inside accept_file

    monkeypatch.setattr(prepare.Pipeline, "accept_file", accept_file)

    once = CliRunner().invoke(main, ["once", "--config", str(workspace.config)])

    assert once.exit_code == 1, once.output
    assert "unexpected error preparing IMG_0001.jpg: a bug before any job" in once.output
