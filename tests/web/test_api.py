"""The page's JSON API (docs/api.md) on a real ledger, through Starlette's TestClient."""

from __future__ import annotations

import json

from click.testing import CliRunner
from starlette.testclient import TestClient

from stockbridge.cli.main import main
from tests.web.conftest import NAMES, Site

ENDPOINTS = (
    "/api/status",
    "/api/files",
    "/api/files?state=failed",
    "/api/platforms",
    "/api/batches",
    "/api/not-taken",
)


def test_api_status_is_exactly_status_json_on_the_same_ledger(site: Site, client: TestClient) -> None:
    cli = CliRunner().invoke(main, ["status", "--json", "--config", str(site.workspace.config)])
    assert cli.exit_code == 0, cli.output
    assert client.get("/api/status").json() == json.loads(cli.stdout)


def test_status_shows_our_words_and_detail_shows_the_servers(site: Site, client: TestClient) -> None:
    failed = [
        job
        for entry in client.get("/api/status").json()["files"]
        for job in entry["platforms"].values()
        if job["state"] == "failed"
    ]
    assert [job["reason"] for job in failed] == ["the server refused this file (not allowed there)"]
    detail = CliRunner().invoke(
        main, ["status", "--json", "--detail", "--config", str(site.workspace.config)]
    )
    assert "MARKER-7f3a" in detail.stdout, "the server's words are there for whoever asks"


def test_no_response_holds_a_login_password_host_or_server_reply(site: Site, client: TestClient) -> None:
    files = client.get("/api/files").json()["items"]
    bodies = [client.get(path).text for path in ENDPOINTS]
    bodies += [client.get(f"/api/files/{item['id']}").text for item in files]
    for body in bodies:
        for secret in site.secrets:
            assert secret not in body


def test_files_are_paged_newest_first_with_every_platforms_state(client: TestClient) -> None:
    page = client.get("/api/files?limit=2").json()
    assert (page["total"], page["offset"], page["limit"], len(page["items"])) == (3, 0, 2, 2)
    rest = client.get("/api/files?limit=2&offset=2").json()["items"]
    items = page["items"] + rest
    assert sorted(item["name"] for item in items) == sorted(NAMES)
    assert [item["seen"] for item in items] == sorted((item["seen"] for item in items), reverse=True)
    states = {(item["name"], name): job["state"] for item in items for name, job in item["platforms"].items()}
    assert sorted(states.values()).count("uploaded") == 5 and "failed" in states.values()
    item = items[0]
    assert item["kind"] == "raster" and item["thumb"] == f"/api/thumbs/{item['id']}"


def test_filters_by_state_platform_name_and_date(client: TestClient) -> None:
    failed = client.get("/api/files?state=failed").json()
    assert failed["total"] == 1
    job = failed["items"][0]["platforms"]["agency"]
    assert job["state"] == "failed" and job["advice"] and job["reason"].startswith("the server refused")
    assert client.get("/api/files?platform=archive&state=failed").json()["total"] == 0
    assert client.get("/api/files?platform=archive&state=uploaded").json()["total"] == 3
    assert [i["name"] for i in client.get("/api/files?q=img_1").json()["items"]] == ["IMG_1.jpg"]
    assert client.get("/api/files?since=1h").json()["total"] == 3
    assert client.get("/api/files?since=2999-01-01").json()["total"] == 0
    assert client.get("/api/files?state=lost").status_code == 400
    assert "limit" in client.get("/api/files?limit=0").json()["error"]


def test_a_files_history_and_an_unknown_file(client: TestClient) -> None:
    item = client.get("/api/files?state=failed").json()["items"][0]
    one = client.get(f"/api/files/{item['id']}").json()
    moves = [(event["platform"], event["state"]) for event in one["history"]]
    assert ("agency", "pending") in moves and moves[-1] in {("agency", "failed"), ("archive", "uploaded")}
    assert ("agency", "failed") in moves and ("archive", "uploaded") in moves
    assert client.get("/api/files/" + "0" * 64).status_code == 404


def test_platform_cards_batches_and_not_taken(client: TestClient) -> None:
    cards = {card["name"]: card for card in client.get("/api/platforms").json()}
    assert set(cards) == {"agency", "archive"}
    agency = cards["agency"]
    assert (agency["transport"], agency["activity"], agency["paused"]) == ("ftp", "idle", None)
    assert agency["counts"]["failed"] == 1 and agency["today"] == {"uploaded": 2, "cap": None}
    assert agency["last_batch"]["failed"] == 1
    batches = client.get("/api/batches?limit=5").json()["batches"]
    assert {batch["platform"] for batch in batches} == {"agency", "archive"}
    assert client.get("/api/not-taken").json() == []


def test_thumbnails_are_small_jpegs_made_once_and_404_for_unknown(site: Site, client: TestClient) -> None:
    item = client.get("/api/files?limit=1").json()["items"][0]
    response = client.get(item["thumb"])
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(response.content)) as image:
        assert max(image.size) == 256
    stored = site.config.state.dir / "thumbs" / f"{item['id']}.jpg"
    assert stored.is_file()
    assert client.get("/api/thumbs/" + "f" * 64).status_code == 404
    assert client.get("/api/thumbs/not-a-hash").status_code == 404


def test_actions_say_what_is_wrong_and_change_nothing(client: TestClient) -> None:
    assert client.post("/api/actions/pause", json={"platform": "nowhere"}).status_code == 404
    assert "platform" in client.post("/api/actions/pause", json={}).json()["error"]
    assert client.post("/api/actions/retry", json={"job": "1"}).status_code == 400
    assert client.post("/api/actions/retry", json={"job": 99999}).status_code == 404
    assert client.post("/api/actions/explode", json={}).status_code == 404
    assert client.post("/api/actions/pause", content=b"not json").status_code == 400
    assert client.get("/api/actions/pause").status_code == 405
    uploaded = client.get("/api/files?platform=agency&state=uploaded").json()["items"][0]
    refused = client.post("/api/actions/retry", json={"job": uploaded["platforms"]["agency"]["job"]})
    assert refused.status_code == 409 and "not failed" in refused.json()["error"], "never twice"
    resend = client.post("/api/actions/resend", json={"id": uploaded["id"]})
    assert resend.status_code == 409 and "held nowhere" in resend.json()["error"]
    recheck = client.post("/api/actions/recheck", json={})
    assert recheck.json() == {"ok": True, "message": "looked at 0 held file(s) again: 0 go now, 0 still held"}
    assert client.get("/api/files?state=uploaded").json()["total"] == 3
