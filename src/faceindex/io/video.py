"""Frame sources: video files, capture devices and network streams as timestamped RGB frames.

One entry point, :func:`open_video`, takes what a user types (a path, a device index such
as ``0``, or an ``rtsp://``/``http(s)://`` URL) and gives a :class:`VideoSource` whose
:meth:`~VideoSource.frames` yields :class:`Frame` objects: ``(H, W, 3)`` uint8 RGB, the
frame's index, its timestamp and the monotonic time it was decoded (for latency).

Two ways of reading, chosen by the source:

- **files** are read in order, every frame, as fast as the consumer asks (offline
  processing: nothing is dropped). Timestamps are seconds into the video.
- **live sources** (devices, streams, and files with ``realtime=True``, which are paced at
  their frame rate like a camera) are read by a background thread that keeps only the
  newest frame: a consumer slower than the source skips stale frames instead of falling
  behind, so latency never builds up. Timestamps are wall-clock seconds (Unix time), or
  seconds into the video for a paced file.

Nothing here can hang: OpenCV's FFmpeg backend gets open and read timeouts
(``CAP_PROP_OPEN_TIMEOUT_MSEC``/``CAP_PROP_READ_TIMEOUT_MSEC``); every open runs under a
watchdog thread as well (backends that ignore those properties); and the consumer gives up
when the reader thread has shown no sign of life for ``stall_timeout_s``. A stream that
drops is reopened with exponential backoff, a bounded number of times, after which
:class:`StreamUnavailableError` is raised. Credentials in URLs never reach logs or errors.

This module imports nothing else from faceindex except errors and types.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from faceindex.errors import (
    InvalidInputError,
    NotFoundError,
    StreamUnavailableError,
    VideoDecodeError,
)
from faceindex.types import ImageArray

log = logging.getLogger(__name__)

VideoInput = str | int | Path


class SourceKind(enum.StrEnum):
    FILE = "file"
    DEVICE = "device"
    STREAM = "stream"


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame. ``timestamp`` is in seconds (see the module docstring for its
    origin); ``captured_at`` is :func:`time.monotonic` when the frame was decoded."""

    image: ImageArray
    index: int
    timestamp: float
    captured_at: float


@dataclass(frozen=True, slots=True)
class VideoInfo:
    kind: SourceKind
    #: What to show a person: the path, ``device 0``, or the URL without credentials.
    description: str
    width: int
    height: int
    #: Frames per second as the container or device reports it (``None`` if unknown).
    fps: float | None
    #: Frame count as the container reports it (``None`` for live sources or unknown).
    frame_count: int | None
    #: Four-character codec code (``""`` if unknown).
    codec: str
    #: True when frames come from the newest-frame reader thread (stale frames dropped).
    live: bool


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How hard to try to (re)open a live source before giving up."""

    #: Opening attempts in a row before :class:`StreamUnavailableError` (at least 1).
    max_attempts: int = 5
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    #: Limit on one open (FFmpeg property, and the watchdog's).
    open_timeout_s: float = 5.0
    #: Limit on one frame read (FFmpeg property); a stalled read triggers a reconnect.
    read_timeout_s: float = 5.0

    def backoff_s(self, attempt: int) -> float:
        """Pause before attempt number ``attempt`` (1-based; none before the first)."""
        if attempt <= 1:
            return 0.0
        return float(min(self.max_backoff_s, self.initial_backoff_s * 2.0 ** (attempt - 2)))

    @property
    def stall_timeout_s(self) -> float:
        """How long the consumer waits for any sign of life from the reader thread."""
        return self.open_timeout_s + self.read_timeout_s + self.max_backoff_s + 2.0


_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_CREDENTIALS = re.compile(r"(://)[^/@\s]*@")


def redact(url: str) -> str:
    """The URL with any ``user:password@`` removed (for logs and error messages)."""
    return _CREDENTIALS.sub(r"\1***@", url)


def parse_source(source: VideoInput) -> tuple[SourceKind, str | int]:
    """What kind of source a command-line argument names: an int or digits are a device."""
    if isinstance(source, int):
        return SourceKind.DEVICE, source
    text = str(source)
    if text.isdigit():
        return SourceKind.DEVICE, int(text)
    if _URL.match(text) and not text.lower().startswith("file://"):
        return SourceKind.STREAM, text
    if text.lower().startswith("file://"):
        text = text[len("file://") :]
    return SourceKind.FILE, text


def open_video(
    source: VideoInput,
    *,
    realtime: bool = False,
    policy: ReconnectPolicy | None = None,
) -> VideoSource:
    """Open a file, device or stream; raises a typed error if it cannot be read at all.

    ``realtime=True`` paces a file at its frame rate through the newest-frame reader, as
    if it were a camera (live sources are always read that way).
    """
    policy = policy or ReconnectPolicy()
    kind, target = parse_source(source)
    if kind is SourceKind.FILE:
        path = Path(str(target))
        _check_file(path)
        if not realtime:
            return FileVideo(path)
        FileVideo(path).close()  # a file that cannot be decoded fails now, and only once
        once = dataclasses.replace(policy, max_attempts=1)
        return LiveVideo(kind, str(path), lambda: _open_capture(str(path), once), once)
    label = f"device {target}" if kind is SourceKind.DEVICE else redact(str(target))
    return LiveVideo(kind, label, lambda: _open_capture(target, policy), policy)


class VideoSource:
    """Base of the frame sources: iterate :meth:`frames`, then :meth:`close` (or ``with``)."""

    info: VideoInfo

    @property
    def dropped(self) -> int:
        """Frames skipped because a newer one arrived before they were consumed."""
        return 0

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- files ------------------------------------------------------------------------------


def _check_file(path: Path) -> None:
    if not path.exists():
        raise NotFoundError(f"{path}: no such file", path=str(path))
    if not path.is_file():
        raise InvalidInputError(f"{path}: not a file", path=str(path))
    if not os.access(path, os.R_OK):
        raise InvalidInputError(f"{path}: permission denied", path=str(path))
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: empty file (zero bytes)", path=str(path))


def _fourcc(capture: Any) -> str:
    import cv2

    code = int(capture.get(cv2.CAP_PROP_FOURCC))
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() and text.strip("\x00") else ""


def _fps(capture: Any) -> float | None:
    import cv2

    fps = float(capture.get(cv2.CAP_PROP_FPS))
    return fps if math.isfinite(fps) and 0.5 <= fps <= 1000 else None


def _to_rgb(bgr: Any) -> ImageArray:
    import cv2
    import numpy as np

    if bgr.ndim == 2:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    elif bgr.shape[2] == 4:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
    else:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    out: ImageArray = np.ascontiguousarray(rgb)
    return out


class FileVideo(VideoSource):
    """Every frame of a video file, in order; timestamps in seconds into the video."""

    def __init__(self, path: Path) -> None:
        import cv2

        self.path = path
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise VideoDecodeError(
                f"{path}: not a video OpenCV can open (not a video, truncated, or an "
                "unsupported container)",
                path=str(path),
            )
        codec = _fourcc(capture)
        ok, first = capture.read()
        if not ok or first is None:
            capture.release()
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            what = "has no frames (zero-length video)" if count <= 0 else "cannot be decoded"
            hint = f" (codec {codec!r} may be unsupported)" if codec and count > 0 else ""
            raise VideoDecodeError(f"{path}: video {what}{hint}", path=str(path), codec=codec)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._capture: Any = capture
        self._first: Any = first
        self._first_ms = float(capture.get(cv2.CAP_PROP_POS_MSEC))
        h, w = first.shape[:2]
        self.info = VideoInfo(
            kind=SourceKind.FILE,
            description=str(path),
            width=int(w),
            height=int(h),
            fps=_fps(capture),
            frame_count=count if count > 0 else None,
            codec=codec,
            live=False,
        )

    def frames(self) -> Iterator[Frame]:
        import cv2

        if self._capture is None:
            return
        capture = self._capture
        fps = self.info.fps or 30.0
        index = 0
        bgr, pos_ms = self._first, self._first_ms
        self._first = None
        last_ts = -1.0
        while bgr is not None:
            ts = pos_ms / 1000.0 if pos_ms > 0 or index == 0 else -1.0
            if ts <= last_ts:  # container without usable timestamps: use the frame rate
                ts = index / fps
            last_ts = ts
            yield Frame(_to_rgb(bgr), index, ts, time.monotonic())
            index += 1
            ok, bgr = capture.read()
            if not ok:
                bgr = None
            pos_ms = float(capture.get(cv2.CAP_PROP_POS_MSEC))
        expected = self.info.frame_count
        if expected is not None and index < expected * 0.9:
            log.warning(
                "%s: decoding stopped after %d of %d frames (truncated or damaged file)",
                self.path,
                index,
                expected,
            )

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


# -- live sources -----------------------------------------------------------------------


def _open_capture(target: str | int, policy: ReconnectPolicy) -> Any:
    """A ``cv2.VideoCapture`` on ``target`` with timeouts, or ``None`` if it did not open."""
    import cv2

    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(policy.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(policy.read_timeout_s * 1000),
    ]
    if isinstance(target, int):
        capture = cv2.VideoCapture(target)
    else:
        capture = cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
    if capture.isOpened():
        return capture
    capture.release()
    return None


def _call_with_timeout(fn: Callable[[], Any], timeout_s: float) -> Any:
    """``fn()`` in a watchdog thread; ``None`` if it has not returned within ``timeout_s``.

    An abandoned call is left to finish on its daemon thread, and a capture it returns
    late is released there.
    """
    result: list[Any] = []
    abandoned = threading.Event()

    def call() -> None:
        try:
            value = fn()
        except Exception:  # an opener bug must not kill the reader
            log.exception("opening the video source failed")
            value = None
        if abandoned.is_set():
            if value is not None and hasattr(value, "release"):
                value.release()
            return
        result.append(value)

    thread = threading.Thread(target=call, name="faceindex-video-open", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        abandoned.set()
        return None
    return result[0] if result else None


class LiveVideo(VideoSource):
    """A source read by a background thread that keeps only the newest frame.

    The first open happens in the constructor (with the retry policy), so a source that
    refuses fails fast with :class:`StreamUnavailableError`. ``kind`` FILE means a file
    paced at its frame rate (``realtime``), which ends at its last frame.
    """

    def __init__(
        self,
        kind: SourceKind,
        description: str,
        opener: Callable[[], Any],
        policy: ReconnectPolicy,
    ) -> None:
        self.kind = kind
        self.policy = policy
        self._opener = opener
        self._description = description
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._ended = False
        self._error: StreamUnavailableError | VideoDecodeError | None = None
        self._heartbeat = time.monotonic()
        self._stop = threading.Event()
        self._dropped = 0
        self._read_count = 0
        #: Times the stream was lost and opened again.
        self.reconnects = 0
        capture = self._connect()
        if capture is None:
            raise self._error or StreamUnavailableError(f"{description}: could not be opened")
        read = _call_with_timeout(capture.read, policy.read_timeout_s + 1.0)
        ok, first = read if read is not None else (False, None)
        if not ok or first is None:
            if read is not None:
                capture.release()
            if kind is SourceKind.FILE:
                raise VideoDecodeError(f"{description}: video has no decodable frames")
            raise StreamUnavailableError(f"{description}: opened but sent no frame")
        h, w = first.shape[:2]
        fps = _fps(capture)
        self.info = VideoInfo(
            kind=kind,
            description=description,
            width=int(w),
            height=int(h),
            fps=fps,
            frame_count=None,
            codec=_fourcc(capture),
            live=True,
        )
        self._thread = threading.Thread(
            target=self._run, args=(capture, first), name="faceindex-video-reader", daemon=True
        )
        self._thread.start()

    @property
    def dropped(self) -> int:
        return self._dropped

    # the reader thread ------------------------------------------------------------------

    def _beat(self) -> None:
        with self._cond:
            self._heartbeat = time.monotonic()
            self._cond.notify_all()

    def _connect(self) -> Any:
        """Open with backoff; ``None`` (and ``_error`` set) after ``max_attempts`` failures."""
        attempts = max(1, self.policy.max_attempts)
        for attempt in range(1, attempts + 1):
            pause = self.policy.backoff_s(attempt)
            if pause and self._stop.wait(pause):
                return None
            self._beat()
            capture = _call_with_timeout(self._opener, self.policy.open_timeout_s + 1.0)
            self._beat()
            if capture is not None:
                if attempt > 1:
                    log.info("%s: connected on attempt %d", self._description, attempt)
                return capture
            log.warning(
                "%s: could not open (attempt %d of %d)", self._description, attempt, attempts
            )
        self._error = StreamUnavailableError(
            f"{self._description}: could not be opened after {attempts} attempt"
            f"{'s' if attempts != 1 else ''}",
            source=self._description,
            attempts=attempts,
        )
        return None

    def _publish(self, bgr: Any, timestamp: float) -> None:
        frame = Frame(_to_rgb(bgr), self._read_count, timestamp, time.monotonic())
        self._read_count += 1
        with self._cond:
            if self._latest is not None:
                self._dropped += 1
            self._latest = frame
            self._heartbeat = frame.captured_at
            self._cond.notify_all()

    def _run(self, capture: Any, first: Any) -> None:
        try:
            if self.kind is SourceKind.FILE:
                self._run_paced(capture, first)
            else:
                self._run_live(capture, first)
        except Exception as exc:  # never die silently: the consumer must learn of it
            log.exception("video reader failed")
            self._error = StreamUnavailableError(f"{self._description}: reader failed: {exc}")
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _run_live(self, capture: Any, first: Any) -> None:
        import cv2

        # A URL to finite media (a file on a web server) has a frame count: it is paced at
        # its frame rate and ends at its last frame instead of being reopened forever.
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = self.info.fps or 30.0
        start, read = time.monotonic(), 0
        bgr: Any = first
        while not self._stop.is_set():
            if bgr is not None:
                if count > 0:
                    delay = start + read / fps - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                self._publish(bgr, time.time())
                read += 1
            ok, bgr = capture.read()
            if ok and bgr is not None:
                continue
            capture.release()
            if self._stop.is_set() or (count > 0 and read >= 0.9 * count):
                return
            log.warning("%s: stream lost; reconnecting", self._description)
            capture = self._connect()
            if capture is None:
                return
            self.reconnects += 1
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            start, read, bgr = time.monotonic(), 0, None
        capture.release()

    def _run_paced(self, capture: Any, first: Any) -> None:
        fps = self.info.fps or 30.0
        start = time.monotonic()
        index = 0
        bgr: Any = first
        while bgr is not None and not self._stop.is_set():
            due = start + index / fps
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            self._publish(bgr, index / fps)
            index += 1
            ok, bgr = capture.read()
            if not ok:
                bgr = None
        capture.release()

    # the consumer -----------------------------------------------------------------------

    def frames(self) -> Iterator[Frame]:
        stall = self.policy.stall_timeout_s
        while True:
            with self._cond:
                while self._latest is None and not self._ended:
                    idle = time.monotonic() - self._heartbeat
                    if idle >= stall:
                        self._stop.set()
                        raise StreamUnavailableError(
                            f"{self._description}: no frame or sign of life for {idle:.1f} s",
                            source=self._description,
                        )
                    self._cond.wait(min(0.25, stall - idle))
                frame, self._latest = self._latest, None
                ended, error = self._ended, self._error
            if frame is not None:
                yield frame
                continue
            if error is not None:
                raise error
            if ended:
                return

    def close(self) -> None:
        self._stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.policy.read_timeout_s + 1.0)
            if thread.is_alive():
                log.warning("%s: reader thread did not stop in time", self._description)
