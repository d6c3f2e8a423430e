"""Only the owner gets in (decisions.md X-20, X-21): every refusal, and the headers on every answer."""

from __future__ import annotations

import os
import stat

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from stockbridge.cli.main import main
from stockbridge.web.guard import CSP
from stockbridge.web.token import TokenKeeper
from tests.web.conftest import LISTEN, ORIGIN, Site

PROTECTED = (
    "/api/status",
    "/api/files",
    "/api/platforms",
    "/api/events",
    "/api/thumbs/" + "a" * 64,
    "/static/app.js",
)


def test_no_token_or_a_wrong_one_gets_401_everywhere(anonymous: TestClient) -> None:
    for path in PROTECTED:
        assert anonymous.get(path).status_code == 401, path
        wrong = anonymous.get(path, headers={"Authorization": "Bearer " + "x" * 43})
        assert wrong.status_code == 401 and "stockbridge web url" in wrong.json()["error"], path
    page = anonymous.get("/")
    assert page.status_code == 401 and "stockbridge web url" in page.text
    assert anonymous.get("/static/icons/../app.js").status_code == 401
    assert anonymous.get("/static/app.css").status_code in (200, 404), "the refused page's style is public"
    assert (
        anonymous.post(
            "/api/actions/pause", json={"platform": "agency"}, headers={"Origin": ORIGIN}
        ).status_code
        == 401
    )


def test_a_token_in_the_query_opens_only_the_first_page(anonymous: TestClient, keeper: TokenKeeper) -> None:
    token = keeper.current()
    assert anonymous.get(f"/api/status?token={token}").status_code == 401
    first = anonymous.get(f"/?token={token}", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert anonymous.get("/api/status").status_code == 200, "the cookie lets the page in"
    assert anonymous.get("/?token=wrong", follow_redirects=False).status_code == 401


def test_a_foreign_host_gets_421_even_with_the_token(client: TestClient) -> None:
    for host in ("evil.example:8765", "127.0.0.1:9999", ""):
        response = client.get("/api/status", headers={"Host": host})
        assert response.status_code == 421, host
    assert client.get("/api/status", headers={"Host": "localhost:8765"}).status_code == 200


def test_a_post_without_the_pages_own_origin_gets_403(client: TestClient) -> None:
    for origin in ("https://evil.example", "null", "http://localhost:8766"):
        response = client.post("/api/actions/recheck", json={}, headers={"Origin": origin})
        assert response.status_code == 403, origin
    del client.headers["Origin"]
    try:
        assert client.post("/api/actions/recheck", json={}).status_code == 403
    finally:
        client.headers["Origin"] = ORIGIN


def test_security_headers_on_every_answer_refusals_included(
    client: TestClient, anonymous: TestClient
) -> None:
    answers = [
        client.get("/api/status"),
        client.get("/"),
        anonymous.get("/api/files"),
        client.get("/nothing"),
    ]
    answers.append(client.get("/api/status", headers={"Host": "evil.example"}))
    for response in answers:
        assert response.headers["content-security-policy"] == CSP
        assert "unsafe-inline" not in CSP and "script-src 'self'" in CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
    assert client.get("/api/files").headers["cache-control"] == "no-store"


def test_rotating_the_token_locks_the_old_one_out_at_once(
    site: Site, client: TestClient, keeper: TokenKeeper
) -> None:
    old = keeper.current()
    result = CliRunner().invoke(main, ["web", "rotate-token", "--config", str(site.workspace.config)])
    assert result.exit_code == 0, result.output
    new = keeper.current()
    assert new != old and f"?token={new}" in result.output
    assert client.get("/api/status").status_code == 401, "the old token no longer works"
    client.headers["Authorization"] = f"Bearer {new}"
    assert client.get("/api/status").status_code == 200
    token_file = site.config.state.dir / "web-token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600 and len(new or "") >= 43


def test_web_url_prints_the_address_with_the_token(site: Site, keeper: TokenKeeper) -> None:
    result = CliRunner().invoke(main, ["web", "url", "--config", str(site.workspace.config)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"http://{LISTEN}/?token={keeper.current()}"


def test_a_token_file_others_can_read_is_narrowed(site: Site, keeper: TokenKeeper) -> None:
    token_file = site.config.state.dir / "web-token"
    token_file.chmod(0o644)
    os.utime(token_file)  # seen as changed: read again
    assert TokenKeeper(site.config.state.dir).current() == keeper.current()
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600


@pytest.mark.parametrize(
    ("web", "words"),
    [
        ('listen = "0.0.0.0:8765"', "allow_remote"),
        ('listen = "192.0.2.1:8765"\nallow_remote = true', "tls_cert and tls_key required"),
        ('listen = "8765"', "ADDRESS:PORT"),
    ],
)
def test_remote_listening_needs_allow_remote_and_tls(site: Site, tmp_path, web: str, words: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(site.workspace.config.read_text().replace(f'listen = "{LISTEN}"', web))
    config.chmod(0o600)
    result = CliRunner().invoke(main, ["web", "url", "--config", str(config)])
    assert result.exit_code == 2 and "web" in result.output and words in result.output, result.output
