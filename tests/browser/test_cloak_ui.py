"""The "Protect a photo" page on the real server: choose a photo, cloak it at low strength,
see the protected photo beside the original with a download link and a line per face.

Needs the cloak extra (torch) on the server; skipped on the stub server, which has no cloak.
"""

from __future__ import annotations

import pytest
from browser_harness import CHROMIUM, IMAGES, STUB, Browser, expect

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (run .ci/install-browser)",
    ),
    pytest.mark.skipif(STUB, reason="the stub server has no cloak"),
]

pytest.importorskip("torch")


def test_protect_a_photo(browser: Browser) -> None:
    page = browser.page
    browser.go("protect")
    expect(page.locator("main h1")).to_have_text("Protect a photo")
    expect(page.locator("#cloak-submit")).to_be_disabled()
    page.set_input_files("#cloak-file", str(IMAGES / "obama_small.jpg"))
    expect(page.locator("#cloak-before")).to_be_visible()
    page.select_option("#cloak-strength", "low")
    page.click("#cloak-submit")
    answer = page.locator("#cloak-answer")
    expect(answer).to_be_visible(timeout=300_000)  # loads the nets, then seconds a face
    expect(page.locator("#cloak-after")).to_be_visible()
    link = page.locator("#cloak-download")
    expect(link).to_have_attribute("download", "obama_small-cloaked.jpg")
    expect(page.locator("#cloak-faces li")).to_have_count(1)
    expect(page.locator("#cloak-faces li")).to_contain_text("dlib-resnet-v1")
    browser.shot("cloak-protected")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "obama_small-cloaked.jpg"
    browser.check_clean()
