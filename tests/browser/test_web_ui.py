"""The web UI in a real headless browser (Debian's Chromium driven by Playwright).

Starts ``faceindex serve --no-auth`` on a free port with an empty gallery, then does
through the UI what a person would: enrol a person from two photos, recognise them in a
third and in a photo with a stranger, verify two photos, delete the person through the
confirmation dialog; a second test drives the keyboard and the API key dialog. A screenshot
of each step goes to ``$FACEINDEX_SCREENSHOTS`` (default: a pytest temporary folder) and is
copied to ``/tmp/faceindex-screenshots/``.

Needs ``playwright`` (the ``dev`` extra) and Debian's ``/usr/bin/chromium``
(``.ci/install-browser``; the test is skipped without it); Playwright's own browser
download (``playwright install``) is never used.

``FACEINDEX_UI_SERVER=stub`` runs the same steps against ``stub_server.py`` (fixed answers,
no models) instead, for work on the UI alone.
"""

from __future__ import annotations

import os
import re

import pytest
from browser_harness import CHROMIUM, IMAGES, Browser, assert_boxes_drawn, expect, wipe_gallery

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (run .ci/install-browser)",
    ),
]


def test_enrol_recognise_verify_delete(browser: Browser) -> None:
    page = browser.page
    stub = os.environ.get("FACEINDEX_UI_SERVER") == "stub"  # boxes are not real faces
    wipe_gallery(browser.base)

    # 1. An empty gallery.
    browser.go("people")
    expect(page.locator("#people-summary")).to_contain_text("No one is enrolled yet")
    expect(page.locator("#server-info")).to_contain_text("no API key needed")
    browser.shot("01-people-empty")

    # 2. Enrol Barack Obama from two photos.
    page.get_by_role("link", name="Enrol", exact=True).click()
    expect(page.get_by_role("heading", name="Enrol", level=1)).to_be_visible()
    page.get_by_label("Name of the new person").fill("Barack Obama")
    page.locator("#enrol-files").set_input_files([IMAGES / "obama.jpg", IMAGES / "obama2.jpg"])
    expect(page.locator("#selected-photos > li")).to_have_count(2)
    expect(page.locator("#enrol-submit")).to_have_text("Enrol 2 photos")
    browser.shot("02-enrol-selected")
    page.locator("#enrol-submit").click()
    outcomes = page.locator("#enrol-outcomes > li")
    expect(outcomes).to_have_count(2)
    expect(page.locator("#enrol-results")).to_contain_text(
        "2 of 2 photos enrolled for Barack Obama"
    )
    expect(outcomes.filter(has_text="Accepted")).to_have_count(2)
    browser.shot("03-enrol-accepted")

    # 3. A photo of two people cannot enrol anyone: rejected, with the reason in words.
    page.locator("#enrol-files").set_input_files([IMAGES / "two_people.jpg"])
    expect(page.locator("#mode-existing")).to_be_checked()
    page.locator("#enrol-submit").click()
    expect(page.locator("#enrol-outcomes > li")).to_have_count(1)
    expect(page.locator("#enrol-outcomes > li")).to_contain_text("Rejected")
    expect(page.locator("#enrol-outcomes > li")).to_contain_text("More than one face")
    browser.shot("04-enrol-rejected")

    # 4. Recognise him in another photo.
    page.get_by_role("link", name="Recognise").click()
    page.locator("#recognise-file").set_input_files(IMAGES / "obama3.jpg")
    results = page.locator("#recognise-results > li")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Barack Obama")
    expect(page.locator("#recognise-stage canvas")).to_have_attribute(
        "aria-label", re.compile(r"^Boxes over the photo: Barack Obama, similarity 0\.\d\d$")
    )
    assert_boxes_drawn(page)
    browser.shot("05-recognise-obama3")

    # 5. Two people: him, and a stranger who is "unknown".
    page.locator("#recognise-file").set_input_files(IMAGES / "two_people.jpg")
    expect(results).to_have_count(2)
    # (the unknown one may name him as the closest candidate: count by decision)
    identified = page.locator("#recognise-results > li[data-decision=identified]")
    expect(identified).to_have_count(1)
    expect(identified).to_contain_text("Barack Obama")
    expect(results.filter(has_text="unknown")).to_have_count(1)
    expect(page.locator("#recognise-status")).to_contain_text("2 faces found: 1 recognised")
    assert_boxes_drawn(page)
    browser.shot("06-recognise-two-people")

    # 6. The (fake) camera: a frame with no face in it.
    page.locator("#use-camera").click()
    page.wait_for_function("() => document.querySelector('.camera video')?.videoWidth > 0")
    # a plain photo, without the liveness check (test_liveness_ui.py runs the check)
    page.locator("#camera-liveness").uncheck()
    page.locator("#take-photo").click()
    expect(page.locator("#recognise-status")).to_contain_text("No face was found")
    browser.shot("07-recognise-camera")

    # 7. Verify: two photos of him, then him and Biden.
    page.get_by_role("link", name="Verify").click()
    page.locator("#verify-file-a").set_input_files(IMAGES / "obama.jpg")
    page.locator("#verify-file-b").set_input_files(IMAGES / "obama3.jpg")
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#verify-decision")).to_have_text("Same person")
    expect(page.locator("#verify-similarity")).to_contain_text("Similarity 0.")
    browser.shot("08-verify-same")
    page.locator("#verify-file-b").set_input_files(IMAGES / "biden.jpg")
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#verify-decision")).to_have_text("Different people")
    browser.shot("09-verify-different")

    # 8. The people list and his page.
    page.get_by_role("link", name="People").click()
    expect(page.locator("#people-list > li")).to_have_count(1)
    page.get_by_label("Search by name").fill("nobody")
    expect(page.locator("#people-summary")).to_contain_text("No one's name matches")
    page.get_by_label("Search by name").fill("obam")
    expect(page.locator("#people-list > li")).to_have_count(1)
    browser.shot("10-people-search")
    page.get_by_role("link", name="Barack Obama").click()
    expect(page.get_by_role("heading", name="Barack Obama", level=1)).to_be_visible()
    faces = page.locator("#faces li.face-card")
    expect(faces).to_have_count(2)
    if not stub:
        expect(page.locator("#faces img.thumb")).to_have_count(2)

    # 9. Rename him, and remove one of his faces (confirmed in a dialog).
    page.get_by_label("Name", exact=True).fill("Barack H. Obama")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("heading", name="Barack H. Obama", level=1)).to_be_visible()
    expect(page.locator("#person-settings")).to_contain_text("Renamed to Barack H. Obama.")
    page.get_by_role("button", name="Remove face 2 of Barack H. Obama").click()
    expect(page.locator("#confirm-dialog")).to_contain_text("Remove this face")
    page.locator("#confirm-ok").click()
    expect(faces).to_have_count(1)
    expect(page.locator("main .lead").last).to_contain_text("1 enrolled face")
    if not stub:
        expect(page.locator("#person-settings dl")).to_contain_text("Photos kept1")
    browser.shot("11-person-detail")

    # 10. Delete him through the confirmation dialog: Cancel first keeps him.
    page.locator("#delete-person").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete Barack H. Obama?")
    expect(page.locator("#confirm-cancel")).to_be_focused()
    browser.shot("12-delete-confirm", full_page=False)
    page.locator("#confirm-cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("heading", name="Barack H. Obama", level=1)).to_be_visible()
    page.locator("#delete-person").click()
    page.locator("#confirm-ok").click()
    expect(page.get_by_role("heading", name="People", level=1)).to_be_visible()
    expect(page.locator(".flash")).to_have_text("Barack H. Obama was deleted.")
    expect(page.locator("#people-summary")).to_contain_text("No one is enrolled yet")
    expect(page.locator("#people-list > li")).to_have_count(0)
    browser.shot("13-people-after-delete")

    # 11. He is gone for recognition too.
    page.get_by_role("link", name="Recognise").click()
    page.locator("#recognise-file").set_input_files(IMAGES / "obama3.jpg")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("unknown")

    # 12. The same pages on a phone-sized screen (the second one dark).
    page.set_viewport_size({"width": 390, "height": 844})
    assert_boxes_drawn(page)
    browser.shot("14-phone-recognise")
    page.emulate_media(color_scheme="dark")
    browser.go("enrol")
    browser.shot("15-phone-enrol-dark")

    assert not browser.foreign, f"requests left the server: {browser.foreign}"
    assert not browser.problems, "\n".join(browser.problems)


def test_keyboard_and_api_key_dialog(browser: Browser) -> None:
    page = browser.page
    browser.go("people")
    # The skip link comes first, then the brand and the main navigation, all by Tab.
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="People")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Photos")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Enrol", level=1)).to_be_focused()
    # A 401 from the server opens the key dialog with a clear message.
    page.route(
        "**/v1/people?*",
        lambda route: route.fulfill(
            status=401,
            content_type="application/json",
            body='{"error": {"code": "unauthorized", "message": "missing key", "details": {}}}',
        ),
    )
    browser.go("people")
    dialog = page.locator("#settings-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#settings-reason")).to_contain_text("needs an API key")
    expect(page.locator("#api-key")).to_be_focused()
    browser.shot("16-api-key-dialog", full_page=False)
    page.locator("#api-key").fill("secret-key")
    page.unroute("**/v1/people?*")
    seen: list[str | None] = []
    page.on("request", lambda r: seen.append(r.headers.get("authorization")))
    page.locator("#save-key").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#people-summary")).to_be_visible()
    expect(page.locator("#banner")).to_be_hidden()
    assert "Bearer secret-key" in seen
    assert not browser.foreign, f"requests left the server: {browser.foreign}"
