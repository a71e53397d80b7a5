"""The Recognise page's camera with the liveness check, and each face's attributes, in a
real headless Chromium whose camera plays a video file
(``--use-file-for-fake-video-capture``, a Y4M file written here from the fixture photos).

- A still photo as the camera (one frame, looped): the check must fail when time runs
  out, and nobody is recognised.
- A "video" of one man doing every move in turn (frontal, eyes painted shut, head turned
  either way, smiling after not smiling, closer), looped: the check passes whatever 2-3
  challenges are drawn, and the page recognises him with the token. The frames are made
  from photos (tests/integration/test_liveness_challenge.py says how), not filmed.
- An uploaded photo lists each face's estimated age, gender, expression and pose, with
  the note that these are estimates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from browser_harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    IMAGES,
    STEP_TIMEOUT_MS,
    STUB,
    Browser,
    enrol_via_api,
    expect,
    require_endpoint,
    wipe_gallery,
)
from playwright import sync_api as playwright_api

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (run .ci/install-browser)",
    ),
    pytest.mark.skipif(STUB, reason="the stub server has no liveness sessions"),
]

SIZE = (384, 480)  # width, height of every frame (obama.jpg's own)
FPS = 4


def _rgb(name: str) -> np.ndarray:
    bgr = cv2.imread(str(IMAGES / name))
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _on_canvas(image: np.ndarray) -> np.ndarray:
    """``image`` centred on a SIZE canvas (edges repeated), never scaled."""
    w, h = SIZE
    ih, iw = image.shape[:2]
    left, top = (w - iw) // 2, (h - ih) // 2
    return np.pad(image, ((top, h - ih - top), (left, w - iw - left), (0, 0)), mode="edge")


def _eyes_shut(image: np.ndarray) -> np.ndarray:
    from faceindex.attributes.shapes import DlibShapes
    from faceindex.detection import DETECTORS
    from faceindex.testing.degrade import eyes_shut

    face = DETECTORS.get("yunet")().detect(image)[0]
    return eyes_shut(image, DlibShapes().points68(image, face))


def _closer(image: np.ndarray, scale: float = 1.4) -> np.ndarray:
    h, w = image.shape[:2]
    m = np.array([[scale, 0, w / 2 * (1 - scale)], [0, scale, h / 2 * (1 - scale)]])
    return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = FPS) -> Path:
    """RGB frames (all SIZE) as a YUV 4:2:0 Y4M file, which Chromium's fake camera loops."""
    w, h = SIZE
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            assert frame.shape == (h, w, 3), frame.shape
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("camera")
    frontal = _rgb("obama.jpg")
    turned = _on_canvas(_rgb("obama2.jpg"))  # towards the image's left, not smiling
    poses = {
        "frontal": frontal,
        "shut": _eyes_shut(frontal),
        "to_image_left": turned,
        "to_image_right": np.ascontiguousarray(turned[:, ::-1]),
        "closer": _closer(frontal),
    }
    # Every move in turn, each pose held ~0.75 s: frontal between moves.
    script = [
        "frontal", "shut", "frontal", "to_image_right", "frontal", "to_image_left",
        "frontal", "closer", "frontal",
    ]  # fmt: skip
    moving = [poses[name] for name in script for _ in range(3)]
    return {
        "still": write_y4m(folder / "still.y4m", [frontal]),
        "moving": write_y4m(folder / "moving.y4m", moving),
    }


@pytest.fixture()
def camera_page(
    server: str, chromium: playwright_api.Browser, shots: Path
) -> Iterator[Callable[[Path], Browser]]:
    """``open(video)``: a page in a Chromium whose camera plays ``video``."""
    launched: list[playwright_api.Browser] = []

    def open_with(video: Path) -> Browser:
        instance = chromium.browser_type.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={video}"],
        )
        launched.append(instance)
        context = instance.new_context(
            viewport={"width": 1200, "height": 900}, permissions=["camera"]
        )
        context.set_default_timeout(STEP_TIMEOUT_MS)
        return Browser(context.new_page(), server, shots)

    yield open_with
    for instance in launched:
        instance.close()


def _start_check(browser: Browser) -> None:
    page = browser.page
    browser.go("recognise")
    page.locator("#use-camera").click()
    page.wait_for_function("() => document.querySelector('.camera video')?.videoWidth > 0")
    expect(page.locator("#camera-liveness")).to_be_checked()
    page.locator("#take-photo").click()
    expect(page.locator("#liveness-instruction")).not_to_be_empty()


def test_a_still_photo_as_the_camera_fails_the_check(
    server: str, camera_page: Callable[[Path], Browser], videos: dict[str, Path]
) -> None:
    require_endpoint(server, "POST", "/v1/liveness/sessions")
    wipe_gallery(server)
    enrol_via_api(server, "Barack Obama", [IMAGES / "obama3.jpg"])
    browser = camera_page(videos["still"])
    page = browser.page
    identify_calls: list[str] = []
    page.on("request", lambda r: identify_calls.append(r.url) if "v1/identify" in r.url else None)
    _start_check(browser)
    expect(page.locator("#liveness-steps > li.current")).to_have_count(1)
    browser.shot("liveness-01-still-running", full_page=False)
    result = page.locator("#liveness-result")
    expect(result).to_have_attribute("data-state", "failed", timeout=90_000)
    expect(result).to_contain_text("Time ran out")
    assert page.locator("#liveness-steps > li.passed").count() == 0
    assert not identify_calls, identify_calls
    browser.shot("liveness-02-still-failed", full_page=False)
    browser.check_clean()


def test_moving_through_every_move_passes_and_recognises(
    server: str, camera_page: Callable[[Path], Browser], videos: dict[str, Path]
) -> None:
    require_endpoint(server, "POST", "/v1/liveness/sessions")
    wipe_gallery(server)
    enrol_via_api(server, "Barack Obama", [IMAGES / "obama3.jpg"])
    browser = camera_page(videos["moving"])
    page = browser.page
    _start_check(browser)
    browser.shot("liveness-03-moving-running", full_page=False)
    expect(page.locator("#liveness-result")).to_have_attribute(
        "data-state", "passed", timeout=120_000
    )
    expect(page.locator("#recognise-results > li[data-decision=identified]")).to_contain_text(
        "Barack Obama"
    )
    browser.shot("liveness-04-passed-recognised")
    browser.check_clean()


def test_recognised_faces_list_their_estimated_attributes(browser: Browser) -> None:
    require_endpoint(browser.base, "POST", "/v1/analyze")
    wipe_gallery(browser.base)
    enrol_via_api(browser.base, "Barack Obama", [IMAGES / "obama.jpg"])
    page = browser.page
    browser.go("recognise")
    page.locator("#recognise-file").set_input_files(IMAGES / "two_people.jpg")
    results = page.locator("#recognise-results > li[data-decision]")
    expect(results).to_have_count(2)
    attrs = page.locator("#recognise-results .face-attrs")
    expect(attrs).to_have_count(2)
    for i in range(2):
        text = attrs.nth(i).inner_text()
        assert text.startswith("Estimated: age about "), text
        assert any(w in text for w in ("male", "female")), text
    expect(page.locator("#attributes-note")).to_be_visible()
    expect(page.locator("#attributes-note")).to_contain_text("estimates")
    browser.shot("liveness-05-attributes")
    browser.check_clean()
