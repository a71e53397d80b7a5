"""Recognise enrolled people in a video stream, in real time on a laptop CPU.

Per frame, :class:`Watcher` does one of two things:

- on a *detection frame*: detect faces on a copy of the frame shrunk to
  ``detect_max_side`` (YuNet finds faces down to ~10 px, and its cost grows with pixels),
  associate them with the tracks (:class:`~faceindex.tracking.tracker.FaceTracker`), score
  each face's quality and offer it to its track's best-frame window; a window's best face
  is embedded and identified (:class:`~faceindex.video.recognition.Recognizer`) and its
  answer is a vote (:class:`~faceindex.tracking.identity.IdentityVotes`);
- otherwise: nothing but the tracks' Kalman predictions.

How often to detect adapts (:class:`DetectionScheduler`): the measured cost of a detection
frame and of a tracking-only frame give the smallest interval ``N`` whose average cost fits
the frame budget (one frame period of the source, or ``target_fps``). For a file the cost
of a frame is the whole time from one frame to the next (decoding and writing included);
for a live source (``live=True``) only the time spent in :meth:`process`, since the rest is
waiting for the camera. Embedding time is left out of both: it is per track and transient.

An undecided track votes once per best-frame window, up to ``max_embeddings``; once
decided, an identified track is re-checked every ``recheck_s`` (an identity switch after an
occlusion is caught) and an unknown one every ``unknown_recheck_s`` (a face that turns to
the camera later still gets recognised). Events (:mod:`faceindex.video.events`) come out of
:meth:`process`.

With ``expressions`` on, a confirmed track's expression is estimated on detection frames,
at most every ``expression_every`` frames per track (all due faces of a frame in one
call), and smoothed per track (:mod:`faceindex.video.expressions`); each confirmed change
is an ``expression`` event, after the track's ``appeared``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from faceindex.attributes import Attribute, ExpressionEstimate
from faceindex.pipeline import Pipeline
from faceindex.quality import assess
from faceindex.tracking.identity import (
    BestFrames,
    FaceSample,
    IdentityDecision,
    IdentityStatus,
    IdentityVotes,
)
from faceindex.tracking.tracker import FaceTracker, Track
from faceindex.types import BBox, Face, ImageArray, Landmarks
from faceindex.video.events import Clock, Event, EventType, ExpressionEvent, TrackEvent
from faceindex.video.expressions import ExpressionChange, ExpressionSmoother, SmoothingOptions
from faceindex.video.recognition import Identifier, Recognizer

log = logging.getLogger(__name__)

#: ``expressions(image, faces)``: each face's expression (None where none was estimable).
ExpressionFn = Callable[[ImageArray, Sequence[Face]], Sequence[ExpressionEstimate | None]]


@dataclass(frozen=True, slots=True)
class WatchOptions:
    #: Frames are shrunk so their longer side is at most this before detection.
    detect_max_side: int = 640
    #: Detect every N frames (``None``: adaptive, between 1 and ``max_detect_interval``).
    detect_every: int | None = None
    max_detect_interval: int = 6
    #: Frame budget for the adaptive interval (``None``: the source's frame rate, else 30).
    target_fps: float | None = None
    #: Detections before a track is confirmed (and may produce events).
    min_hits: int = 2
    #: A track not detected for this long has left.
    absence_timeout_s: float = 1.0
    #: k of n: votes that must agree, out of the last ``vote_window``.
    votes_needed: int = 2
    vote_window: int = 3
    #: Detections per best-frame window (the first window is ``first_sample_window``).
    sample_window: int = 2
    first_sample_window: int = 1
    #: Faces below this quality score are never embedded.
    min_quality: float = 0.1
    #: Embeddings per track while it is undecided (after that it stays pending).
    max_embeddings: int = 8
    #: Re-check an identified track's identity this often (seconds; 0 = never).
    recheck_s: float = 5.0
    #: Re-check an unknown track this often (seconds; 0 = never).
    unknown_recheck_s: float = 2.0
    #: Announce a confirmed track as ``pending`` if it is still undecided after this.
    decision_timeout_s: float = 2.0
    #: Context kept around a face sample, as a fraction of the face's size on each side.
    sample_margin: float = 0.5
    #: Recognise faces at all (False: tracking only, every face unknown, no embeddings).
    recognize: bool = True
    #: Estimate each confirmed track's expression and report its changes.
    expressions: bool = False
    #: At most one expression estimate per track every this many frames (detection frames).
    expression_every: int = 3
    expression_smoothing: SmoothingOptions = field(default_factory=SmoothingOptions)


@dataclass(frozen=True, slots=True)
class TrackView:
    """A confirmed track as shown on one frame."""

    track_id: int
    bbox: BBox
    person: str | None
    similarity: float | None
    status: IdentityStatus
    #: True when the box comes from a detection on this frame (else a prediction).
    detected: bool


@dataclass(frozen=True, slots=True)
class FrameResult:
    frame_index: int
    timestamp: float
    tracks: tuple[TrackView, ...]
    detected: bool
    events: tuple[Event, ...]


@dataclass(slots=True)
class WatchStats:
    frames: int = 0
    detections: int = 0
    tracks: int = 0
    seconds: float = 0.0
    detect_seconds: float = 0.0
    expression_estimates: int = 0
    expression_seconds: float = 0.0


class DetectionScheduler:
    """Chooses how many frames apart to run the detector so that processing keeps up."""

    def __init__(self, *, fixed: int | None, max_interval: int, budget_s: float) -> None:
        self.fixed = fixed
        self.max_interval = max(1, max_interval)
        self.budget_s = budget_s
        self.interval = fixed or 1
        self._since = 10**9  # detect on the first frame
        self._detect_cost: float | None = None
        self._track_cost = 0.0

    def due(self) -> bool:
        return self._since >= self.interval

    def record(self, *, detected: bool, cost_s: float) -> None:
        alpha = 0.2
        if detected:
            self._since = 1
            d = self._detect_cost
            self._detect_cost = cost_s if d is None else (1 - alpha) * d + alpha * cost_s
        else:
            self._since += 1
            self._track_cost = (1 - alpha) * self._track_cost + alpha * cost_s
        if self.fixed is None and self._detect_cost is not None:
            self.interval = self._choose(self._detect_cost, self._track_cost)

    def _choose(self, d: float, c: float) -> int:
        if d <= self.budget_s:
            return 1
        if c >= self.budget_s:
            return self.max_interval
        return max(1, min(self.max_interval, math.ceil((d - c) / (self.budget_s - c))))


_PENDING = IdentityDecision(IdentityStatus.PENDING)


@dataclass(slots=True)
class _TrackInfo:
    frames: BestFrames
    votes: IdentityVotes
    decision: IdentityDecision = field(
        default_factory=lambda: IdentityDecision(IdentityStatus.PENDING)
    )
    announced: bool = False
    announced_person: int | None = None
    last_submit: float = -math.inf
    in_flight: int = 0
    detected_box: BBox | None = None
    smoother: ExpressionSmoother | None = None
    last_expression_frame: int = -(10**9)
    #: The latest confirmed expression change, and the frame it was confirmed on.
    expression: ExpressionChange | None = None
    expression_frame: int = 0
    expression_announced: ExpressionChange | None = None


def shrink_detect(pipeline: Pipeline, image: ImageArray, max_side: int) -> tuple[Face, ...]:
    """Detect on a copy shrunk to ``max_side``; faces come back in ``image``'s pixels."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return pipeline.detector.detect(image)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))))
    faces = pipeline.detector.detect(np.ascontiguousarray(small))
    return tuple(_rescale(f, 1.0 / scale, w, h) for f in faces)


def _rescale(face: Face, k: float, w: int, h: int) -> Face:
    b = face.bbox
    box = BBox(b.x1 * k, b.y1 * k, b.x2 * k, b.y2 * k).clipped(w, h)
    landmarks = None
    if face.landmarks is not None:
        landmarks = Landmarks(face.landmarks.points * k, face.landmarks.scheme)
    return dataclasses.replace(face, bbox=box, landmarks=landmarks)


def cut_sample(
    image: ImageArray, face: Face, quality: float, timestamp: float, frame_index: int, margin: float
) -> FaceSample:
    """The face with ``margin`` context, copied out of the frame, in the crop's pixels."""
    h, w = image.shape[:2]
    b = face.bbox
    pad = margin * max(b.width, b.height)
    x1, y1 = max(0, int(b.x1 - pad)), max(0, int(b.y1 - pad))
    x2, y2 = min(w, math.ceil(b.x2 + pad)), min(h, math.ceil(b.y2 + pad))
    crop = np.ascontiguousarray(image[y1:y2, x1:x2])
    shifted = BBox(b.x1 - x1, b.y1 - y1, b.x2 - x1, b.y2 - y1).clipped(x2 - x1, y2 - y1)
    landmarks = None
    if face.landmarks is not None:
        offset = np.array([x1, y1], np.float32)
        landmarks = Landmarks(face.landmarks.points - offset, face.landmarks.scheme)
    local = dataclasses.replace(face, bbox=shifted, landmarks=landmarks)
    return FaceSample(crop, local, quality, timestamp, frame_index, b)


class Watcher:
    """Tracks and recognises faces frame by frame; see the module docstring."""

    def __init__(
        self,
        pipeline: Pipeline,
        identifier: Identifier,
        *,
        options: WatchOptions | None = None,
        source: str = "",
        clock: Clock = Clock.VIDEO,
        source_fps: float | None = None,
        live: bool = False,
        expression_fn: ExpressionFn | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.options = o = options or WatchOptions()
        self.source = source
        self.clock = clock
        fps = o.target_fps or source_fps or 30.0
        self.scheduler = DetectionScheduler(
            fixed=o.detect_every, max_interval=o.max_detect_interval, budget_s=1.0 / fps
        )
        self.tracker = FaceTracker(min_hits=o.min_hits, max_age_s=o.absence_timeout_s)
        #: Frames come from a live source: recognise on a worker thread, and count only
        #: the time spent in :meth:`process` as a frame's cost (the rest is waiting).
        self.live = live
        self.recognizer = Recognizer(pipeline.embedder, identifier, asynchronous=live)
        self.stats = WatchStats()
        self._pending_cost: tuple[bool, float, float] | None = None
        self._info: dict[int, _TrackInfo] = {}
        if o.expression_every < 1:
            raise ValueError(f"expression_every must be >= 1, got {o.expression_every}")
        self._expression_fn = expression_fn
        if o.expressions and expression_fn is None:
            self._expression_fn = analyzer_expression_fn()

    def warm_up(self) -> None:
        """Load the expression model now, if expressions are on (else on first use)."""
        warm = getattr(self._expression_fn, "warm_up", None)
        if callable(warm):
            warm()

    def process(self, image: ImageArray, timestamp: float, frame_index: int) -> FrameResult:
        start = time.perf_counter()
        if self._pending_cost is not None:  # a file: the previous frame cost until now
            was_detection, began, embed_s = self._pending_cost
            cost = start - began - (self.recognizer.seconds - embed_s)
            self.scheduler.record(detected=was_detection, cost_s=max(0.0, cost))
            self._pending_cost = None
        events: list[Event] = []
        self._apply_votes(events)
        detected = self.scheduler.due()
        embed_s = self.recognizer.seconds
        if detected:
            self._detect_frame(image, timestamp, frame_index)
        else:
            for info in self._info.values():
                info.detected_box = None
        self._apply_votes(events)
        for track in self.tracker.expire(timestamp):
            events.extend(self._retire(track))
        for track in self.tracker.tracks:
            if track.confirmed:
                events.extend(self._maybe_announce(track, timestamp))
                events.extend(self._expression_events(track))
        views = tuple(self._view(t, timestamp) for t in self.tracker.tracks if t.confirmed)
        elapsed = time.perf_counter() - start
        if self.live:  # recognition runs on its own thread: all of this is frame cost
            self.scheduler.record(detected=detected, cost_s=elapsed)
        else:
            self._pending_cost = (detected, start, embed_s)
        self.stats.frames += 1
        self.stats.seconds += elapsed
        return FrameResult(frame_index, timestamp, views, detected, tuple(events))

    def finish(self) -> tuple[Event, ...]:
        """End of stream: wait for pending recognitions, then every track leaves."""
        self.recognizer.wait()
        events: list[Event] = []
        self._apply_votes(events)
        for track in self.tracker.flush():
            events.extend(self._retire(track))
        self.recognizer.close()
        return tuple(events)

    def close(self) -> None:
        self.recognizer.close()

    # -- steps ----------------------------------------------------------------------------

    def _detect_frame(self, image: ImageArray, timestamp: float, frame_index: int) -> None:
        o = self.options
        t = time.perf_counter()
        faces = shrink_detect(self.pipeline, image, o.detect_max_side)
        self.stats.detect_seconds += time.perf_counter() - t
        self.stats.detections += 1
        update = self.tracker.update(faces, timestamp, frame_index)
        for track in update.dropped:
            self._info.pop(track.id, None)
        for track in update.created:
            self.stats.tracks += 1
            self._info[track.id] = _TrackInfo(
                frames=BestFrames(
                    first_window=o.first_sample_window,
                    window=o.sample_window,
                    min_quality=o.min_quality,
                ),
                votes=IdentityVotes(needed=o.votes_needed, window=o.vote_window),
            )
        for info in self._info.values():
            info.detected_box = None
        if o.expressions:
            self._estimate_expressions(image, update.matched, timestamp, frame_index)
        for track, face in update.matched:
            info = self._info[track.id]
            info.detected_box = face.bbox
            if not o.recognize:
                continue
            quality = assess(image, face, self.pipeline.quality_thresholds).score
            sample = None
            if info.frames.worth_offering(quality):
                sample = cut_sample(image, face, quality, timestamp, frame_index, o.sample_margin)
            best = info.frames.offer(sample, quality)
            wanted = best is not None and self._wants_vote(info, timestamp)
            if wanted and best is not None and self.recognizer.submit(track.id, best):
                info.in_flight += 1
                info.last_submit = timestamp

    def _estimate_expressions(
        self,
        image: ImageArray,
        matched: Sequence[tuple[Track, Face]],
        timestamp: float,
        frame_index: int,
    ) -> None:
        o = self.options
        due = [
            (self._info[track.id], face)
            for track, face in matched
            if track.confirmed
            and frame_index - self._info[track.id].last_expression_frame >= o.expression_every
        ]
        if not due or self._expression_fn is None:
            return
        t = time.perf_counter()
        found = self._expression_fn(image, [face for _, face in due])
        self.stats.expression_seconds += time.perf_counter() - t
        self.stats.expression_estimates += len(due)
        for (info, _), estimate in zip(due, found, strict=True):
            info.last_expression_frame = frame_index
            if estimate is None:
                continue
            if info.smoother is None:
                info.smoother = ExpressionSmoother(o.expression_smoothing)
            change = info.smoother.update(timestamp, estimate.scores)
            if change is not None:
                info.expression, info.expression_frame = change, frame_index

    def _expression_events(self, track: Track) -> list[Event]:
        """The track's confirmed expression change, once it has been announced."""
        info = self._info.get(track.id)
        if info is None or not info.announced or info.expression is info.expression_announced:
            return []
        change = info.expression
        info.expression_announced = change
        if change is None:
            return []
        d = info.decision
        return [
            ExpressionEvent(
                track_id=track.id,
                person=d.person,
                person_id=d.person_id if d.person else None,
                label=str(change.label),
                score=change.score,
                t=change.t,
                frame=info.expression_frame,
                clock=self.clock,
                source=self.source,
            )
        ]

    def _wants_vote(self, info: _TrackInfo, timestamp: float) -> bool:
        o = self.options
        if info.in_flight:
            return False
        status = info.decision.status
        if status is IdentityStatus.PENDING:
            return info.votes.total < o.max_embeddings
        every = o.recheck_s if status is IdentityStatus.IDENTIFIED else o.unknown_recheck_s
        return every > 0 and timestamp - info.last_submit >= every

    def _apply_votes(self, events: list[Event]) -> None:
        for rec in self.recognizer.results():
            info = self._info.get(rec.track_id)
            if info is None:  # the track was dropped meanwhile
                continue
            info.in_flight = max(0, info.in_flight - 1)
            info.decision = info.votes.add(rec.vote)
            track = self._track(rec.track_id)
            if track is not None and info.announced:
                events.extend(self._maybe_reannounce(track, info))

    def _maybe_announce(self, track: Track, timestamp: float) -> list[Event]:
        info = self._info[track.id]
        if info.announced:
            return []
        waited = timestamp - track.first_seen
        if (
            info.decision.status is IdentityStatus.PENDING
            and waited < self.options.decision_timeout_s
        ):
            return []
        info.announced = True
        info.announced_person = info.decision.person_id if info.decision.person else None
        return [self._event(EventType.APPEARED, track, info)]

    def _maybe_reannounce(self, track: Track, info: _TrackInfo) -> list[Event]:
        person = info.decision.person_id if info.decision.person else None
        if info.decision.status is IdentityStatus.PENDING or person == info.announced_person:
            return []
        if person is None and info.decision.status is IdentityStatus.UNKNOWN:
            # named before, now voted unknown: keep the name until the votes name someone
            return []
        info.announced_person = person
        return [self._event(EventType.IDENTIFIED, track, info)]

    def _retire(self, track: Track) -> list[Event]:
        info = self._info.get(track.id)
        if info is None or not track.confirmed:
            self._info.pop(track.id, None)
            return []
        out: list[Event] = []
        if not info.announced:
            info.announced = True
            out.append(self._event(EventType.APPEARED, track, info))
        out.extend(self._expression_events(track))
        out.append(self._event(EventType.LEFT, track, info))
        del self._info[track.id]
        return out

    def _event(self, kind: EventType, track: Track, info: _TrackInfo) -> TrackEvent:
        d = info.decision
        best = info.frames.best
        return TrackEvent(
            event=kind,
            track_id=track.id,
            person=d.person,
            person_id=d.person_id if d.person else None,
            similarity=d.similarity,
            decision=d.status,
            first_seen=track.first_seen,
            last_seen=track.last_seen,
            bbox=best.bbox if best is not None else track.last_face.bbox,
            frame=best.frame_index if best is not None else track.last_frame,
            clock=self.clock,
            source=self.source,
            sample=best,
        )

    def _view(self, track: Track, timestamp: float) -> TrackView:
        info = self._info[track.id]
        box = info.detected_box or track.box_at(timestamp)
        d = info.decision
        return TrackView(
            track.id, box, d.person, d.similarity, d.status, info.detected_box is not None
        )

    def _track(self, track_id: int) -> Track | None:
        return next((t for t in self.tracker.tracks if t.id == track_id), None)


def analyzer_expression_fn() -> ExpressionFn:
    """Expressions from the attribute models' expression backend (loaded on first use;
    ``warm_up`` loads it now)."""
    from faceindex.attributes.analyzer import FaceAnalyzer

    analyzer = FaceAnalyzer({Attribute.EXPRESSION})

    class _Expressions:
        def __call__(
            self, image: ImageArray, faces: Sequence[Face]
        ) -> Sequence[ExpressionEstimate | None]:
            return [a.expression for a in analyzer.estimate(image, faces)]

        def warm_up(self) -> None:
            analyzer.warm_up()

    return _Expressions()


__all__ = [
    "DetectionScheduler",
    "ExpressionFn",
    "FrameResult",
    "TrackView",
    "WatchOptions",
    "WatchStats",
    "Watcher",
    "analyzer_expression_fn",
    "cut_sample",
    "shrink_detect",
]
