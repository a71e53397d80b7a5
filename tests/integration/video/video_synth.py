"""Short synthetic videos made from the fixture photos: pans, zooms, crossings, absences.

Each scene pastes whole photos (a person with their background) onto a plain canvas, so the
ground truth is known: which photo is where on every frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from faceindex.io.image import load_image

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "images"
SIZE = (640, 480)  # width, height
FPS = 25.0

Patch = tuple[np.ndarray, int, int]  # image, x, y (top-left; may be partly off-canvas)


def photo(name: str, height: int | None = None) -> np.ndarray:
    image = load_image(FIXTURES / name)
    if height is not None and height != image.shape[0]:
        width = round(image.shape[1] * height / image.shape[0])
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def canvas(size: tuple[int, int] = SIZE, level: int = 80) -> np.ndarray:
    w, h = size
    ramp = np.linspace(level - 20, level + 20, w, dtype=np.float32)
    out = np.repeat(np.repeat(ramp[None, :, None], h, axis=0), 3, axis=2)
    return out.astype(np.uint8)


def compose(patches: Sequence[Patch], size: tuple[int, int] = SIZE) -> np.ndarray:
    frame = canvas(size)
    h, w = frame.shape[:2]
    for image, x, y in patches:
        ph, pw = image.shape[:2]
        x1, y1, x2, y2 = max(0, x), max(0, y), min(w, x + pw), min(h, y + ph)
        if x2 <= x1 or y2 <= y1:
            continue
        frame[y1:y2, x1:x2] = image[y1 - y : y2 - y, x1 - x : x2 - x]
    return frame


def write_video(
    path: Path, frames: Iterable[np.ndarray], *, fps: float = FPS, fourcc: str = "mp4v"
) -> Path:
    writer = None
    for frame in frames:
        if writer is None:
            h, w = frame.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (w, h))
            assert writer.isOpened(), f"OpenCV cannot write {fourcc} to {path}"
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    assert writer is not None, "no frames"
    writer.release()
    return path


# -- scenes ---------------------------------------------------------------------------


def pan(n: int = 60) -> list[np.ndarray]:
    """obama3 sliding left to right across the frame (~6 px per frame)."""
    o = photo("obama3.jpg")
    return [compose([(o, -20 + round(i * 360 / n), 0)]) for i in range(n)]


def zoom(n: int = 50) -> list[np.ndarray]:
    """obama3, camera zooming in on his face (face size x1 -> x2)."""
    o = photo("obama3.jpg")
    frames = []
    for i in range(n):
        s = 1.0 + i / n
        img = cv2.resize(o, (round(o.shape[1] * s), round(o.shape[0] * s)))
        cx, cy = 160 * s, 90 * s  # keep the face near the same spot
        frames.append(compose([(img, round(320 - cx), round(200 - cy))]))
    return frames


def crossing(n: int = 70) -> list[np.ndarray]:
    """obama3 walking right while biden walks left, lower in the frame: paths cross."""
    o = photo("obama3.jpg")
    b = photo("biden.jpg")
    frames = []
    for i in range(n):
        t = i / (n - 1)
        ox = round(-40 + t * 420)  # obama's face centre ~ x + 160
        bx = round(420 - t * 420)  # biden's face centre ~ x + 124
        frames.append(compose([(o, ox, 0), (b, bx, 110)]))
    return frames


def leave_and_return(present: int = 30, away: int = 40) -> list[np.ndarray]:
    """obama3 for ``present`` frames, an empty scene for ``away`` frames, obama3 again."""
    o = photo("obama3.jpg")
    here = [compose([(o, 160 + (i % 4), 0)]) for i in range(present)]
    gone = [compose([]) for _ in range(away)]
    return here + gone + [compose([(o, 180 - (i % 4), 0)]) for i in range(present)]


def no_faces(n: int = 30) -> list[np.ndarray]:
    """Shapes and noise, no face."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        f = compose([])
        cv2.rectangle(f, (50 + 5 * i, 100), (200 + 5 * i, 300), (200, 180, 40), -1)
        cv2.circle(f, (450, 240 - 2 * i), 60, (30, 90, 200), -1)
        noise = rng.integers(0, 12, f.shape, dtype=np.uint8)
        frames.append(np.ascontiguousarray(f + noise))
    return frames


#: Where the face box of each photo starts (detector boxes of the fixture photos): the
#: expression scene pastes them so that the faces fall on the same spot.
FACE_TOP_LEFT = {"obama.jpg": (156, 38), "obama2.jpg": (81, 94)}


def expression_change(n: int = 75, switch: int = 35, flicker: int = 17) -> list[np.ndarray]:
    """One face spot: obama.jpg (smiling: ``happy``) up to frame ``switch``, except one
    frame (``flicker``) of obama2.jpg (talking: read as ``angry``), then obama2.jpg."""
    spot = (250, 150)
    placed = {
        name: (photo(name), spot[0] - x, spot[1] - y) for name, (x, y) in FACE_TOP_LEFT.items()
    }
    return [
        compose([placed["obama.jpg" if i < switch and i != flicker else "obama2.jpg"]])
        for i in range(n)
    ]
