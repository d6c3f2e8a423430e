"""The tree shows the architecture (issue 12): the README's "How it is built" names every stage
package that exists and no other, and no module is so long that its jobs hide in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "stockbridge"
README = ROOT / "README.md"

#: About 600 lines is where a module starts doing more than one job (issue 12, item 1; style.md).
MAX_MODULE_LINES = 600
#: Modules still over the limit, each being split under issue 12. Remove an entry once its module is
#: split: the test fails while a listed module is already within the limit.
OVER_THE_LIMIT_FOR_NOW: set[str] = set()


def built_section() -> str:
    """The text of the README's "## How it is built", up to the next heading of its level."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## How it is built\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, 'README.md has no "## How it is built" section'
    return match.group(1)


def named_packages() -> set[str]:
    """The packages the section names, written as `name/`."""
    return set(re.findall(r"`([a-z_]+)/`", built_section()))


def sub_packages() -> set[str]:
    return {path.parent.name for path in PACKAGE.glob("*/__init__.py")}


def module_lines() -> dict[str, int]:
    return {
        path.relative_to(PACKAGE).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_the_readme_names_every_package_of_stockbridge():
    missing = sub_packages() - named_packages()
    assert not missing, f'README.md "How it is built" does not name: {", ".join(sorted(missing))}'


def test_every_package_the_readme_names_exists():
    unknown = named_packages() - sub_packages()
    assert not unknown, f'README.md "How it is built" names packages that do not exist: {sorted(unknown)}'


def test_no_module_is_over_600_lines():
    over = {
        name: count
        for name, count in module_lines().items()
        if count > MAX_MODULE_LINES and name not in OVER_THE_LIMIT_FOR_NOW
    }
    assert not over, f"over {MAX_MODULE_LINES} lines, split by the jobs they do: {over}"


def test_the_allow_list_of_long_modules_holds_only_modules_still_over_the_limit():
    lines = module_lines()
    stale = {
        name: lines.get(name) for name in OVER_THE_LIMIT_FOR_NOW if lines.get(name, 0) <= MAX_MODULE_LINES
    }
    assert not stale, f"no longer over {MAX_MODULE_LINES} lines (or gone): remove from the list: {stale}"
