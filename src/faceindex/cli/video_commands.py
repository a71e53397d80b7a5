"""Video subcommands: ``watch`` (recognise people in a video, webcam or stream) and
``anonymize`` (hide faces in photos and videos).

Only argparse is needed to build the parsers; the pipeline, OpenCV and the models load when
a command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceindex.cli.exit_codes import OK
from faceindex.cli.main import dumps, usage_error

if TYPE_CHECKING:
    from faceindex.gallery.service import Gallery
    from faceindex.pipeline import Pipeline
    from faceindex.video.events import EventSink, TrackEvent

log = logging.getLogger("faceindex.cli")


def add_video_parsers(
    sub: Any,
    add_gallery_options: Callable[[argparse.ArgumentParser], None],
    model_options: Callable[..., None],
) -> None:
    """Add ``watch`` and ``anonymize`` to the ``faceindex`` subcommands."""
    p = sub.add_parser(
        "watch",
        help="recognise people in a video file, webcam or stream",
        description="Track faces in SOURCE (a video file, a webcam index such as 0, or an "
        "rtsp:// or http(s):// stream) and report when each person appears and leaves. "
        "Files are processed as fast as possible (--realtime paces them like a camera); "
        "live sources drop stale frames so that latency never builds up.",
    )
    p.add_argument("source", metavar="SOURCE", help="video file, device index, or stream URL")
    p.add_argument("--events", metavar="FILE", help="also append events as JSON lines to FILE")
    p.add_argument("--webhook", metavar="URL", help="POST each event as JSON to URL")
    p.add_argument(
        "--save-unknown", metavar="DIR", help="save the best crop of each unknown face to DIR"
    )
    p.add_argument("--output", metavar="OUT.mp4", help="write an annotated video (.mp4 or .avi)")
    p.add_argument("--preview", action="store_true", help="show a live window (needs a display)")
    p.add_argument(
        "--realtime", action="store_true", help="pace a file at its frame rate, like a live source"
    )
    p.add_argument(
        "--detect-every",
        type=int,
        metavar="N",
        help="run the detector every N frames (default: adaptive, to keep up)",
    )
    p.add_argument(
        "--detect-size",
        type=int,
        default=640,
        metavar="PX",
        help="longest side frames are shrunk to for detection (default 640)",
    )
    p.add_argument(
        "--absence",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds unseen before a person has left (default 1)",
    )
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--max-seconds", type=float, metavar="S", help="stop after S seconds")
    p.add_argument(
        "--reconnect",
        type=int,
        default=5,
        metavar="N",
        help="attempts to (re)open a stream before giving up (default 5)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="open and read timeout for streams, seconds (default 5)",
    )
    p.add_argument(
        "--no-gallery", action="store_true", help="track faces without recognising anyone"
    )
    add_gallery_options(p)
    model_options(p, embedder=True)
    p.set_defaults(handler=cmd_watch)

    p = sub.add_parser(
        "anonymize",
        help="hide faces in a photo or video",
        description="Blur, pixelate or black out every face of a photo or video. --keep "
        "leaves enrolled, consenting people visible and hides everyone else. In videos, "
        "tracking also hides a face on the frames where the detector misses it.",
    )
    p.add_argument("input", metavar="IN", help="photo or video file")
    p.add_argument("output", metavar="OUT", help="output file (same kind as IN)")
    p.add_argument(
        "--mode", choices=["blur", "pixelate", "box"], default="blur", help="how to hide faces"
    )
    p.add_argument(
        "--margin",
        type=float,
        default=0.2,
        help="grow each face box by this fraction of its size on every side (default 0.2)",
    )
    p.add_argument(
        "--keep",
        nargs="+",
        metavar="NAME",
        help="enrolled people to leave visible (needs their gallery)",
    )
    p.add_argument(
        "--hold",
        type=float,
        default=0.3,
        metavar="S",
        help="video: keep hiding a face this long around its detections (default 0.3)",
    )
    p.add_argument(
        "--detect-size",
        type=int,
        default=960,
        metavar="PX",
        help="video: longest side frames are shrunk to for detection (default 960)",
    )
    add_gallery_options(p)
    model_options(p, embedder=True)
    p.set_defaults(handler=cmd_anonymize)


# -- shared -----------------------------------------------------------------------------


def _gallery(args: argparse.Namespace, pipeline: Pipeline, *, required: bool) -> Gallery | None:
    """The gallery named by --gallery (must exist), else the default one if it exists."""
    from faceindex.cli.gallery_commands import load_key
    from faceindex.errors import NotFoundError
    from faceindex.gallery import default_gallery_path
    from faceindex.gallery.service import Gallery

    path = Path(args.gallery).expanduser() if args.gallery else default_gallery_path()
    if not path.is_file():
        if args.gallery or required:
            raise NotFoundError(f"{path}: no such gallery", path=str(path))
        log.warning("no gallery at %s: every face will be reported as unknown", path)
        return None
    return Gallery.open(path, pipeline=pipeline, key=load_key(args))


def _pipeline(args: argparse.Namespace) -> Pipeline:
    from faceindex.cli.commands import settings_from
    from faceindex.pipeline import Pipeline

    return Pipeline.from_settings(settings_from(args))


def _clock(seconds: float, wall: bool) -> str:
    if wall:
        return time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{int(seconds % 1 * 10)}"
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes):02d}:{rest:06.3f}"


class _HumanSink:
    def __init__(self, wall: bool) -> None:
        self.wall = wall

    def emit(self, event: TrackEvent) -> None:
        who = event.person or ("unknown" if event.decision == "unknown" else "not yet recognised")
        sim = f" (similarity {event.similarity:.3f})" if event.similarity is not None else ""
        at = event.last_seen if event.event == "left" else event.first_seen
        print(f"[{_clock(at, self.wall)}] {event.event:<10} #{event.track_id} {who}{sim}")
        sys.stdout.flush()

    def close(self) -> None:
        return None


# -- watch ------------------------------------------------------------------------------


def cmd_watch(args: argparse.Namespace) -> int:
    from faceindex.io.video import ReconnectPolicy, SourceKind, open_video
    from faceindex.video.annotate import Preview, VideoOutput, draw_tracks
    from faceindex.video.events import (
        Clock,
        JsonLinesSink,
        UnknownFaceSaver,
        WebhookSink,
    )
    from faceindex.video.recognition import GalleryIdentifier, Identifier, NobodyIdentifier
    from faceindex.video.watch import Watcher, WatchOptions

    if args.detect_every is not None and args.detect_every < 1:
        return usage_error("--detect-every must be at least 1")
    if args.reconnect < 1 or args.timeout <= 0:
        return usage_error("--reconnect must be at least 1 and --timeout positive")
    pipeline = _pipeline(args)
    gallery = None if args.no_gallery else _gallery(args, pipeline, required=False)
    identifier: Identifier = GalleryIdentifier(gallery) if gallery else NobodyIdentifier()
    sinks: list[EventSink] = []
    output: VideoOutput | None = None
    preview: Preview | None = None
    watcher: Watcher | None = None
    source = None
    frames = 0
    identified: set[int] = set()
    start = time.monotonic()
    try:
        pipeline.warm_up()
        policy = ReconnectPolicy(
            max_attempts=args.reconnect, open_timeout_s=args.timeout, read_timeout_s=args.timeout
        )
        source = open_video(args.source, realtime=args.realtime, policy=policy)
        start = time.monotonic()
        info = source.info
        wall = info.kind is not SourceKind.FILE
        sinks.append(JsonLinesSink(sys.stdout) if args.json else _HumanSink(wall))
        if args.events:
            sinks.append(JsonLinesSink.to_file(args.events))
        if args.webhook:
            sinks.append(WebhookSink(args.webhook))
        if args.save_unknown:
            sinks.append(UnknownFaceSaver(args.save_unknown))
        if args.output:
            output = VideoOutput(
                args.output, fps=info.fps or 30.0, width=info.width, height=info.height
            )
        if args.preview:
            preview = Preview(f"faceindex watch {info.description}")
        watcher = Watcher(
            pipeline,
            identifier,
            options=WatchOptions(
                detect_max_side=args.detect_size,
                detect_every=args.detect_every,
                absence_timeout_s=args.absence,
            ),
            source=info.description,
            clock=Clock.WALL if wall else Clock.VIDEO,
            source_fps=info.fps,
            live=info.live,
        )
        log.info("watching %s (%dx%d, %s fps)", info.description, info.width, info.height, info.fps)
        try:
            for frame in source.frames():
                result = watcher.process(frame.image, frame.timestamp, frame.index)
                frames += 1
                _dispatch(sinks, result.events, identified)
                if output is not None or preview is not None:
                    bgr = draw_tracks(frame.image, result.tracks)
                    if output is not None:
                        output.write(bgr)
                    if preview is not None and not preview.show(bgr):
                        break
                if args.max_frames is not None and frames >= args.max_frames:
                    break
                if args.max_seconds is not None and time.monotonic() - start >= args.max_seconds:
                    break
        except KeyboardInterrupt:
            log.info("interrupted: closing tracks")
        _dispatch(sinks, watcher.finish(), identified)
    finally:
        if watcher is not None:
            watcher.close()
        for sink in sinks:
            with contextlib.suppress(Exception):
                sink.close()
        if output is not None:
            output.close()
        if preview is not None:
            preview.close()
        if source is not None:
            source.close()
        if gallery is not None:
            _audit_watch(gallery, args.source, frames, identified)
            gallery.close()
    _summary(watcher, source, frames, time.monotonic() - start)
    return OK


def _dispatch(sinks: list[EventSink], events: Any, identified: set[int]) -> None:
    for event in events:
        if event.person_id is not None:
            identified.add(event.person_id)
        for sink in sinks:
            sink.emit(event)


def _audit_watch(gallery: Gallery, source: str, frames: int, identified: set[int]) -> None:
    from faceindex.io.video import redact

    try:
        with gallery.store.transaction() as conn:
            gallery.store.audit(
                conn,
                "watch",
                actor=gallery.actor,
                decision=f"{len(identified)} identified",
                details={
                    "source": redact(str(source)),
                    "frames": frames,
                    "identified": sorted(identified),
                },
            )
    except Exception:  # the audit must not hide the command's own outcome
        log.exception("could not record the watch session in the audit log")


def _summary(watcher: Any, source: Any, frames: int, elapsed: float) -> None:
    if watcher is None:
        return
    s = watcher.stats
    fps = frames / elapsed if elapsed > 0 else 0.0
    dropped = source.dropped if source is not None else 0
    every = s.frames / s.detections if s.detections else 0.0
    print(
        f"{frames} frames in {elapsed:.1f} s ({fps:.1f} fps): detection every {every:.1f} "
        f"frames, {s.tracks} tracks, {watcher.recognizer.embeddings} faces embedded"
        + (f", {dropped} stale frames dropped" if dropped else ""),
        file=sys.stderr,
    )


# -- anonymize --------------------------------------------------------------------------


def cmd_anonymize(args: argparse.Namespace) -> int:
    from faceindex.errors import InvalidInputError
    from faceindex.privacy.anonymize import (
        HideMode,
        KeepRule,
        anonymize_image,
        anonymize_video,
        is_photo,
    )
    from faceindex.video.recognition import GalleryIdentifier

    src, dst = Path(args.input), Path(args.output)
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        return usage_error("OUT must differ from IN")
    if not 0.0 <= args.margin <= 2.0:
        return usage_error("--margin must be between 0 and 2")
    if is_photo(src) != is_photo(dst):
        raise InvalidInputError(f"{src} and {dst} must both be photos or both videos")
    pipeline = _pipeline(args)
    mode = HideMode(args.mode)
    gallery = _gallery(args, pipeline, required=True) if args.keep else None
    try:
        keep = None
        if gallery is not None:
            ids = frozenset(gallery.person(name).id for name in args.keep)
            keep = KeepRule(GalleryIdentifier(gallery), ids)
        if is_photo(src):
            report = anonymize_image(pipeline, src, dst, mode=mode, margin=args.margin, keep=keep)
        else:
            report = _anonymize_video_with_progress(
                anonymize_video, pipeline, src, dst, mode, args, keep
            )
    finally:
        if gallery is not None:
            gallery.close()
    if args.json:
        print(dumps(report.as_dict()))
        return OK
    d = report.as_dict()
    kept = ", ".join(f"{k['person']}" for k in report.kept)
    print(
        f"{dst}: hid {d['faces_hidden']} face{'s' if d['faces_hidden'] != 1 else ''} in "
        f"{d['frames_with_hidden_faces']} of {d['frames']} frame"
        f"{'s' if d['frames'] != 1 else ''} (at most {d['max_per_frame']} per frame, "
        f"{args.mode})" + (f"; left visible: {kept}" if kept else "")
    )
    return OK


def _anonymize_video_with_progress(
    fn: Any,
    pipeline: Pipeline,
    src: Path,
    dst: Path,
    mode: Any,
    args: argparse.Namespace,
    keep: Any,
) -> Any:
    from rich.progress import Progress

    with Progress(disable=not sys.stderr.isatty(), transient=True) as progress:
        task = progress.add_task("finding faces", total=None)

        def advance(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        return fn(
            pipeline,
            src,
            dst,
            mode=mode,
            margin=args.margin,
            keep=keep,
            hold_s=args.hold,
            detect_max_side=args.detect_size,
            progress=advance,
        )
