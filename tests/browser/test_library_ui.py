"""Who is in my photos? The "Unnamed people" page and a person's photos, at desktop and
phone size, on the real server (its FACEINDEX_LIBRARY_ROOTS is the ``library_root``
fixture).

A folder of copies of obama.jpg, obama2.jpg, obama3.jpg, biden.jpg and two_people.jpg
(Obama and Biden) is scanned from the page (``POST /v1/scans``): two groups, Obama's 4
faces and Biden's 2. The walk merges Biden's group into Obama's, takes Biden's two faces
out again ("not this person"), names the group (a new person on desktop, an enrolled one on
the phone), and opens the person's page: the four scanned photos with thumbnails, and the
enrolled faces' thumbnails cut from them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from browser_harness import (
    CHROMIUM,
    IMAGES,
    STUB,
    Browser,
    api_call,
    expect,
    require_endpoint,
    wipe_gallery,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (run .ci/install-browser)",
    ),
    pytest.mark.skipif(STUB, reason="the stub server has no photo library"),
]

PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "two_people.jpg")


def fresh_library(base: str, root: Path, name: str) -> Path:
    """An empty gallery and library, and a folder of photos under the server's root."""
    wipe_gallery(base)
    for old in root.iterdir():
        shutil.rmtree(old)
    # Scanning the emptied root forgets every photo scanned under it (faces and groups).
    scan = api_call(base, "POST", "v1/scans", body={"folders": [str(root)]})
    wait_scan(base, scan["id"])
    folder = root / name
    folder.mkdir()
    for photo in PHOTOS:
        shutil.copy(IMAGES / photo, folder / photo)
    return folder


def wait_scan(base: str, scan_id: int) -> None:
    import time

    deadline = time.monotonic() + 120
    while api_call(base, "GET", f"v1/scans/{scan_id}")["state"] == "running":
        assert time.monotonic() < deadline, "scan still running"
        time.sleep(0.2)


def thumbs_loaded(browser: Browser, selector: str) -> int:
    count: int = browser.page.evaluate(
        """(sel) => [...document.querySelectorAll(sel)]
            .filter((img) => img.complete && img.naturalWidth > 0).length""",
        selector,
    )
    return count


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_unnamed_people_scan_merge_take_out_name_and_photos(
    browser: Browser, screen: str, library_root: Path
) -> None:
    require_endpoint(browser.base, "post", "/v1/scans")
    page = browser.page
    base = browser.base
    folder = fresh_library(base, library_root, f"album-{screen}")
    browser.use_screen(screen)
    browser.go("library")
    expect(page.locator("#clusters-summary")).to_contain_text("No unnamed faces")

    # A folder outside the roots is refused, with the reason.
    page.locator("#scan-folder").fill("/etc")
    page.locator("#scan-start").click()
    expect(page.locator("#scan-status .notice.error")).to_contain_text("not under a library root")

    page.locator("#scan-folder").fill(str(folder))
    page.locator("#scan-start").click()
    expect(page.locator(".scan-progress[data-state=done]")).to_be_visible()
    expect(page.locator(".scan-counts")).to_contain_text("5 photos scanned")
    expect(page.locator(".scan-counts")).to_contain_text("6 new faces")
    cards = page.locator(".cluster-card")
    expect(cards).to_have_count(2)
    obama, biden = cards.nth(0), cards.nth(1)
    expect(obama).to_have_attribute("data-size", "4")
    expect(biden).to_have_attribute("data-size", "2")
    expect(page.locator("#clusters-summary")).to_contain_text("2 groups of faces")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.cluster-card img.thumb')]"
        ".filter((i) => i.complete && i.naturalWidth > 0).length === 6"
    )
    browser.shot(f"40-library-groups-{screen}")

    # Merge Biden's group into Obama's (a mistake on purpose), then take his faces out.
    obama_id = obama.get_attribute("data-cluster")
    biden_id = biden.get_attribute("data-cluster")
    obama.locator(".merge-form select").select_option(biden_id)
    obama.locator(".merge-form button").click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    page.locator("#confirm-ok").click()
    expect(page.locator("#library-status")).to_contain_text(
        f"Group {biden_id} merged into Group {obama_id}: 6 faces"
    )
    expect(cards).to_have_count(1)
    merged = page.locator(f".cluster-card[data-cluster='{obama_id}']")
    expect(merged).to_have_attribute("data-size", "6")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.cluster-card img.thumb')]"
        ".filter((i) => i.complete && i.naturalWidth > 0).length === 6"
    )
    browser.shot(f"41-library-merged-{screen}")

    # Which faces are Biden's: the library knows (the API answers the same listing).
    listing = api_call(base, "GET", "v1/clusters")
    faces = listing["clusters"][0]["faces"]
    bidens = [f for f in faces if Path(f["path"]).name == "biden.jpg"]
    # two_people.jpg: Biden is the face on the right.
    pair = sorted(
        (f for f in faces if Path(f["path"]).name == "two_people.jpg"), key=lambda f: f["bbox"][0]
    )
    bidens.append(pair[-1])
    for face in bidens:
        card = merged.locator(f".face-card[data-face='{face['id']}']")
        card.get_by_role("button", name="Not this person").click()
        expect(page.locator("#library-status")).to_contain_text("taken out of")
        expect(merged.locator(f".face-card[data-face='{face['id']}']")).to_have_count(0)
    expect(merged).to_have_attribute("data-size", "4")
    expect(page.locator("#clusters-summary")).to_contain_text("2 faces in no group")

    # Name the group: a new person on desktop, someone enrolled on the phone.
    if screen == "phone":
        api_call(base, "POST", "v1/people", body={"name": "Barack Obama"})
        page.reload()
        expect(merged.locator(".name-form input")).to_be_visible()
        expect(page.locator("#people-names option[value='Barack Obama']")).to_have_count(1)
    merged.locator(".name-form input").fill("barack obama" if screen == "phone" else "Barack Obama")
    browser.shot(f"42-library-naming-{screen}")
    merged.locator(".name-form button").click()
    done = page.locator("#library-status")
    expect(done).to_contain_text(
        "4 faces added to Barack Obama"
        if screen == "phone"
        else "Barack Obama is now enrolled with 4 faces"
    )
    expect(cards).to_have_count(0)
    expect(page.locator("#clusters-summary")).to_contain_text("No group left to name")
    people = api_call(base, "GET", "v1/people?search=Obama")["items"]
    assert [p["name"] for p in people] == ["Barack Obama"] and people[0]["templates"] == 4
    browser.shot(f"43-library-named-{screen}")

    # The person's page: the four scanned photos they are in, with thumbnails.
    done.get_by_role("link", name="See Barack Obama's photos").click()
    expect(page.locator("#person-name")).to_have_text("Barack Obama")
    photos = page.locator("#person-photos > li")
    expect(photos).to_have_count(4)
    expect(page.locator("#person-photos-note")).to_contain_text(
        "Barack Obama is in 4 scanned photos"
    )
    names = sorted(photos.locator(".file-name").all_inner_texts())
    assert names == ["obama.jpg", "obama2.jpg", "obama3.jpg", "two_people.jpg"]
    page.wait_for_function(
        "() => [...document.querySelectorAll('#person-photos img.thumb')]"
        ".filter((i) => i.complete && i.naturalWidth > 0).length === 4"
    )
    # The enrolled faces (no photo kept by the gallery) take their thumbnails from the
    # scanned photos too.
    page.wait_for_function(
        "() => [...document.querySelectorAll('#faces img.thumb')]"
        ".filter((i) => i.complete && i.naturalWidth > 0).length === 4"
    )
    page.locator("#photos-of-person").scroll_into_view_if_needed()
    browser.shot(f"44-person-photos-{screen}")
    browser.check_clean()
