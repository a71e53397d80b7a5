"""The watch engine on synthetic clips: events, identities, track continuity, timing."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from faceindex.gallery import Gallery
from faceindex.io.video import open_video
from faceindex.pipeline import Pipeline
from faceindex.video.events import Clock, EventType, TrackEvent
from faceindex.video.recognition import NobodyIdentifier
from faceindex.video.watch import FrameResult, Watcher, WatchOptions


def run(
    path: Path,
    pipeline: Pipeline,
    identifier: object,
    *,
    options: WatchOptions | None = None,
    realtime: bool = False,
) -> tuple[list[FrameResult], list[TrackEvent], Watcher]:
    with open_video(path, realtime=realtime) as video:
        watcher = Watcher(
            pipeline,
            identifier,  # type: ignore[arg-type]
            options=options,
            source=str(path),
            clock=Clock.VIDEO,
            source_fps=video.info.fps,
            live=video.info.live,
        )
        results = [watcher.process(f.image, f.timestamp, f.index) for f in video.frames()]
    events = [e for r in results for e in r.events] + list(watcher.finish())
    return results, events, watcher


def kinds(events: list[TrackEvent]) -> list[tuple[str, int, str | None]]:
    return [(str(e.event), e.track_id, e.person) for e in events]


def test_pan_one_track_identified(
    clips: dict[str, Path], pipeline: Pipeline, identifier: Gallery
) -> None:
    results, events, watcher = run(clips["pan"], pipeline, identifier)
    assert kinds(events) == [("appeared", 1, "Barack Obama"), ("left", 1, "Barack Obama")]
    ids = {t.track_id for r in results for t in r.tracks}
    assert ids == {1}
    shown = [r for r in results if r.tracks]
    # on screen from its second detection on (detection interval: 1 to 6 frames, adaptive)
    assert len(shown) >= len(results) - 12
    # the box follows the face to the right
    xs = [r.tracks[0].bbox.x1 for r in shown]
    assert xs[-1] - xs[0] > 250
    appeared, left = events
    assert appeared.similarity is not None and appeared.similarity > 0.4
    assert left.first_seen == 0.0 and left.last_seen > 2.0
    assert left.as_dict()["bbox"] == left.bbox.as_list() and len(left.as_dict()["bbox"]) == 4
    # recognised from a few best frames, not every frame
    assert watcher.recognizer.embeddings <= 6


def test_zoom_keeps_the_track(
    clips: dict[str, Path], pipeline: Pipeline, identifier: Gallery
) -> None:
    results, events, _ = run(clips["zoom"], pipeline, identifier)
    assert kinds(events) == [("appeared", 1, "Barack Obama"), ("left", 1, "Barack Obama")]
    sizes = [r.tracks[0].bbox.width for r in results if r.tracks]
    assert sizes[-1] > 1.6 * sizes[0]


def test_two_people_crossing(
    clips: dict[str, Path], pipeline: Pipeline, identifier: Gallery
) -> None:
    results, events, _ = run(clips["crossing"], pipeline, identifier)
    appeared = {e.track_id: e.person for e in events if e.event is EventType.APPEARED}
    left = {e.track_id: e for e in events if e.event is EventType.LEFT}
    assert sorted(appeared.values(), key=str) == ["Barack Obama", None]
    assert set(left) == set(appeared)  # no track lost or split while crossing
    obama = next(t for t, p in appeared.items() if p == "Barack Obama")
    biden = next(t for t, p in appeared.items() if p is None)
    assert left[biden].decision == "unknown" and left[obama].person == "Barack Obama"
    # Obama moves right, Biden left, and their ids never swap
    track_x: dict[int, list[float]] = {obama: [], biden: []}
    for r in results:
        for t in r.tracks:
            track_x[t.track_id].append(t.bbox.x1)
    assert track_x[obama][-1] - track_x[obama][0] > 300
    assert track_x[biden][0] - track_x[biden][-1] > 300


def test_leave_and_return_gives_two_visits(
    clips: dict[str, Path], pipeline: Pipeline, identifier: Gallery
) -> None:
    _, events, _ = run(clips["leave_and_return"], pipeline, identifier)
    assert kinds(events) == [
        ("appeared", 1, "Barack Obama"),
        ("left", 1, "Barack Obama"),
        ("appeared", 2, "Barack Obama"),
        ("left", 2, "Barack Obama"),
    ]
    first_left, second = events[1], events[2]
    assert first_left.last_seen < 30 / 25  # last seen on frame 29
    assert second.first_seen >= 70 / 25 - 1e-6  # back on frame 70


def test_no_faces_no_events(
    clips: dict[str, Path], pipeline: Pipeline, identifier: Gallery
) -> None:
    results, events, watcher = run(clips["no_faces"], pipeline, identifier)
    assert events == [] and all(not r.tracks for r in results)
    assert watcher.recognizer.embeddings == 0


def test_without_gallery_everyone_is_unknown(clips: dict[str, Path], pipeline: Pipeline) -> None:
    _, events, _ = run(clips["pan"], pipeline, NobodyIdentifier())
    assert kinds(events) == [("appeared", 1, None), ("left", 1, None)]
    assert events[0].decision == "unknown"


def test_fixed_detection_interval_still_tracks(
    clips: dict[str, Path], pipeline: Pipeline, identifier: Gallery
) -> None:
    results, events, watcher = run(
        clips["pan"], pipeline, identifier, options=WatchOptions(detect_every=4)
    )
    assert kinds(events) == [("appeared", 1, "Barack Obama"), ("left", 1, "Barack Obama")]
    assert watcher.stats.detections == 15  # 60 frames / 4
    predicted = [r.tracks[0] for r in results if r.tracks and not r.detected]
    assert predicted and all(not t.detected for t in predicted)


def test_realtime_source_recognises_asynchronously(
    clips: dict[str, Path], pipeline: Pipeline, identifier: Gallery
) -> None:
    start = time.monotonic()
    latencies: list[float] = []
    with open_video(clips["pan"], realtime=True) as video:
        watcher = Watcher(pipeline, identifier, source_fps=video.info.fps, live=True)
        events = []
        for f in video.frames():
            events.extend(watcher.process(f.image, f.timestamp, f.index).events)
            latencies.append(time.monotonic() - f.captured_at)
        events.extend(watcher.finish())
    assert 2.0 < time.monotonic() - start < 6.0  # 2.4 s of video, paced
    assert kinds(events) == [("appeared", 1, "Barack Obama"), ("left", 1, "Barack Obama")]
    assert float(np.median(latencies)) < 0.1
