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

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright import sync_api as playwright_api

CHROMIUM = Path("/usr/bin/chromium")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
IMAGES = ROOT / "tests" / "fixtures" / "images"
SHOTS_COPY = Path("/tmp/faceindex-screenshots")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A fake camera, so that the camera path (getUserMedia) runs too.
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
SERVER_START_S = 240.0
STEP_TIMEOUT_MS = 120_000  # model work on a shared 2-CPU machine; usually seconds

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (run .ci/install-browser)",
    ),
]

expect = playwright_api.expect
expect.set_options(timeout=STEP_TIMEOUT_MS)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{base}v1/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    tail = log.read_text()[-4000:]
    pytest.fail(f"the server did not answer within {SERVER_START_S:.0f} s:\n{tail}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (ending in /) of a freshly started server with an empty gallery."""
    work = tmp_path_factory.mktemp("server")
    port = _free_port()
    if os.environ.get("FACEINDEX_UI_SERVER") == "stub":
        cmd = [sys.executable, str(HERE / "stub_server.py"), "--port", str(port)]
    else:
        cmd = [
            sys.executable,
            "-m",
            "faceindex.cli.main",
            "serve",
            "--no-auth",
            "--port",
            str(port),
            "--gallery",
            str(work / "gallery.db"),
            "--keep-photos",  # so that the person page shows thumbnails
        ]
    log = work / "server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(base, proc, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Folder for the screenshots; copied to /tmp/faceindex-screenshots/ after each test."""
    env = os.environ.get("FACEINDEX_SCREENSHOTS")
    folder = Path(env) if env else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        SHOTS_COPY.mkdir(parents=True, exist_ok=True)
        for old in SHOTS_COPY.glob("*.png"):
            old.unlink()
    yield folder


def _copy_shots(folder: Path) -> None:
    with contextlib.suppress(OSError):
        SHOTS_COPY.mkdir(parents=True, exist_ok=True)
        for png in sorted(folder.glob("*.png")):
            shutil.copy2(png, SHOTS_COPY / png.name)


def _assert_boxes_drawn(page: playwright_api.Page) -> None:
    """The overlay canvas has something drawn on it, and lies exactly over the photo."""
    drawn = page.evaluate(
        """() => {
            const canvas = document.querySelector('#recognise-stage canvas');
            const img = document.querySelector('#recognise-stage img');
            const data = canvas.getContext('2d')
                .getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
            const a = canvas.getBoundingClientRect(), b = img.getBoundingClientRect();
            const same = Math.abs(a.left - b.left) < 1 && Math.abs(a.top - b.top) < 1
                && Math.abs(a.width - b.width) < 1 && Math.abs(a.height - b.height) < 1;
            return {painted, same, width: canvas.width};
        }"""
    )
    assert drawn["width"] > 0 and drawn["painted"] > 100, drawn
    assert drawn["same"], "the canvas is not over the photo"


class Browser:
    """A Chromium page plus the bookkeeping the test checks at the end."""

    def __init__(self, page: playwright_api.Page, base: str, shots: Path) -> None:
        self.page = page
        self.base = base
        self.shots = shots
        self.foreign: list[str] = []
        self.problems: list[str] = []
        page.on("request", self._on_request)
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))

    def _on_request(self, request: playwright_api.Request) -> None:
        url = request.url
        if not (url.startswith(self.base) or url.startswith(("blob:", "data:"))):
            self.foreign.append(url)

    def _on_console(self, message: playwright_api.ConsoleMessage) -> None:
        # The browser also logs failed requests as errors (the 401 the test provokes, a
        # thumbnail's 404 where no photo is kept): those are answers, not script errors.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.problems.append(f"console: {message.text}")

    def shot(self, name: str, *, full_page: bool = True) -> None:
        """Save a screenshot (a modal dialog's backdrop covers only the viewport)."""
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=full_page)

    def go(self, route: str) -> None:
        self.page.goto(f"{self.base}#/{route}")
        expect(self.page.locator("main h1")).to_be_visible()


@pytest.fixture
def browser(
    server: str, shots: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Browser]:
    with playwright_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 860},
            permissions=["camera"],
        )
        context.set_default_timeout(STEP_TIMEOUT_MS)
        page = context.pages[0] if context.pages else context.new_page()
        try:
            yield Browser(page, server, shots)
            if ("browser_test_failed", True) in request.node.user_properties:
                failed = shots / f"FAILED-{request.node.name}.png"
                page.screenshot(path=str(failed), full_page=True)
        finally:
            context.close()
            _copy_shots(shots)


def test_enrol_recognise_verify_delete(browser: Browser) -> None:
    page = browser.page
    stub = os.environ.get("FACEINDEX_UI_SERVER") == "stub"  # keeps no photos

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
    _assert_boxes_drawn(page)
    browser.shot("05-recognise-obama3")

    # 5. Two people: him, and a stranger who is "unknown".
    page.locator("#recognise-file").set_input_files(IMAGES / "two_people.jpg")
    expect(results).to_have_count(2)
    expect(results.filter(has_text="Barack Obama")).to_have_count(1)
    expect(results.filter(has_text="unknown")).to_have_count(1)
    expect(page.locator("#recognise-status")).to_contain_text("2 faces found: 1 recognised")
    _assert_boxes_drawn(page)
    browser.shot("06-recognise-two-people")

    # 6. The (fake) camera: a frame with no face in it.
    page.locator("#use-camera").click()
    page.wait_for_function("() => document.querySelector('.camera video')?.videoWidth > 0")
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
    _assert_boxes_drawn(page)
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
