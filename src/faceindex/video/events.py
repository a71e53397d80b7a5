"""Track events and where they go: JSON lines (stdout or a file), a webhook, unknown crops.

One JSON object per event (the machine contract, kept stable)::

    {"event": "appeared", "track_id": 3, "person": "Barack Obama", "person_id": 1,
     "similarity": 0.71, "decision": "identified", "first_seen": 1.2, "last_seen": 1.9,
     "bbox": [x1, y1, x2, y2], "frame": 57, "clock": "video", "source": "clip.mp4"}

``event`` is ``appeared`` (a confirmed track has an identity decision, or has waited
``decision_timeout_s`` for one: then ``decision`` is ``pending``), ``identified`` (after
``appeared``, the track's person changed: usually unknown/pending -> a name) or ``left``
(not seen for the absence timeout, or the stream ended). ``person`` is the name, or null
for an unknown face. ``first_seen``/``last_seen`` are seconds into the video
(``clock: "video"``) or Unix time for live sources (``clock: "wall"``); ``bbox`` is the box
of the track's best-quality frame (``frame`` is its index).

With ``watch --expressions``, the same stream carries expression changes of the tracks
(smoothed: :mod:`faceindex.video.expressions`), with the same ``event``/``track_id``
keys as the others::

    {"event": "expression", "track_id": 3, "person": "Barack Obama", "person_id": 1,
     "label": "happy", "score": 0.93, "t": 2.4, "frame": 72, "clock": "video",
     "source": "clip.mp4"}

``label`` is one of the 7 FER2013 classes, ``score`` its smoothed score, ``t`` when the
change was confirmed (same clock as ``first_seen``). A track's first expression event
follows its ``appeared`` event. Expressions are a model's reading of a face, not of a
feeling (docs/attributes.md), and are never stored.

The webhook posts each event as JSON from a background thread with a short timeout;
failures are logged, never fatal, and a full queue drops events (logged) rather than
slowing the video loop.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from faceindex.errors import InvalidInputError
from faceindex.tracking.identity import FaceSample, IdentityStatus
from faceindex.types import BBox

log = logging.getLogger(__name__)


class EventType(enum.StrEnum):
    APPEARED = "appeared"
    IDENTIFIED = "identified"
    LEFT = "left"
    EXPRESSION = "expression"


class Clock(enum.StrEnum):
    VIDEO = "video"
    WALL = "wall"


@dataclass(frozen=True, slots=True)
class TrackEvent:
    event: EventType
    track_id: int
    person: str | None
    person_id: int | None
    similarity: float | None
    decision: IdentityStatus
    first_seen: float
    last_seen: float
    bbox: BBox
    frame: int
    clock: Clock
    source: str
    #: The best sample (crop with context): for saving unknown faces; not serialised.
    sample: FaceSample | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        ndigits = 3 if self.clock is Clock.VIDEO else 6
        return {
            "event": str(self.event),
            "track_id": self.track_id,
            "person": self.person,
            "person_id": self.person_id,
            "similarity": None if self.similarity is None else round(self.similarity, 6),
            "decision": str(self.decision),
            "first_seen": round(self.first_seen, ndigits),
            "last_seen": round(self.last_seen, ndigits),
            "bbox": self.bbox.as_list(),
            "frame": self.frame,
            "clock": str(self.clock),
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class ExpressionEvent:
    """A track's smoothed expression changed (``watch --expressions``)."""

    track_id: int
    person: str | None
    person_id: int | None
    label: str
    score: float
    t: float
    frame: int
    clock: Clock
    source: str

    @property
    def event(self) -> EventType:
        return EventType.EXPRESSION

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": str(EventType.EXPRESSION),
            "track_id": self.track_id,
            "person": self.person,
            "person_id": self.person_id,
            "label": self.label,
            "score": round(self.score, 4),
            "t": round(self.t, 3 if self.clock is Clock.VIDEO else 6),
            "frame": self.frame,
            "clock": str(self.clock),
            "source": self.source,
        }


#: Anything a watcher reports.
Event = TrackEvent | ExpressionEvent


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


class JsonLinesSink:
    """One JSON object per line on a text stream (flushed per event)."""

    def __init__(self, stream: TextIO, *, owns: bool = False) -> None:
        self.stream = stream
        self.owns = owns

    @classmethod
    def to_file(cls, path: str | Path) -> JsonLinesSink:
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            stream = p.open("a", encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"{p}: cannot write events ({exc.strerror})") from exc
        return cls(stream, owns=True)

    def emit(self, event: Event) -> None:
        self.stream.write(json.dumps(event.as_dict(), ensure_ascii=False) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.owns:
            self.stream.close()


class WebhookSink:
    """POSTs each event as JSON to ``url`` from a background thread."""

    def __init__(
        self, url: str, *, timeout_s: float = 2.0, max_queue: int = 1000, close_wait_s: float = 5.0
    ) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise InvalidInputError(f"webhook URL must be http:// or https://, got {url!r}")
        self.url = url
        self.timeout_s = timeout_s
        self.close_wait_s = close_wait_s
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(max_queue)
        self._thread = threading.Thread(target=self._run, name="faceindex-webhook", daemon=True)
        self._thread.start()

    def emit(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event.as_dict())
        except queue.Full:
            self.dropped += 1
            log.warning("webhook queue full: event dropped (%d so far)", self.dropped)

    def close(self) -> None:
        deadline = time.monotonic() + self.close_wait_s
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=self.close_wait_s)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.warning("webhook: %d events not delivered at exit", self._queue.qsize())

    def _run(self) -> None:
        while True:
            body = self._queue.get()
            if body is None:
                return
            self._post(body)

    def _post(self, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(
            self.url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "faceindex"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read(1024)
            self.sent += 1
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self.failed += 1
            if self.failed == 1 or self.failed % 50 == 0:
                log.warning("webhook POST failed (%d so far): %s", self.failed, exc)


class UnknownFaceSaver:
    """Writes the best crop of each unknown face that left to ``folder`` (for enrolment).

    Only used when the user asks (``--save-unknown``): faceindex keeps no face images
    otherwise.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(
                f"{self.folder}: cannot create folder ({exc.strerror})"
            ) from exc
        self.saved: list[Path] = []

    def emit(self, event: Event) -> None:
        if not isinstance(event, TrackEvent) or event.event is not EventType.LEFT:
            return
        if event.person is not None or event.sample is None:
            return
        import cv2

        stamp = f"{event.first_seen:.3f}".replace(".", "_")
        path = self.folder / f"unknown-track{event.track_id}-{stamp}.jpg"
        bgr = cv2.cvtColor(event.sample.image, cv2.COLOR_RGB2BGR)
        if cv2.imwrite(str(path), bgr):
            self.saved.append(path)
        else:
            log.warning("could not write %s", path)

    def close(self) -> None:
        return None
