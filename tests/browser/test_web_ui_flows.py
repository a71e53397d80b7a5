"""The flows a newcomer needs to trust the web UI, each at desktop and phone size.

Enrolment of a bad batch (a text file named .jpg among more photos than one request may
carry), the wrong-person confirmation, naming an unknown face from a recognition result,
merging two people, gallery export and import, the API key dialog (wrong key, read-only
key), and the monitors, audit, keys and settings pages. Screenshots go where those of
``test_web_ui.py`` go (``$FACEINDEX_SCREENSHOTS``, copied to /tmp/faceindex-screenshots/).

A test whose endpoint the server under test does not have yet is skipped with the reason
(``require_endpoint``); the stub server (``FACEINDEX_UI_SERVER=stub``) has them all.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from browser_harness import (
    CHROMIUM,
    IMAGES,
    STUB,
    Browser,
    api_call,
    assert_boxes_drawn,
    enrol_via_api,
    expect,
    openapi_text,
    require_endpoint,
    require_text_in_api,
    wipe_gallery,
)
from PIL import Image, ImageOps

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (run .ci/install-browser)",
    ),
]

SCREENS = ["desktop", "phone"]


def _variants(folder: Path, source: Path, n: int) -> list[Path]:
    """`n` different files of the same face (mirrored and scaled copies)."""
    out = []
    with Image.open(source) as im:
        base = im.convert("RGB")
    for i in range(n):
        im = ImageOps.mirror(base) if i % 2 else base
        scale = 1.0 - 0.02 * (i // 2)
        im = im.resize((round(base.width * scale), round(base.height * scale)))
        path = folder / f"{source.stem}-v{i:02d}.jpg"
        im.save(path, quality=90)
        out.append(path)
    return out


def _conflicts_supported(base: str) -> bool:
    return STUB or "matches_other_person" in openapi_text(base)


@pytest.mark.parametrize("screen", SCREENS)
def test_bad_batch_enrolment(browser: Browser, screen: str, tmp_path: Path) -> None:
    """A text file named .jpg among 21 files: every photo gets its outcome, no one is lost,
    and the next enrolment starts from an empty selection."""
    page = browser.page
    wipe_gallery(browser.base)
    browser.use_screen(screen)
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a photo\n")
    good = _variants(tmp_path, IMAGES / "obama.jpg", 20 if screen == "desktop" else 3)
    files = [good[0], bad, *good[1:]]
    browser.go("enrol")
    page.get_by_label("Name of the new person").fill("Barack Obama")
    page.locator("#enrol-files").set_input_files(files)
    expect(page.locator("#selected-photos > li")).to_have_count(len(files))
    page.locator("#enrol-submit").click()
    outcomes = page.locator("#enrol-outcomes > li")
    expect(outcomes).to_have_count(len(files))
    expect(page.locator("#enrol-outcomes > li[data-status=waiting]")).to_have_count(0)
    summary = page.locator("#enrol-results .notice").first
    expect(summary).to_contain_text(
        re.compile(rf"\d+ of {len(files)} photos enrolled for Barack Obama")
    )
    bad_row = outcomes.filter(has_text="notes.jpg")
    expect(bad_row).to_contain_text("Rejected")
    expect(bad_row).to_contain_text("could not be read as an image")
    accepted = page.locator("#enrol-outcomes > li[data-status=accepted]").count()
    assert accepted >= len(good) - 2, f"only {accepted} of {len(good)} good photos accepted"
    expect(summary).to_contain_text(f"{accepted} of {len(files)} photos enrolled")
    # The selection was emptied: nothing carries over to the next person.
    expect(page.locator("#selected-photos > li")).to_have_count(0)
    expect(page.locator("#enrol-submit")).to_have_text("Enrol")
    browser.shot(f"20-enrol-bad-batch-{screen}")

    page.locator("#mode-new").check()
    page.get_by_label("Name of the new person").fill("Joe Biden")
    page.locator("#enrol-files").set_input_files([IMAGES / "biden.jpg"])
    expect(page.locator("#selected-photos > li")).to_have_count(1)
    page.locator("#enrol-submit").click()
    expect(page.locator("#enrol-results")).to_contain_text("1 of 1 photo enrolled for Joe Biden")
    expect(outcomes).to_have_count(1)
    browser.shot(f"21-enrol-next-person-{screen}")

    # A whole folder: its photos are taken, anything else in it is left out (and said so).
    folder = tmp_path / "album"
    folder.mkdir()
    _variants(folder, IMAGES / "biden.jpg", 2)
    (folder / "README.txt").write_text("holiday photos\n")
    page.locator("#enrol-folder").set_input_files(folder)
    expect(page.locator("#selected-photos > li")).to_have_count(2)
    expect(page.locator("#selection-note")).to_contain_text("1 file that is not a photo left out")
    page.locator("#enrol-submit").click()
    expect(page.locator("#enrol-results")).to_contain_text("2 of 2 photos enrolled for Joe Biden")
    browser.check_clean()


@pytest.mark.parametrize("screen", SCREENS)
def test_wrong_person_confirmation(browser: Browser, screen: str) -> None:
    """A face that matches someone else is held back until the user says who it is."""
    require_text_in_api(browser.base, "matches_other_person", "refuse a face of someone else")
    page = browser.page
    wipe_gallery(browser.base)
    enrol_via_api(browser.base, "Barack Obama", [IMAGES / "obama.jpg", IMAGES / "obama2.jpg"])
    browser.use_screen(screen)
    browser.go("enrol")
    page.get_by_label("Name of the new person").fill("Someone Else")
    page.locator("#enrol-files").set_input_files([IMAGES / "obama3.jpg", IMAGES / "biden.jpg"])
    page.locator("#enrol-submit").click()
    outcomes = page.locator("#enrol-outcomes > li")
    expect(outcomes).to_have_count(2)
    held = outcomes.filter(has_text="obama3.jpg")
    expect(held).to_contain_text(
        re.compile(r"This looks like Barack Obama \(0\.\d\d\), not Someone Else\. Enrol anyway\?")
    )
    expect(outcomes.filter(has_text="biden.jpg")).to_contain_text("Accepted")
    expect(page.locator("#enrol-results")).to_contain_text("1 photo looks like someone else")
    browser.shot(f"22-enrol-wrong-person-{screen}")

    if screen == "phone":
        held.get_by_role("button", name=re.compile("Do not enrol")).click()
        expect(held).to_contain_text("left out")
        expect(page.locator("#enrol-results")).to_contain_text("1 of 2 photos enrolled")
        browser.shot(f"23-enrol-wrong-person-left-out-{screen}")
        browser.check_clean()
        return
    held.get_by_role("button", name=re.compile("anyway")).click()
    expect(held).to_contain_text("Accepted")
    expect(page.locator("#enrol-results")).to_contain_text("2 of 2 photos enrolled")
    browser.shot(f"23-enrol-wrong-person-confirmed-{screen}")
    # On the person's page, the face enrolled against the warning is marked.
    page.get_by_role("link", name="See Someone Else").click()
    expect(page.locator("#faces li.face-card")).to_have_count(2)
    # Thumbnails cut around the face (its box found in the kept photo), and the avatar too.
    expect(page.locator("#faces img.thumb[data-centred]")).to_have_count(2)
    expect(page.locator(".person-title .avatar img")).to_have_count(1)
    pid = re.search(r"#/people/(\d+)", page.url)
    assert pid
    faces = api_call(browser.base, "GET", f"v1/people/{pid[1]}/faces")["items"]
    if any("flags" in f for f in faces):
        expect(page.locator("#faces li.face-card.flagged")).to_have_count(1)
        expect(page.locator("#faces li.face-card.flagged")).to_contain_text(
            "matches another enrolled person"
        )
    browser.shot(f"24-person-flagged-face-{screen}")
    browser.check_clean()


@pytest.mark.parametrize("screen", SCREENS)
def test_assign_unknown_face(browser: Browser, screen: str) -> None:
    """'This is …' on the stranger of a group photo enrols a crop of that face; the photo is
    then recognised again with the new name. On a phone the labels do not cover other faces."""
    page = browser.page
    wipe_gallery(browser.base)
    enrol_via_api(browser.base, "Barack Obama", [IMAGES / "obama.jpg"])
    browser.use_screen(screen)
    browser.go("recognise")
    page.locator("#recognise-file").set_input_files(IMAGES / "two_people.jpg")
    results = page.locator("#recognise-results > li")
    expect(results).to_have_count(2)
    unknown = results.filter(has_text="unknown")
    expect(unknown).to_contain_text(re.compile(r"closest.*0\.\d\d"))
    assert_boxes_drawn(page)
    _assert_labels_clear(page)
    unknown.get_by_role("button", name=re.compile("this is")).click()
    form = unknown.locator("form.assign-form")
    form.get_by_label("A new person").check()
    form.get_by_label("Name of the new person").fill("The Stranger")
    browser.shot(f"25-recognise-this-is-{screen}")
    form.get_by_role("button", name="Add this face").click()
    expect(form).to_contain_text("is now enrolled for The Stranger")
    # Recognised again: both faces now have a name.
    identified = page.locator("#recognise-results > li[data-decision=identified]")
    expect(identified).to_have_count(2)
    expect(identified.filter(has_text="The Stranger")).to_have_count(1)
    expect(identified.filter(has_text="Barack Obama")).to_have_count(1)
    expect(page.locator("#recognise-status")).to_contain_text("2 recognised")
    assert_boxes_drawn(page)
    _assert_labels_clear(page)
    browser.shot(f"26-recognise-assigned-{screen}")

    # Several photos at once.
    page.locator("#recognise-file").set_input_files(
        [IMAGES / "obama3.jpg", IMAGES / "biden.jpg", IMAGES / "two_people.jpg"]
    )
    batch = page.locator("#recognise-batch > li")
    expect(batch).to_have_count(3)
    expect(page.locator("#recognise-batch-status")).to_contain_text("3 photos recognised")
    expect(batch.nth(0)).to_contain_text("Barack Obama")
    expect(batch.nth(2)).to_contain_text("The Stranger")
    batch.nth(2).get_by_role("button", name=re.compile("Show")).click()
    expect(results).to_have_count(2)
    browser.shot(f"27-recognise-several-{screen}")
    browser.check_clean()


def _assert_labels_clear(page: object) -> None:
    """No face label covers another face's box or another label."""
    drawn = page.evaluate(  # type: ignore[attr-defined]
        """() => {
            const c = document.querySelector('#recognise-stage canvas');
            return {labels: JSON.parse(c.dataset.labels), boxes: JSON.parse(c.dataset.boxes)};
        }"""
    )

    def overlap(a: list[int], b: list[int]) -> int:
        w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
        h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
        return max(0, w) * max(0, h)

    labels, boxes = drawn["labels"], drawn["boxes"]
    for i, label in enumerate(labels):
        for j, box in enumerate(boxes):
            if i != j:
                assert overlap(label, box) <= 2, f"label {i} covers face {j}: {drawn}"
        for j, other in enumerate(labels):
            if i != j:
                assert overlap(label, other) <= 2, f"labels {i} and {j} overlap: {drawn}"


@pytest.mark.parametrize("screen", SCREENS)
def test_merge_people(browser: Browser, screen: str, tmp_path: Path) -> None:
    require_endpoint(browser.base, "POST", "/v1/people/{person_id}/merge")
    page = browser.page
    wipe_gallery(browser.base)
    joe = enrol_via_api(browser.base, "Joe Biden", [IMAGES / "biden.jpg"])
    mirrored = _variants(tmp_path, IMAGES / "biden.jpg", 2)[1]
    enrol_via_api(
        browser.base, "Joseph Biden", [mirrored], force=_conflicts_supported(browser.base)
    )
    browser.use_screen(screen)
    browser.go(f"people/{joe}")
    page.get_by_label("Find a person").fill("Joseph")
    expect(page.locator("#merge-from option")).to_have_count(1)
    expect(page.locator("#merge-from option")).to_contain_text("Joseph Biden")
    page.locator("#merge-submit").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_contain_text("Merge Joseph Biden into Joe Biden?")
    browser.shot(f"28-merge-confirm-{screen}", full_page=False)
    page.locator("#confirm-ok").click()
    expect(page.locator(".flash")).to_have_text("Joseph Biden was merged into Joe Biden.")
    expect(page.locator("#faces li.face-card")).to_have_count(2)
    expect(page.locator("#faces img.thumb[data-centred]")).to_have_count(2)
    browser.shot(f"29-merged-{screen}")
    browser.go("people")
    expect(page.locator("#people-list > li")).to_have_count(1)
    expect(page.locator("#people-list .avatar img[data-centred]")).to_have_count(1)
    browser.shot(f"29b-people-avatars-{screen}")
    browser.check_clean()


@pytest.mark.parametrize("screen", SCREENS)
def test_export_import(browser: Browser, screen: str, tmp_path: Path) -> None:
    require_endpoint(browser.base, "GET", "/v1/gallery/export")
    require_endpoint(browser.base, "POST", "/v1/gallery/import")
    page = browser.page
    wipe_gallery(browser.base)
    enrol_via_api(browser.base, "Barack Obama", [IMAGES / "obama.jpg"])
    enrol_via_api(browser.base, "Joe Biden", [IMAGES / "biden.jpg"])
    browser.use_screen(screen)
    browser.go("settings")
    with page.expect_download() as download:
        page.locator("#export-gallery").click()
    saved = tmp_path / (download.value.suggested_filename or "export")
    download.value.save_as(saved)
    assert saved.stat().st_size > 0
    expect(page.locator("#export-status")).to_contain_text("Export downloaded")
    wipe_gallery(browser.base)
    page.locator("#import-file").set_input_files(saved)
    page.locator("#import-gallery").click()
    expect(page.locator("#import-result")).to_contain_text("2 people added")
    expect(page.locator("#import-result")).to_contain_text("2 face templates added")
    browser.shot(f"30-export-import-{screen}")
    browser.go("people")
    expect(page.locator("#people-list > li")).to_have_count(2)
    browser.check_clean()


@pytest.mark.parametrize("screen", SCREENS)
def test_api_key_dialog_states(browser: Browser, screen: str) -> None:
    """✓ only after the server accepted the key; ✗ after a 401; a read-only key is told it
    needs the write scope; the dialog says how to get a key."""
    page = browser.page
    wipe_gallery(browser.base)
    browser.use_screen(screen)
    browser.go("people")
    button = page.locator("#open-settings")
    button.click()
    dialog = page.locator("#settings-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("faceindex keys create --name NAME --scopes read,write")

    unauthorized = json.dumps(
        {"error": {"code": "unauthorized", "message": "unknown API key", "details": {}}}
    )
    page.route(
        "**/v1/people?*",
        lambda route: route.fulfill(status=401, content_type="application/json", body=unauthorized),
    )
    page.locator("#api-key").fill("wrong-key")
    page.locator("#save-key").click()
    expect(page.locator("#settings-reason")).to_contain_text("rejected this key")
    expect(dialog).to_be_visible()
    expect(button).to_have_text("API key ✗ rejected")
    browser.shot(f"31-key-rejected-{screen}", full_page=False)

    page.unroute("**/v1/people?*")
    page.locator("#save-key").click()
    expect(dialog).to_be_hidden()
    expect(button).to_have_text("API key ✓")

    # A read-only key: the server answers 403 to every change.
    forbidden = json.dumps(
        {
            "error": {
                "code": "forbidden",
                "message": "this API key lacks the write scope",
                "details": {"required": "write"},
            }
        }
    )

    def read_only(route: object) -> None:
        if route.request.method in {"POST", "PATCH", "DELETE"}:  # type: ignore[attr-defined]
            route.fulfill(status=403, content_type="application/json", body=forbidden)  # type: ignore[attr-defined]
        else:
            route.continue_()  # type: ignore[attr-defined]

    page.route("**/v1/people**", read_only)
    browser.go("enrol")
    page.get_by_label("Name of the new person").fill("Read Only")
    page.locator("#enrol-files").set_input_files([IMAGES / "obama.jpg"])
    page.locator("#enrol-submit").click()
    expect(page.locator("main .notice.error")).to_contain_text("lacks the write scope")
    expect(page.locator("main .notice.error")).to_contain_text("--scopes read,write")
    expect(dialog).to_be_hidden()
    expect(button).to_have_text("API key ✓")  # the key is valid, only too weak
    browser.shot(f"32-key-read-only-{screen}")
    page.unroute("**/v1/people**")
    assert not browser.foreign, f"requests left the server: {browser.foreign}"


@pytest.mark.parametrize("screen", SCREENS)
def test_admin_pages(browser: Browser, screen: str, tmp_path: Path) -> None:
    """Monitors with their live events, the audit log, API keys and the settings page."""
    page = browser.page
    wipe_gallery(browser.base)
    enrol_via_api(browser.base, "Barack Obama", [IMAGES / "obama.jpg"])
    browser.use_screen(screen)

    # A monitor on a short video of him: its events appear as they come.
    video = tmp_path / "walk-by.mp4"
    _video_of(IMAGES / "obama.jpg", video)
    browser.go("monitors")
    page.get_by_label("Source").fill(str(video))
    page.locator("#monitor-start").click()
    expect(page.locator("#monitors-table tbody tr")).not_to_have_count(0)
    events = page.locator("#monitor-events > li")
    expect(events.filter(has_text="Barack Obama").first).to_be_visible()
    browser.shot(f"33-monitors-{screen}")

    browser.go("audit")
    expect(page.locator("#audit-table tbody tr")).not_to_have_count(0)
    expect(page.locator("#audit-table")).to_contain_text("enrol")
    browser.shot(f"34-audit-{screen}", full_page=False)

    browser.go("keys")
    page.get_by_label("Who or what the key is for").fill(f"ci-{screen}")
    page.locator("#key-create").click()
    expect(page.locator("#key-created")).to_contain_text("Copy the secret now")
    assert page.locator("#key-secret").input_value()
    row = page.locator("#keys-table tbody tr", has_text=f"ci-{screen}")
    expect(row).to_contain_text("Active")
    browser.shot(f"35-keys-created-{screen}")
    row.get_by_role("button", name=re.compile("Revoke")).click()
    expect(page.locator("#confirm-dialog")).to_contain_text(f"Revoke the key “ci-{screen}”?")
    page.locator("#confirm-ok").click()
    expect(row).to_contain_text("Revoked")

    browser.go("settings")
    expect(page.locator("#threshold-info")).to_contain_text("Verification threshold")
    expect(page.locator("#threshold-info")).to_contain_text("Target false-match rate")
    if screen == "phone":
        page.emulate_media(color_scheme="dark")
    browser.shot(f"36-settings-{screen}")
    browser.check_clean()


def _video_of(photo: Path, out: Path, frames: int = 12) -> None:
    """A few seconds of a still photo as a video file (what a monitor can open)."""
    if STUB:
        out.write_bytes(b"")  # the stub never opens it
        return
    cv2 = pytest.importorskip("cv2")
    image = cv2.imread(str(photo))
    height, width = image.shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 4, (width, height))
    for _ in range(frames):
        writer.write(image)
    writer.release()
