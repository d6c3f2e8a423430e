"""Control flows one way: delivery uses the configuration, the configuration knows nothing of delivery
or of the transports (transport settings are built in stockbridge/delivery/connection.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parents[2] / "stockbridge" / "config"
FORBIDDEN = ("stockbridge.transports", "stockbridge.delivery")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, anywhere in it (functions and TYPE_CHECKING blocks too), as
    absolute dotted names with their line numbers; ``from a import b`` counts as ``a`` and ``a.b``."""
    package = "stockbridge.config"  # every module under config/ sits directly in this package
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def forbidden_imports(path: Path) -> list[str]:
    """One line per import statement that reaches a forbidden package."""
    first: dict[int, str] = {}
    for line, module in imported_modules(path):
        if any(module == name or module.startswith(f"{name}.") for name in FORBIDDEN):
            first.setdefault(line, f"{path.name}:{line}: imports {module}")
    return list(first.values())


def test_no_config_module_imports_the_transports_or_delivery():
    modules = sorted(CONFIG.glob("*.py"))
    assert len(modules) > 3, f"no modules found in {CONFIG}"
    found = [problem for path in modules for problem in forbidden_imports(path)]
    assert found == [], "config must not import transports or delivery (move the code to delivery/):\n" + (
        "\n".join(found)
    )


@pytest.mark.parametrize(
    "source",
    [
        "import stockbridge.transports.base",
        "from stockbridge.transports.base import TransportSettings",
        "from stockbridge import transports",
        "from stockbridge import delivery as d",
        "from ..delivery.connection import transport_settings",
        "from .. import transports",
        "def f():\n    from stockbridge.delivery import connection\n",
    ],
)
def test_the_check_sees_every_spelling_of_such_an_import(tmp_path: Path, source: str):
    module = tmp_path / "sample.py"
    module.write_text(source + "\n")
    assert forbidden_imports(module) != []


def test_the_check_lets_config_import_itself_and_the_errors(tmp_path: Path):
    module = tmp_path / "sample.py"
    module.write_text(
        "from stockbridge.config.models import Config\nfrom . import presets\nfrom stockbridge.errors import ConfigError\n"
    )
    assert forbidden_imports(module) == []


def test_secrets_loads_no_configuration_model():
    """Transports and log sinks import Secret; that must not pull in pydantic and every table."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, stockbridge.config.secrets; print(*sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=CONFIG.parents[1],
    ).stdout.split()
    assert "stockbridge.config.secrets" in loaded
    assert [name for name in loaded if name.startswith(("stockbridge.config.", "pydantic"))] == [
        "stockbridge.config.secrets"
    ]
