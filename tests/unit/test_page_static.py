"""The page's files keep the promises a browser test would only notice when broken in the field:
nothing from another site (it works offline, and the CSP allows only 'self'), no inline script or
style (the CSP blocks them: the page would silently lose its behaviour or looks), data never
parsed as HTML, and the token never kept by the page."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

STATIC = Path(__file__).parents[2] / "stockbridge" / "web" / "static"
PAGES = ("index.html", "401.html")


class _Inline(HTMLParser):
    """Collects what the CSP (script-src 'self'; style-src 'self') would refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "style":
            self.problems.append("a <style> element")
        if "style" in names:
            self.problems.append(f"a style attribute on <{tag}>")
        self.problems += [f"an inline handler {name} on <{tag}>" for name in names if name.startswith("on")]
        if tag == "script":
            self._in_script = "src" not in names
        for name, value in attrs:
            if name in ("src", "href") and value and re.match(r"(?i)(https?:)?//", value):
                self.problems.append(f"<{tag} {name}={value}> from another site")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("an inline <script>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


@pytest.mark.parametrize("name", PAGES)
def test_the_pages_have_no_inline_script_or_style_and_nothing_from_another_site(name: str) -> None:
    parser = _Inline()
    parser.feed((STATIC / name).read_text(encoding="utf-8"))
    assert parser.problems == [], f"{name}: {parser.problems}"


def test_the_script_and_styles_load_nothing_from_another_site() -> None:
    for name in ("app.js", "app.css", *(f"icons/{icon.name}" for icon in (STATIC / "icons").glob("*.svg"))):
        text = (STATIC / name).read_text(encoding="utf-8")
        # SVG files name their XML namespace; that is an identifier, never fetched.
        text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), f"{name} names another site"
        assert "@import" not in text, f"{name} imports"


def test_the_script_never_parses_data_as_html_nor_keeps_the_token() -> None:
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    for risky in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert risky not in script, f"app.js uses {risky}: file names and reasons must stay text"
    for storage in ("localStorage", "sessionStorage", "document.cookie"):
        assert storage not in script, f"app.js touches {storage}: the token lives only in the HttpOnly cookie"
