"""What the browser tests share: the server under test, a Chromium page wrapper, and small
calls to the REST API for setting up and checking state (the UI itself is always driven
through the page).

``FACEINDEX_UI_SERVER=stub`` puts ``stub_server.py`` (fixed answers, no models) in place of
the real ``faceindex serve``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

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

STUB = os.environ.get("FACEINDEX_UI_SERVER") == "stub"
SCREENS = {"desktop": {"width": 1200, "height": 860}, "phone": {"width": 390, "height": 844}}

expect = playwright_api.expect
expect.set_options(timeout=STEP_TIMEOUT_MS)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
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


def copy_shots(folder: Path) -> None:
    with contextlib.suppress(OSError):
        SHOTS_COPY.mkdir(parents=True, exist_ok=True)
        for png in sorted(folder.glob("*.png")):
            shutil.copy2(png, SHOTS_COPY / png.name)


def assert_boxes_drawn(page: playwright_api.Page) -> None:
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
        if full_page:  # from the top, so that the sticky header is drawn where it belongs
            self.page.evaluate("window.scrollTo(0, 0)")
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=full_page)

    def go(self, route: str) -> None:
        self.page.goto(f"{self.base}#/{route}")
        expect(self.page.locator("main h1")).to_be_visible()

    def use_screen(self, screen: str) -> None:
        self.page.set_viewport_size(SCREENS[screen])

    def check_clean(self) -> None:
        """No request left the server, and the page logged no script error."""
        assert not self.foreign, f"requests left the server: {self.foreign}"
        assert not self.problems, "\n".join(self.problems)


# -- the REST API, for setting up and checking state ---------------------------------------


def api_call(
    base: str,
    method: str,
    path: str,
    *,
    body: Any = None,
    files: list[tuple[str, str, bytes]] | None = None,
) -> Any:
    """Call the API; JSON in and out. `files`: multipart (field, filename, bytes) parts."""
    data = None
    headers = {"Accept": "application/json", "Origin": base.rstrip("/")}
    if files is not None:
        boundary = uuid.uuid4().hex
        chunks = []
        for field, filename, payload in files:
            disposition = f'form-data; name="{field}"'
            if filename:
                disposition += f'; filename="{filename}"'
            chunks.append(
                f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
                f"Content-Type: {'image/jpeg' if filename else 'text/plain'}\r\n\r\n".encode()
                + payload
                + b"\r\n"
            )
        data = b"".join(chunks) + f"--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=120) as response:
        text = response.read()
    return json.loads(text) if text else None


def wipe_gallery(base: str) -> None:
    """Delete everyone, so that each test starts from an empty gallery."""
    while True:
        page = api_call(base, "GET", "v1/people?limit=500")
        if not page["items"]:
            return
        for person in page["items"]:
            api_call(base, "DELETE", f"v1/people/{person['id']}")


def enrol_via_api(base: str, name: str, photos: list[Path], *, force: bool = False) -> int:
    """Create a person and enrol photos (no UI); the person's id."""
    person = api_call(base, "POST", "v1/people", body={"name": name})
    parts = [("image", p.name, p.read_bytes()) for p in photos]
    if force:
        parts.append(("force", "", b"true"))
    api_call(base, "POST", f"v1/people/{person['id']}/faces", files=parts)
    return int(person["id"])


def openapi_text(base: str) -> str:
    """The server's OpenAPI document as text ("" when it has none: the stub)."""
    try:
        with urllib.request.urlopen(f"{base}openapi.json", timeout=10) as response:
            return response.read().decode()
    except (urllib.error.URLError, OSError):
        return ""


def require_endpoint(base: str, method: str, path: str) -> None:
    """Skip the calling test when the server under test lacks an endpoint (not built yet)."""
    if STUB:
        return  # the stub implements the whole contract
    spec = json.loads(openapi_text(base) or "{}")
    methods = spec.get("paths", {}).get(path, {})
    if method.lower() not in methods:
        pytest.skip(f"the server has no {method} {path} yet (the API half of this feature)")


def require_text_in_api(base: str, needle: str, what: str) -> None:
    """Skip the calling test when the OpenAPI document never mentions `needle`."""
    if not STUB and needle not in openapi_text(base):
        pytest.skip(f"the server does not {what} yet (no {needle!r} in its OpenAPI document)")
