"""Tracker, voting, best-frame windows and the detection scheduler on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from faceindex.tracking.identity import (
    BestFrames,
    FaceSample,
    IdentityStatus,
    IdentityVotes,
    Vote,
)
from faceindex.tracking.kalman import BoxKalman
from faceindex.tracking.tracker import FaceTracker, TrackState
from faceindex.types import BBox, Face
from faceindex.video.watch import DetectionScheduler


def face(x: float, y: float, size: float = 60.0) -> Face:
    return Face(bbox=BBox(x, y, x + size, y + size), score=0.9)


def test_kalman_learns_velocity_and_predicts() -> None:
    k = BoxKalman(BBox(0, 0, 50, 50), 0.0)
    for i in range(1, 8):
        k.update(BBox(10 * i, 0, 10 * i + 50, 50), i * 0.1)  # 100 px/s to the right
    ahead = k.box_at(1.0)  # 0.3 s after the last update: ~30 px further
    assert ahead.x1 == pytest.approx(100, abs=6)
    assert ahead.width == pytest.approx(50, abs=2)


def test_tracker_keeps_one_id_through_fast_sparse_motion() -> None:
    tracker = FaceTracker(min_hits=2, max_age_s=1.0)
    ids = set()
    # detections every 0.2 s of a face moving 40 px per detection: boxes barely overlap
    for i in range(15):
        update = tracker.update([face(40.0 * i, 100)], i * 0.2, i * 5)
        ids.update(t.id for t, _ in update.matched)
    assert ids == {1}
    assert tracker.tracks[0].state is TrackState.CONFIRMED and tracker.tracks[0].hits == 15


def test_tracker_two_faces_crossing_keep_their_ids() -> None:
    tracker = FaceTracker(min_hits=1)
    paths: dict[int, list[float]] = {}
    for i in range(20):
        a, b = face(20 + 25.0 * i, 50), face(500 - 25.0 * i, 130)
        for t, f in tracker.update([a, b], i / 10, i).matched:
            paths.setdefault(t.id, []).append(f.bbox.x1)
    assert sorted(paths) == [1, 2]
    assert all(np.diff(paths[1]) > 0) and all(np.diff(paths[2]) < 0)


def test_tentative_dropped_confirmed_expire_after_absence() -> None:
    tracker = FaceTracker(min_hits=2, max_age_s=0.5)
    tracker.update([face(0, 0)], 0.0, 0)
    update = tracker.update([], 0.1, 1)
    assert [t.id for t in update.dropped] == [1] and not tracker.tracks
    tracker.update([face(0, 0)], 0.2, 2)
    tracker.update([face(2, 0)], 0.3, 3)
    assert tracker.update([], 0.6, 4).dropped == ()
    assert tracker.expire(0.7) == []
    gone = tracker.expire(0.81)
    assert [t.id for t in gone] == [2] and not tracker.tracks


def vote(person: int | None, sim: float = 0.6) -> Vote:
    return Vote(person, None if person is None else f"p{person}", sim, 1.0, 0.0)


def test_votes_k_of_n() -> None:
    v = IdentityVotes(needed=2, window=3)
    assert v.add(vote(7)).status is IdentityStatus.PENDING
    assert v.add(vote(None, 0.2)).status is IdentityStatus.PENDING
    d = v.add(vote(7, 0.8))
    assert (d.status, d.person_id, d.person) == (IdentityStatus.IDENTIFIED, 7, "p7")
    assert d.similarity == pytest.approx(0.7)
    v.add(vote(None, 0.1))
    d = v.add(vote(None, 0.3))  # window now: 7, None, None
    assert d.status is IdentityStatus.UNKNOWN and d.person is None
    assert d.similarity == pytest.approx(0.2)
    with pytest.raises(ValueError):
        IdentityVotes(needed=4, window=3)


def test_best_frames_hands_out_each_windows_best() -> None:
    frames = BestFrames(first_window=2, window=3, min_quality=0.2)

    def sample(q: float) -> FaceSample:
        return FaceSample(np.zeros((4, 4, 3), np.uint8), face(0, 0), q, 0.0, 0, BBox(0, 0, 1, 1))

    assert frames.offer(sample(0.5), 0.5) is None
    assert frames.offer(sample(0.7), 0.7).quality == 0.7  # type: ignore[union-attr]
    assert frames.offer(sample(0.1), 0.1) is None  # below min_quality: never embedded
    assert frames.offer(sample(0.4), 0.4) is None
    assert frames.offer(sample(0.3), 0.3).quality == 0.4  # type: ignore[union-attr]
    assert frames.best is not None and frames.best.quality == 0.7
    assert not frames.worth_offering(0.1)


def test_scheduler_adapts_interval_to_budget() -> None:
    s = DetectionScheduler(fixed=None, max_interval=6, budget_s=1 / 30)
    assert s.due()
    for _ in range(20):  # detection 10 ms: fits the 33 ms budget every frame
        s.record(detected=True, cost_s=0.010)
    assert s.interval == 1
    for _ in range(30):  # detection 80 ms, tracking 5 ms: (80-5)/(33-5) -> every 3 frames
        s.record(detected=True, cost_s=0.080)
        s.record(detected=False, cost_s=0.005)
    assert s.interval == 3
    fixed = DetectionScheduler(fixed=4, max_interval=6, budget_s=1 / 30)
    fixed.record(detected=True, cost_s=1.0)
    assert fixed.interval == 4 and not fixed.due()
