"""The page as a photographer uses it, in real Chromium against a real `stockbridge run`.

The tests share one service and one browser and run in this order: the first visit signs in with
the printed link; a photo arriving shows up with no reload; a retry sends the files waiting for an
agency whose server was down; the phone layout; last, a wrong link gets the friendly page.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.browser.conftest import Site, click, wait_for_page
from tests.waiting import wait_for

# The tests build on each other in file order: the Makefile's `--dist loadfile` keeps a file's tests
# on one pytest-xdist worker, in order. (`--dist loadgroup` with an xdist_group mark would be
# narrower, but pytest-xdist 3.8 under pytest 9 spreads a group over the workers.)


def card(name: str) -> str:
    """A JavaScript expression: the grid's card of the file called ``name`` (or undefined)."""
    names = json.dumps(name)
    return f"[...document.querySelectorAll('#grid .card')].find(c => c.querySelector('.card-name').textContent === {names})"


def chip_state(name: str, platform: str) -> str:
    return f"({card(name)}?.querySelector('.chip[data-platform=\"{platform}\"]')?.dataset.state)"


def test_the_grid_shows_each_photo_with_its_thumbnail_and_its_state_on_each_agency(
    site: Site, browser: Any
) -> None:
    browser.get(site.url)
    # The token leaves the address bar: the server set the cookie and sent the browser to /.
    assert browser.current_url == site.base
    wait_for_page(browser, "document.body.dataset.ready === 'true'", "the grid's first cards")
    for name in ("harbour-1.jpg", "harbour-2.jpg"):
        wait_for_page(browser, f"{chip_state(name, 'agency')} === 'uploaded'", f"{name} uploaded on agency")
        # Waiting for the agency whose server is down: not lost, not failed, shown as waiting.
        wait_for_page(browser, f"{chip_state(name, 'backup')} === 'pending'", f"{name} waiting for backup")
        # The thumbnail is the service's own (made in the background: a reload of the card fetches it).
        wait_for_page(
            browser,
            f"(() => {{ const img = {card(name)}.querySelector('img');"
            " return img.src.includes('/api/thumbs/') && img.complete && img.naturalWidth > 0; })()",
            f"{name}'s thumbnail",
            30,
        )
    mark = browser.execute_script(
        f"return {card('harbour-1.jpg')}.querySelector('.chip[data-platform=\"agency\"]').textContent"
    )
    assert mark.startswith("✓"), f"a state is shown by a mark, not by colour alone: {mark!r}"
    # The agency that cannot be reached says so, in words, on its card.
    wait_for_page(
        browser,
        "document.querySelector('.platform-card[data-platform=\"backup\"]')?.dataset.activity === 'paused'",
        "the backup agency shown paused",
    )
    words = browser.execute_script(
        "return document.querySelector('.platform-card[data-platform=\"backup\"] .paused-reason').textContent"
    )
    assert "reach" in words, words


def test_a_photo_arriving_in_the_folder_appears_without_a_reload(site: Site, browser: Any) -> None:
    browser.execute_script("window.stillTheSamePage = true")
    assert browser.execute_script(f"return {card('harbour-3.jpg')} === undefined")
    site.add_photo("harbour-3.jpg", 3)
    wait_for_page(browser, f"{card('harbour-3.jpg')} !== undefined", "the new photo's card", 30)
    wait_for_page(
        browser, f"{chip_state('harbour-3.jpg', 'agency')} === 'uploaded'", "the new photo uploaded", 30
    )
    assert browser.execute_script("return window.stillTheSamePage === true"), "the page was reloaded"
    assert browser.execute_script("return document.getElementById('live').dataset.state") == "live"


def test_retry_sends_the_photos_that_waited_for_a_server_that_was_down(site: Site, browser: Any) -> None:
    backup_card = "document.querySelector('.platform-card[data-platform=\"backup\"]')"
    pause_ends = wait_for(lambda: _pause_end(site), 20, "the backup agency's pause")
    site.start_backup()
    click(browser, f"{backup_card}?.querySelector('[data-action=\"retry\"]')", "the Try again now button")
    for name in ("harbour-1.jpg", "harbour-2.jpg", "harbour-3.jpg"):
        wait_for_page(
            browser, f"{chip_state(name, 'backup')} === 'uploaded'", f"{name} on the backup agency", 30
        )
    assert time.time() < pause_ends, "the files went when the pause ended by itself, not because of the retry"
    assert sorted(path.name for path in site.backup_root.glob("*.jpg")) == [
        "harbour-1.jpg",
        "harbour-2.jpg",
        "harbour-3.jpg",
    ]


def test_a_photos_details_show_its_state_and_history_on_each_agency(site: Site, browser: Any) -> None:
    click(browser, f"{card('harbour-1.jpg')}?.querySelector('.card-open')", "harbour-1's picture")
    wait_for_page(browser, "document.getElementById('detail').open", "the details dialog")
    wait_for_page(
        browser,
        "document.querySelectorAll('#detail-platforms .detail-platform').length === 2",
        "both agencies",
    )
    text = browser.find_element("id", "detail").text
    assert "harbour-1.jpg" in text and "Agency" in text and "Backup" in text, text
    history = browser.find_element("id", "detail-history").text
    # Newest first: sent to the backup agency at last, after waiting for its server.
    assert history.index("Backup: uploaded") < history.index("Backup: waiting"), history
    browser.find_element("id", "detail-close").click()
    wait_for_page(browser, "!document.getElementById('detail').open", "the dialog closed")


def _pause_end(site: Site) -> float | None:
    """When the backup agency's pause lifts by itself (unix time), from the page's own API."""
    status = site.workspace.status()
    until = status.get("paused_until", {}).get("backup")
    return float(until) if until else None


def test_on_a_phone_the_page_never_scrolls_sideways(site: Site, browser: Any) -> None:
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True},
    )
    try:
        browser.get(site.base)
        wait_for_page(browser, "document.body.dataset.ready === 'true'", "the grid on a phone")
        wide = browser.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert wide[0] <= wide[1], f"the page is {wide[0]} px wide on a {wide[1]} px screen"
        columns = browser.execute_script(
            "return getComputedStyle(document.getElementById('grid')).gridTemplateColumns.split(' ').length"
        )
        assert columns == 2, f"two thumbnails side by side on a phone, not {columns}"
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_a_search_is_kept_in_the_address_so_a_reload_keeps_it(site: Site, browser: Any) -> None:
    browser.get(site.base)
    wait_for_page(browser, "document.body.dataset.ready === 'true'", "the grid")
    search = browser.find_element("id", "filter-q")
    search.send_keys("harbour-2")
    wait_for_page(browser, "location.hash === '#q=harbour-2'", "the search in the address")
    names = "[...document.querySelectorAll('#grid .card-name')].map(e => e.textContent)"
    wait_for_page(
        browser, f"JSON.stringify({names}) === '[\"harbour-2.jpg\"]'", "only the photo searched for"
    )
    browser.refresh()
    wait_for_page(browser, "document.body.dataset.ready === 'true'", "the grid after a reload")
    assert browser.execute_script(f"return {names}") == ["harbour-2.jpg"]
    assert browser.find_element("id", "filter-q").get_attribute("value") == "harbour-2"


def test_a_wrong_link_gets_a_page_that_says_how_to_get_a_fresh_one(site: Site, browser: Any) -> None:
    browser.delete_all_cookies()
    browser.get(site.base + "?token=not-the-token")
    text = browser.find_element("tag name", "body").text
    assert "stockbridge web url" in text, text
    browser.get(site.base)
    assert "stockbridge web url" in browser.find_element("tag name", "body").text, "no cookie, no page"
    assert browser.execute_script("return document.getElementById('grid')") is None
