"""Multi-face tracking: detections associated with Kalman-predicted tracks between frames.

On a frame with detections, every live track is predicted to the frame's timestamp and
detections are matched to tracks greedily, best pair first. A pair may match when the
predicted box overlaps the detection (IoU at least ``iou_threshold``) or, for fast motion
seen through sparse detections, when the centres are within ``centre_gate`` face sizes of
each other and the sizes agree within a factor of two. Unmatched detections start
*tentative* tracks, which become *confirmed* after ``min_hits`` detections; a tentative
track that misses a detection frame is dropped (a one-frame false positive never becomes
an event). A confirmed track not detected for ``max_age_s`` seconds is retired.

Why not a tracking library: the maintained ones (norfair, motpy, supervision's ByteTrack)
bring dependencies (scipy, or a large package) for what is ~150 lines of numpy here; with a
handful of faces per frame greedy matching gives the same assignment as Hungarian matching
in all but contrived cases, at microseconds per frame.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from faceindex.tracking.kalman import BoxKalman
from faceindex.types import BBox, Face


class TrackState(enum.StrEnum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"


@dataclass(eq=False, slots=True)
class Track:
    """One face followed through time. Mutable: owned and updated by the tracker."""

    id: int
    kalman: BoxKalman
    first_seen: float
    last_seen: float
    last_face: Face
    last_frame: int
    hits: int = 1
    state: TrackState = TrackState.TENTATIVE

    @property
    def confirmed(self) -> bool:
        return self.state is TrackState.CONFIRMED

    def box_at(self, timestamp: float) -> BBox:
        return self.kalman.box_at(timestamp)


@dataclass(frozen=True, slots=True)
class TrackerUpdate:
    matched: tuple[tuple[Track, Face], ...]
    created: tuple[Track, ...]
    #: Confirmed tracks that have just become confirmed on this update.
    confirmed: tuple[Track, ...]
    #: Tentative tracks dropped because they missed this detection frame.
    dropped: tuple[Track, ...]


class FaceTracker:
    def __init__(
        self,
        *,
        iou_threshold: float = 0.2,
        centre_gate: float = 0.75,
        min_hits: int = 2,
        max_age_s: float = 1.0,
    ) -> None:
        if min_hits < 1:
            raise ValueError("min_hits must be at least 1")
        self.iou_threshold = iou_threshold
        self.centre_gate = centre_gate
        self.min_hits = min_hits
        self.max_age_s = max_age_s
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)

    def update(self, faces: Sequence[Face], timestamp: float, frame_index: int) -> TrackerUpdate:
        """Associate this frame's detections with the tracks (call on detection frames)."""
        for t in self.tracks:
            t.kalman.predict(timestamp)
        pairs = self._associate(faces)
        matched: list[tuple[Track, Face]] = []
        confirmed: list[Track] = []
        used_faces: set[int] = set()
        for ti, fi in pairs:
            track, face = self.tracks[ti], faces[fi]
            used_faces.add(fi)
            track.kalman.update(face.bbox, timestamp)
            track.last_seen = timestamp
            track.last_face = face
            track.last_frame = frame_index
            track.hits += 1
            if track.state is TrackState.TENTATIVE and track.hits >= self.min_hits:
                track.state = TrackState.CONFIRMED
                confirmed.append(track)
            matched.append((track, face))
        matched_ids = {id(t) for t, _ in matched}
        dropped = [
            t for t in self.tracks if t.state is TrackState.TENTATIVE and id(t) not in matched_ids
        ]
        self.tracks = [t for t in self.tracks if t not in dropped]
        created: list[Track] = []
        for fi, face in enumerate(faces):
            if fi in used_faces:
                continue
            track = Track(
                id=next(self._ids),
                kalman=BoxKalman(face.bbox, timestamp),
                first_seen=timestamp,
                last_seen=timestamp,
                last_face=face,
                last_frame=frame_index,
            )
            if self.min_hits <= 1:
                track.state = TrackState.CONFIRMED
                confirmed.append(track)
            self.tracks.append(track)
            created.append(track)
            matched.append((track, face))
        return TrackerUpdate(tuple(matched), tuple(created), tuple(confirmed), tuple(dropped))

    def expire(self, timestamp: float) -> list[Track]:
        """Retire confirmed tracks not detected for more than ``max_age_s``; returns them."""
        gone = [t for t in self.tracks if timestamp - t.last_seen > self.max_age_s]
        self.tracks = [t for t in self.tracks if t not in gone]
        return gone

    def flush(self) -> list[Track]:
        """Retire every track (end of stream)."""
        gone, self.tracks = self.tracks, []
        return gone

    def _associate(self, faces: Sequence[Face]) -> list[tuple[int, int]]:
        candidates: list[tuple[float, int, int]] = []
        for ti, track in enumerate(self.tracks):
            pred = track.kalman.box()
            for fi, face in enumerate(faces):
                cost = self._cost(pred, face.bbox)
                if cost is not None:
                    candidates.append((cost, ti, fi))
        candidates.sort()
        used_t: set[int] = set()
        used_f: set[int] = set()
        pairs = []
        for _, ti, fi in candidates:
            if ti in used_t or fi in used_f:
                continue
            used_t.add(ti)
            used_f.add(fi)
            pairs.append((ti, fi))
        return pairs

    def _cost(self, pred: BBox, det: BBox) -> float | None:
        """Lower is better; ``None`` when the pair may not match."""
        iou = pred.iou(det)
        size_p = max(pred.width, pred.height, 1.0)
        size_d = max(det.width, det.height, 1.0)
        dx = (pred.x1 + pred.x2 - det.x1 - det.x2) / 2
        dy = (pred.y1 + pred.y2 - det.y1 - det.y2) / 2
        dist = (dx * dx + dy * dy) ** 0.5 / max(size_p, size_d)
        if iou < self.iou_threshold:
            ratio = size_p / size_d
            if dist > self.centre_gate or not 0.5 <= ratio <= 2.0:
                return None
        return float((1.0 - iou) + dist)
