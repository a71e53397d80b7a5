"""Video recognition: frames per second, live latency and identity accuracy, vs face_recognition.

Usage:
    python benchmarks/video.py --make-video [--faces DIR]   # synthesise 480p/720p/1080p clips
    python benchmarks/video.py VIDEO                         # your own clip (no accuracy figures)

The synthetic clip (6 s at 30 fps, made from the dev photos in DIR, default
/work/shared/dev-data/faces) has three people with known positions on every frame:
Barack Obama walking right (obama3.jpg; enrolled from obama.jpg and obama2.jpg), Joe Biden
walking left from second 1 to 5.5 (cut from two_people.jpg; enrolled from biden.jpg) and
Lin-Manuel Miranda from second 2 to 6 (not enrolled: must come out unknown).

Measured, at 480p, 720p and 1080p:
- fps *with tracking*: ``faceindex watch``'s engine (adaptive detection interval, Kalman
  tracks, embeddings only on each track's best frames, k-of-n votes), decoding included;
  median of ``--repeats`` runs;
- fps *without tracking*: the same models on every frame (detect, embed every face,
  identify), on the first ``--naive-frames`` frames;
- latency on a live-like source at 720p: the clip pushed at 30 fps by the newest-frame
  reader (``--realtime``), latency = result time - capture time (median and p95), and the
  share of frames processed (the rest were dropped as stale);
- identity accuracy: *per track* (each track's final decision against the person it
  followed; for the peer, which has no tracks, the majority of its per-frame answers over
  each person's visit) and *per face-frame* (every visible face on every frame: a missed or
  not-yet-decided face counts as wrong);
- the peer: face_recognition 1.3's per-frame loop exactly as in its examples
  (``face_locations(rgb)``, ``face_encodings(rgb, locations)``, ``compare_faces`` with
  tolerance 0.6 against the known encodings and ``face_distance`` for the best match),
  on the 720p clip (``--peer-all`` also at 480p and 1080p).

With ``--expressions``: fps with tracking again, at every resolution, with ``watch
--expressions`` on (each confirmed track's expression estimated at most every 3 frames,
smoothed), beside the fps without, and the time per expression estimate.

Targets: >= 25 fps at 720p with tracking on 2 cores, >= 5x the peer's fps, and identity
accuracy per track no lower than the peer's. The CPUs may be shared: the load average is
printed before and after, and fps figures are medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from _common import cpu_count, fmt_table
from faceindex.gallery import open_gallery
from faceindex.io.image import load_image
from faceindex.io.video import open_video
from faceindex.pipeline import Pipeline
from faceindex.types import BBox
from faceindex.video.events import EventType
from faceindex.video.watch import Watcher, WatchOptions, WatchStats, shrink_detect

FACES = Path("/work/shared/dev-data/faces")
FPS = 30.0
SECONDS = 6.0
HEIGHTS = (480, 720, 1080)
OBAMA, BIDEN = "Barack Obama", "Joe Biden"


# -- the synthetic clip -------------------------------------------------------------------


@dataclass
class Actor:
    label: str | None  # who the face is (None: not enrolled)
    image: np.ndarray  # the photo, RGB
    face: BBox  # the face in the photo's pixels
    height: float  # patch height, fraction of the frame height
    start: float
    end: float
    x0: float  # patch left edge at start / end, fraction of the frame width
    x1: float
    y: float  # patch top, fraction of the frame height


def _actors(faces_dir: Path, pipeline: Pipeline) -> list[Actor]:
    def photo(name: str, crop: tuple[slice, slice] | None = None) -> tuple[np.ndarray, BBox]:
        img = load_image(faces_dir / name)
        if crop is not None:
            img = np.ascontiguousarray(img[crop])
        found = pipeline.detect(img)
        if not found:
            raise SystemExit(f"{name}: no face found: cannot build the clip")
        return img, found[0].bbox

    obama, obama_face = photo("obama3.jpg")
    two = load_image(faces_dir / "two_people.jpg")
    biden, biden_face = photo("two_people.jpg", (slice(None), slice(two.shape[1] // 2, None)))
    lin, lin_face = photo("lin-manuel-miranda.png")
    return [
        Actor(OBAMA, obama, obama_face, 0.7, 0.0, SECONDS, 0.0, 0.55, 0.0),
        Actor(None, lin, lin_face, 0.25, 2.0, SECONDS, 0.72, 0.70, 0.05),
        Actor(BIDEN, biden, biden_face, 0.4, 1.0, 5.5, 0.75, 0.05, 0.55),
    ]


def _scene(
    actors: list[Actor], height: int
) -> Iterator[tuple[np.ndarray, list[tuple[str | None, BBox]]]]:
    width = round(height * 16 / 9)
    ramp = np.linspace(60, 110, width, dtype=np.float32)
    background = np.repeat(np.repeat(ramp[None, :, None], height, 0), 3, 2).astype(np.uint8)
    scaled = {}
    for a in actors:
        ph = round(a.height * height)
        pw = round(a.image.shape[1] * ph / a.image.shape[0])
        scaled[id(a)] = cv2.resize(a.image, (pw, ph), interpolation=cv2.INTER_AREA)
    for i in range(int(SECONDS * FPS)):
        t = i / FPS
        frame = background.copy()
        truth = []
        for a in actors:
            if not a.start <= t < a.end:
                continue
            patch = scaled[id(a)]
            k = patch.shape[0] / a.image.shape[0]
            u = (t - a.start) / max(a.end - a.start, 1e-6)
            x = round((a.x0 + (a.x1 - a.x0) * u) * width)
            y = round(a.y * height)
            ph, pw = patch.shape[:2]
            x1, y1, x2, y2 = max(0, x), max(0, y), min(width, x + pw), min(height, y + ph)
            if x2 > x1 and y2 > y1:
                frame[y1:y2, x1:x2] = patch[y1 - y : y2 - y, x1 - x : x2 - x]
            f = a.face
            box = BBox(x + f.x1 * k, y + f.y1 * k, x + f.x2 * k, y + f.y2 * k)
            inside = box.clipped(width, height)
            if inside.area >= 0.8 * box.area:
                truth.append((a.label, inside))
        yield frame, truth


def make_videos(faces_dir: Path, out_dir: Path, pipeline: Pipeline) -> dict[int, Path]:
    actors = _actors(faces_dir, pipeline)
    paths = {}
    for h in HEIGHTS:
        path = out_dir / f"synthetic-{h}p.mp4"
        writer = None
        truth = []
        for frame, gt in _scene(actors, h):
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, size)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            truth.append(gt)
        assert writer is not None
        writer.release()
        TRUTH[h] = truth
        paths[h] = path
    return paths


TRUTH: dict[int, list[list[tuple[str | None, BBox]]]] = {}


def transcode(video: Path, out_dir: Path) -> dict[int, Path]:
    """Your clip at 480p, 720p and 1080p (no ground truth: no accuracy figures)."""
    paths = {}
    for h in HEIGHTS:
        path = out_dir / f"input-{h}p.mp4"
        writer = None
        with open_video(video) as src:
            fps = src.info.fps or FPS
            for frame in src.frames():
                img = frame.image
                w = round(img.shape[1] * h / img.shape[0])
                if writer is None:
                    writer = cv2.VideoWriter(
                        str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h)
                    )
                writer.write(cv2.cvtColor(cv2.resize(img, (w, h)), cv2.COLOR_RGB2BGR))
        assert writer is not None
        writer.release()
        paths[h] = path
    return paths


# -- scoring ----------------------------------------------------------------------------

Pred = tuple[BBox, str | None, int | None]  # box, label, track id


def _match(truth: list[tuple[str | None, BBox]], preds: list[Pred]) -> list[Pred | None]:
    out: list[Pred | None] = []
    for _, g in truth:
        gx = (g.x2 - g.x1) * 0.25
        gy = (g.y2 - g.y1) * 0.25
        near = [
            p
            for p in preds
            if g.x1 - gx <= (p[0].x1 + p[0].x2) / 2 <= g.x2 + gx
            and g.y1 - gy <= (p[0].y1 + p[0].y2) / 2 <= g.y2 + gy
        ]
        out.append(max(near, key=lambda p: p[0].iou(g)) if near else None)
    return out


def score(
    truth: list[list[tuple[str | None, BBox]]],
    preds: list[list[Pred]],
    final: dict[int, str | None] | None,
) -> dict[str, Any]:
    """Per face-frame accuracy, and per track (``final``: each track's final decision) or,
    without tracks, per person-visit by majority of the per-frame answers."""
    right = total = 0
    tracks_of: dict[int, Counter[str | None]] = defaultdict(Counter)
    answers_of: dict[str | None, Counter[str | None]] = defaultdict(Counter)
    for gt, pr in zip(truth, preds, strict=False):
        for (label, _), p in zip(gt, _match(gt, pr), strict=True):
            total += 1
            if p is not None:
                right += p[1] == label
                answers_of[label][p[1]] += 1
                if p[2] is not None:
                    tracks_of[p[2]][label] += 1
    per_frame = right / total if total else float("nan")
    if final is not None:
        followed = {t: c.most_common(1)[0][0] for t, c in tracks_of.items() if c.total() >= 5}
        good = sum(final.get(t, "?") == label for t, label in followed.items())
        return {"per_frame": per_frame, "per_track": good / len(followed), "tracks": len(followed)}
    present = {label for gt in truth[: len(preds)] for label, _ in gt}
    visits = {label: c.most_common(1)[0][0] for label, c in answers_of.items()}
    good = sum(visits.get(label, "?") == label for label in present)
    return {"per_frame": per_frame, "per_track": good / len(present), "tracks": len(present)}


# -- systems ----------------------------------------------------------------------------


def run_tracking(
    path: Path, pipeline: Pipeline, gallery: Any, options: WatchOptions | None = None
) -> tuple[float, list[list[Pred]], dict[int, str | None]]:
    return run_watch(path, pipeline, gallery, options)[:3]


def run_watch(
    path: Path, pipeline: Pipeline, gallery: Any, options: WatchOptions | None = None
) -> tuple[float, list[list[Pred]], dict[int, str | None], WatchStats, int]:
    """fps, predictions, final identities, the watcher's stats, expression events."""
    preds: list[list[Pred]] = []
    final: dict[int, str | None] = {}
    n_expr = 0
    with open_video(path) as video:
        watcher = Watcher(
            pipeline, gallery, options=options, source=str(path), source_fps=video.info.fps
        )
        watcher.warm_up()
        start = time.perf_counter()
        for frame in video.frames():
            r = watcher.process(frame.image, frame.timestamp, frame.index)
            preds.append([(t.bbox, t.person, t.track_id) for t in r.tracks])
            final.update({e.track_id: e.person for e in r.events if e.event is EventType.LEFT})
            n_expr += sum(e.event is EventType.EXPRESSION for e in r.events)
        events = watcher.finish()
        elapsed = time.perf_counter() - start
    final.update({e.track_id: e.person for e in events if e.event is EventType.LEFT})
    n_expr += sum(e.event is EventType.EXPRESSION for e in events)
    return len(preds) / elapsed, preds, final, watcher.stats, n_expr


def run_naive(
    path: Path, pipeline: Pipeline, gallery: Any, limit: int
) -> tuple[float, list[list[Pred]]]:
    ident = gallery
    preds: list[list[Pred]] = []
    with open_video(path) as video:
        start = time.perf_counter()
        for frame in video.frames():
            faces = shrink_detect(pipeline, frame.image, 640)
            row: list[Pred] = []
            if faces:
                vectors = pipeline.embedder.embed(frame.image, faces)
                for f, a in zip(faces, ident.identify_vectors(vectors), strict=True):
                    row.append((f.bbox, a.person.name if a.person else None, None))
            preds.append(row)
            if len(preds) >= limit:
                break
        elapsed = time.perf_counter() - start
    return len(preds) / elapsed, preds


def run_latency(path: Path, pipeline: Pipeline, gallery: Any) -> dict[str, float]:
    latencies = []
    with open_video(path, realtime=True) as video:
        watcher = Watcher(
            pipeline,
            gallery,
            source_fps=video.info.fps,
            live=True,
        )
        for frame in video.frames():
            watcher.process(frame.image, frame.timestamp, frame.index)
            latencies.append(time.monotonic() - frame.captured_at)
        watcher.finish()
        pushed = len(latencies) + video.dropped
    ms = np.array(latencies) * 1000
    return {
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "processed": len(latencies) / pushed,
    }


def run_peer(path: Path, faces_dir: Path, limit: int) -> tuple[float, list[list[Pred]]]:
    import face_recognition

    known_encodings, known_names = [], []
    for name, label in (("obama.jpg", OBAMA), ("obama2.jpg", OBAMA), ("biden.jpg", BIDEN)):
        image = face_recognition.load_image_file(str(faces_dir / name))
        known_encodings.append(face_recognition.face_encodings(image)[0])
        known_names.append(label)
    preds: list[list[Pred]] = []
    capture = cv2.VideoCapture(str(path))
    start = time.perf_counter()
    while len(preds) < limit:
        ok, bgr = capture.read()
        if not ok:
            break
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        locations = face_recognition.face_locations(rgb)
        encodings = face_recognition.face_encodings(rgb, locations)
        row: list[Pred] = []
        for (top, right, bottom, left), encoding in zip(locations, encodings, strict=True):
            matches = face_recognition.compare_faces(known_encodings, encoding)
            name = None
            distances = face_recognition.face_distance(known_encodings, encoding)
            best = int(np.argmin(distances))
            if matches[best]:
                name = known_names[best]
            row.append((BBox(left, top, right, bottom), name, None))
        preds.append(row)
    elapsed = time.perf_counter() - start
    capture.release()
    return len(preds) / elapsed, preds


# -- main -------------------------------------------------------------------------------


def expression_rows(
    clips: dict[int, Path],
    pipeline: Pipeline,
    gallery: Any,
    fps_track: dict[int, float],
    repeats: int,
) -> None:
    options = WatchOptions(expressions=True)
    rows = [["res", "fps", "fps --expressions", "runs", "estimates", "ms / estimate", "events"]]
    for h, path in clips.items():
        runs, stats, n_expr = [], WatchStats(), 0
        for i in range(repeats):
            fps, _, _, st, n = run_watch(path, pipeline, gallery, options)
            runs.append(fps)
            if i == 0:
                stats, n_expr = st, n
        per = 1000 * stats.expression_seconds / max(stats.expression_estimates, 1)
        rows.append(
            [
                f"{h}p",
                f"{fps_track[h]:.1f}",
                f"{statistics.median(runs):.1f}",
                " ".join(f"{r:.0f}" for r in runs),
                str(stats.expression_estimates),
                f"{per:.1f}",
                str(n_expr),
            ]
        )
    print("\nwatch --expressions (every 3rd frame per track, smoothed), decoding included:")
    print(fmt_table(rows))


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("video", nargs="?", type=Path, help="your own clip (else --make-video)")
    ap.add_argument("--make-video", action="store_true", help="synthesise the clip")
    ap.add_argument("--faces", type=Path, default=FACES, help="dev photos folder")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--naive-frames", type=int, default=45)
    ap.add_argument("--peer-frames", type=int, default=10**9)
    ap.add_argument("--peer-all", action="store_true", help="run the peer at every resolution")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--keep", type=Path, help="keep the clips in this folder")
    ap.add_argument(
        "--expressions", action="store_true", help="also fps with watch --expressions on"
    )
    args = ap.parse_args(argv)
    if not args.make_video and args.video is None:
        ap.error("give a VIDEO or --make-video")

    print(f"start: {_load()}")
    pipeline = Pipeline.from_settings()
    pipeline.warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        clips = (
            make_videos(args.faces, work, pipeline)
            if args.make_video
            else transcode(args.video, work)
        )
        gallery = open_gallery(Path(tmp) / "bench.db", pipeline=pipeline)
        gallery.enroll(OBAMA, [args.faces / "obama.jpg", args.faces / "obama2.jpg"])
        gallery.enroll(BIDEN, [args.faces / "biden.jpg"])
        truth = TRUTH if args.make_video else {}

        rows = [["res", "fps tracking", "runs", "fps no tracking", "acc/track", "acc/face-frame"]]
        fps_track: dict[int, float] = {}
        acc: dict[str, dict[str, Any]] = {}
        for h, path in clips.items():
            runs = []
            preds: list[list[Pred]] = []
            final: dict[int, str | None] = {}
            for i in range(args.repeats):
                fps, p, f = run_tracking(path, pipeline, gallery)
                runs.append(fps)
                if i == 0:
                    preds, final = p, f
            fps_track[h] = statistics.median(runs)
            naive_fps, naive_preds = run_naive(path, pipeline, gallery, args.naive_frames)
            a = score(truth[h], preds, final) if h in truth else None
            if a is not None and h == 720:
                acc["faceindex"] = a
                acc["naive"] = score(truth[h][: len(naive_preds)], naive_preds, None)
            rows.append(
                [
                    f"{h}p",
                    f"{fps_track[h]:.1f}",
                    " ".join(f"{r:.0f}" for r in runs),
                    f"{naive_fps:.1f}",
                    "-" if a is None else f"{a['per_track']:.2f} ({a['tracks']} tracks)",
                    "-" if a is None else f"{a['per_frame']:.3f}",
                ]
            )
        print("\nfaceindex (yunet + fusion), frames per second, decoding included:")
        print(fmt_table(rows))
        if args.expressions:
            expression_rows(clips, pipeline, gallery, fps_track, args.repeats)
        lat = run_latency(clips[720], pipeline, gallery)
        print(
            f"\nlive-like 720p source pushed at {FPS:.0f} fps: latency median "
            f"{lat['median_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms; "
            f"{lat['processed'] * 100:.0f}% of frames processed (the rest dropped as stale)"
        )
        peer_fps: dict[int, float] = {}
        if not args.no_peer:
            peer_rows = [
                ["res", "peer fps", "faceindex fps", "ratio", "acc/track", "acc/face-frame"]
            ]
            for h in HEIGHTS if args.peer_all else (720,):
                fps, preds = run_peer(clips[h], args.faces, args.peer_frames)
                peer_fps[h] = fps
                a = score(truth[h][: len(preds)], preds, None) if h in truth else None
                if a is not None and h == 720:
                    acc["peer"] = a
                peer_rows.append(
                    [
                        f"{h}p",
                        f"{fps:.2f}",
                        f"{fps_track[h]:.1f}",
                        f"{fps_track[h] / fps:.1f}x",
                        "-" if a is None else f"{a['per_track']:.2f}",
                        "-" if a is None else f"{a['per_frame']:.3f}",
                    ]
                )
            print("\npeer: face_recognition per-frame loop (HOG + ResNet, tolerance 0.6):")
            print(fmt_table(peer_rows))
        gallery.close()

    print(f"\nend: {_load()}")
    checks = [("720p with tracking >= 25 fps", fps_track[720] >= 25.0, f"{fps_track[720]:.1f} fps")]
    if 720 in peer_fps:
        ratio = fps_track[720] / peer_fps[720]
        checks.append(("720p >= 5x the peer's fps", ratio >= 5.0, f"{ratio:.1f}x"))
    if "peer" in acc and "faceindex" in acc:
        ours, theirs = acc["faceindex"]["per_track"], acc["peer"]["per_track"]
        checks.append(
            ("identity accuracy per track >= peer's", ours >= theirs, f"{ours:.2f} vs {theirs:.2f}")
        )
    if "naive" in acc:
        print(
            f"(per-frame pipeline without tracking, first {args.naive_frames} frames at 720p: "
            f"accuracy per face-frame {acc['naive']['per_frame']:.3f})"
        )
    for name, ok, figure in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {figure}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
