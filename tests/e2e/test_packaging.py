"""What a pipx user and a distribution get: the wheel and the sdist, built the way a release is
(the wheel from the sdist), and what is in them (issue 13, item 15)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def copy_of_the_tree(target: Path) -> Path:
    """The files git tracks (or would: new, not ignored) copied to ``target``: no .venv, no build files."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (item.decode() for item in files)):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(wheel, sdist), built from a copy of the committed tree so the worktree gets no build files."""
    pytest.importorskip("build", reason="the dev extra installs build: pip install -e '.[dev]'")
    root = tmp_path_factory.mktemp("packaging")
    source = copy_of_the_tree(root / "source")
    out = root / "dist"
    # No isolation: no network; the dev extra brings build and setuptools>=77. Without --sdist or
    # --wheel, build makes the sdist and then the wheel *from the sdist*, as a distribution would.
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def sdist_names(sdist: Path) -> set[str]:
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        return {name.removeprefix(f"{top}/") for name in archive.getnames()}


def test_the_wheel_carries_the_license_the_example_config_the_schema_and_the_reference(built):
    wheel, _ = built
    names = wheel_names(wheel)
    print("\n".join(sorted(names)))
    for name in (
        "stockbridge/reference/config.example.toml",
        "stockbridge/reference/config.schema.json",
        "stockbridge/reference/configuration.md",
        "stockbridge/presets/adobe_stock.toml",
        "stockbridge/service/templates/stockbridge-system.service",
        "stockbridge/py.typed",
        "stockbridge/web/static/index.html",  # the web page (issue 16)
    ):
        assert name in names, name
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), sorted(names)
    assert not any(name.startswith("tests/") for name in names)


def test_the_wheel_metadata_has_the_license_urls_and_classifiers(built):
    wheel, _ = built
    with zipfile.ZipFile(wheel) as archive:
        (metadata_name,) = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode("utf-8"))
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    urls = dict(entry.split(", ", 1) for entry in metadata.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Issues", "Source"} <= set(urls)
    classifiers = metadata.get_all("Classifier")
    assert "Programming Language :: Python :: 3.10" in classifiers
    assert "Environment :: No Input/Output (Daemon)" in classifiers


def test_the_sdist_has_what_it_takes_to_run_the_tests(built):
    _, sdist = built
    names = sdist_names(sdist)
    print("\n".join(sorted(names)))
    for name in (
        "LICENSE",
        "README.md",
        "Makefile",
        "config.example.toml",
        "docs/configuration.md",
        "docs/config.schema.json",
        "docs/decisions.md",
        "service/stockbridge.service",
        "service/stockbridge-system.service",
        "service/com.stockbridge.agent.plist",
        "tests/conftest.py",
        "tests/e2e/test_packaging.py",
        "tests/ledger-0.1.0.sql",
        "bench/run.py",
        ".ci/system-deps",
    ):
        assert name in names, name
    assert not any("__pycache__" in name for name in names)


def test_a_user_with_only_the_wheel_can_print_the_example_config(built, tmp_path):
    wheel, _ = built
    target = tmp_path / "installed"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)  # what pip puts in site-packages; dependencies come from this venv
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", "import stockbridge, sys; print(stockbridge.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.stdout.strip().startswith(str(target)), result.stdout + result.stderr
    example = subprocess.run(
        [sys.executable, "-m", "stockbridge", "config", "example"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert example.returncode == 0, example.stderr
    assert example.stdout.startswith("#:schema ./config.schema.json\n")
    assert "[watch]" in example.stdout
