"""Drawing tracks on frames, writing videos, and an optional live preview window.

Writing uses OpenCV's FFmpeg ``VideoWriter``; the codec follows the file's suffix:
``.mp4``/``.m4v``/``.mov`` -> MPEG-4 Part 2 (``mp4v``), ``.avi`` -> Motion JPEG. (This
OpenCV build has no H.264 encoder; MPEG-4 Part 2 plays in browsers' <video> only partly,
but everywhere else.) Audio is not copied.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faceindex.errors import InvalidInputError
from faceindex.tracking.identity import IdentityStatus
from faceindex.types import ImageArray
from faceindex.video.watch import TrackView

log = logging.getLogger(__name__)

BGRImage = npt.NDArray[np.uint8]

FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}

_GREEN = (60, 200, 60)
_ORANGE = (0, 160, 255)
_GREY = (170, 170, 170)


def draw_tracks(image: ImageArray, tracks: Sequence[TrackView]) -> BGRImage:
    """A BGR copy of the RGB ``image`` with boxes, names and track ids drawn on it."""
    import cv2

    out = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), dtype=np.uint8)
    scale = max(0.4, min(1.0, image.shape[0] / 720))
    thickness = max(1, round(2 * scale))
    for t in tracks:
        if t.status is IdentityStatus.IDENTIFIED:
            colour = _GREEN
        elif t.status is IdentityStatus.UNKNOWN:
            colour = _ORANGE
        else:
            colour = _GREY
        b = t.bbox
        p1, p2 = (int(b.x1), int(b.y1)), (int(b.x2), int(b.y2))
        cv2.rectangle(out, p1, p2, colour, thickness if t.detected else max(1, thickness - 1))
        name = t.person or ("unknown" if t.status is IdentityStatus.UNKNOWN else "...")
        label = f"#{t.track_id} {name}"
        if t.similarity is not None and t.person:
            label += f" {t.similarity:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, 1)
        y = max(th + base, p1[1])
        cv2.rectangle(out, (p1[0], y - th - base), (p1[0] + tw + 4, y), colour, -1)
        cv2.putText(
            out,
            label,
            (p1[0] + 2, y - base),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.6 * scale,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return out


class VideoOutput:
    """A video file being written: ``write(bgr)`` per frame, then ``close()``."""

    def __init__(self, path: str | Path, *, fps: float, width: int, height: int) -> None:
        import cv2

        self.path = Path(path)
        code = FOURCC_BY_SUFFIX.get(self.path.suffix.lower())
        if code is None:
            raise InvalidInputError(
                f"{self.path}: unsupported video suffix; use one of "
                + ", ".join(sorted(FOURCC_BY_SUFFIX)),
                path=str(self.path),
            )
        if self.path.parent and not self.path.parent.is_dir():
            raise InvalidInputError(f"{self.path.parent}: no such folder", path=str(self.path))
        self.size = (int(width), int(height))
        self._writer: Any = cv2.VideoWriter(
            str(self.path), cv2.VideoWriter.fourcc(*code), float(fps or 30.0), self.size
        )
        if not self._writer.isOpened():
            raise InvalidInputError(f"{self.path}: cannot write a video here", path=str(self.path))
        self.frames = 0

    def write(self, bgr: BGRImage) -> None:
        import cv2

        if (bgr.shape[1], bgr.shape[0]) != self.size:  # a stream that changed resolution
            self._writer.write(cv2.resize(bgr, self.size))
        else:
            self._writer.write(bgr)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> VideoOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def display_available() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class Preview:
    """A window showing the annotated frames; disabled (with one warning) without a display
    or a GUI-enabled OpenCV (``opencv-python-headless`` has none)."""

    def __init__(self, title: str = "faceindex") -> None:
        self.title = title
        self.enabled = False
        if not display_available():
            log.warning("--preview: no display found; continuing without a preview window")
            return
        try:
            import cv2

            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
            self.enabled = True
        except Exception as exc:  # cv2.error on headless builds
            log.warning("--preview: this OpenCV build cannot open windows (%s); skipping", exc)

    def show(self, bgr: BGRImage) -> bool:
        """Show a frame; returns False when the user closed the window or pressed q/Esc."""
        if not self.enabled:
            return True
        import cv2

        try:
            cv2.imshow(self.title, bgr)
            key = cv2.waitKey(1) & 0xFF
        except Exception as exc:
            log.warning("--preview failed (%s); continuing without it", exc)
            self.enabled = False
            return True
        return key not in (ord("q"), 27)

    def close(self) -> None:
        if self.enabled:
            import cv2

            with contextlib.suppress(Exception):
                cv2.destroyWindow(self.title)
            self.enabled = False
