"""The video commands: ``watch`` (who appears and leaves in a video, webcam or stream) and
``anonymize`` (hide faces in photos and videos).

OpenCV, the models and the gallery load when a command runs. The gallery is the
identifier of both (it answers ``identify_vectors``); ``watch`` without one reports every
face as unknown.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceindex.cli import output
from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK
from faceindex.cli.options import (
    PERSON_HELP,
    Subparsers,
    add_gallery_options,
    add_model_options,
    non_negative,
)

if TYPE_CHECKING:
    from faceindex.gallery import Gallery
    from faceindex.video.events import EventSink

log = logging.getLogger("faceindex.cli")


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "watch",
        help="recognise people in a video file, webcam or stream",
        description="Track faces in SOURCE (a video file, a webcam index such as 0, or an "
        "rtsp:// or http(s):// stream) and report when each person appears and leaves. "
        "Files are processed as fast as possible (--realtime paces them like a camera); "
        "live sources drop stale frames so that latency never builds up. The human lines "
        "are a timeline in time order, written a few seconds behind the video (an event is "
        "known only once a face is recognised or gone); --json lines come at once.",
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
        type=non_negative,
        default=1.0,
        metavar="S",
        help="seconds unseen before a person has left (default 1)",
    )
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--max-seconds", type=non_negative, metavar="S", help="stop after S seconds")
    p.add_argument(
        "--reconnect",
        type=int,
        default=5,
        metavar="N",
        help="attempts to (re)open a stream before giving up (default 5)",
    )
    p.add_argument(
        "--timeout",
        type=non_negative,
        default=5.0,
        metavar="S",
        help="open and read timeout for streams, seconds (default 5)",
    )
    p.add_argument(
        "--no-gallery", action="store_true", help="track faces without recognising anyone"
    )
    p.add_argument(
        "--expressions",
        action="store_true",
        help="also report when a face's expression changes (smoothed over frames; a model's "
        "reading of a face, not of a feeling: docs/attributes.md)",
    )
    p.add_argument(
        "--expression-every",
        type=int,
        default=3,
        metavar="K",
        help="estimate each face's expression at most every K frames (default 3)",
    )
    add_gallery_options(p)
    add_model_options(p, embedder=True)
    p.set_defaults(handler=watch)

    p = subparsers.add_parser(
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
        type=non_negative,
        default=0.2,
        help="grow each face box by this fraction of its size on every side (default 0.2)",
    )
    p.add_argument(
        "--keep",
        nargs="+",
        metavar="PERSON",
        help="enrolled people to leave visible (needs their gallery); each: " + PERSON_HELP,
    )
    p.add_argument(
        "--hold",
        type=non_negative,
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
    add_model_options(p, embedder=True)
    p.set_defaults(handler=anonymize)


def _gallery(ctx: CliContext, *, required: bool) -> Gallery | None:
    """The gallery named by --gallery (must exist), else the default one if it exists."""
    if (
        not ctx.gallery_url
        and not ctx.gallery_path.is_file()
        and not (ctx.gallery_given or required)
    ):
        log.warning("no gallery at %s: every face will be reported as unknown", ctx.gallery_path)
        return None
    return ctx.gallery(must_exist=True, pipeline=ctx.pipeline)


# -- watch ------------------------------------------------------------------------------


def watch(args: argparse.Namespace, ctx: CliContext) -> int:
    from faceindex.io.video import ReconnectPolicy, SourceKind, open_video
    from faceindex.video.annotate import Preview, VideoOutput, draw_tracks
    from faceindex.video.events import Clock, JsonLinesSink, UnknownFaceSaver, WebhookSink
    from faceindex.video.recognition import Identifier, NobodyIdentifier
    from faceindex.video.watch import Watcher, WatchOptions

    if args.detect_every is not None and args.detect_every < 1:
        return ctx.out.usage("--detect-every must be at least 1")
    if args.reconnect < 1 or args.timeout <= 0:
        return ctx.out.usage("--reconnect must be at least 1 and --timeout positive")
    if args.expression_every < 1:
        return ctx.out.usage("--expression-every must be at least 1")
    pipeline = ctx.pipeline
    gallery = None if args.no_gallery else _gallery(ctx, required=False)
    identifier: Identifier = gallery if gallery is not None else NobodyIdentifier()
    sinks: list[EventSink] = []
    human: output.HumanEventSink | None = None
    video_out: VideoOutput | None = None
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
        options = WatchOptions(
            detect_max_side=args.detect_size,
            detect_every=args.detect_every,
            absence_timeout_s=args.absence,
            expressions=args.expressions,
            expression_every=args.expression_every,
        )
        if ctx.out.json:
            sinks.append(JsonLinesSink(ctx.out.stdout))
        else:
            # the longest an event is reported after it happened: announced at the latest
            # after the decision timeout, gone after the absence timeout (plus a frame gap)
            lag = options.decision_timeout_s + options.absence_timeout_s + 1.0
            human = _HumanSink(ctx.out, wall=wall, delay_s=lag)
            sinks.append(human)
        if args.events:
            sinks.append(JsonLinesSink.to_file(args.events))
        if args.webhook:
            sinks.append(WebhookSink(args.webhook))
        if args.save_unknown:
            sinks.append(UnknownFaceSaver(args.save_unknown))
        if args.output:
            video_out = VideoOutput(
                args.output, fps=info.fps or 30.0, width=info.width, height=info.height
            )
        if args.preview:
            preview = Preview(f"faceindex watch {info.description}")
        watcher = Watcher(
            pipeline,
            identifier,
            options=options,
            source=info.description,
            clock=Clock.WALL if wall else Clock.VIDEO,
            source_fps=info.fps,
            live=info.live,
        )
        watcher.warm_up()
        log.info("watching %s (%dx%d, %s fps)", info.description, info.width, info.height, info.fps)
        try:
            for frame in source.frames():
                result = watcher.process(frame.image, frame.timestamp, frame.index)
                frames += 1
                _dispatch(sinks, result.events, identified)
                if human is not None:
                    human.advance(result.timestamp)
                if video_out is not None or preview is not None:
                    bgr = draw_tracks(frame.image, result.tracks)
                    if video_out is not None:
                        video_out.write(bgr)
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
        if video_out is not None:
            video_out.close()
        if preview is not None:
            preview.close()
        if source is not None:
            source.close()
        if gallery is not None:
            _audit_watch(gallery, args.source, frames, identified)
    if watcher is not None:
        dropped = source.dropped if source is not None else 0
        elapsed = time.monotonic() - start
        embedded = watcher.recognizer.embeddings
        ctx.out.note(output.watch_summary(frames, elapsed, watcher.stats, embedded, dropped))
        n = watcher.stats.expression_estimates
        if args.expressions and n:
            ms = 1000.0 * watcher.stats.expression_seconds / n
            ctx.out.note(f"{output.plural(n, 'expression estimate')}, {ms:.1f} ms each")
    return OK


class _HumanSink(output.HumanEventSink):
    """The timeline, with a line for expression events (``--expressions``)."""

    @staticmethod
    def moment(event: Any) -> float:
        if str(event.event) == "expression":
            return float(event.t)
        return output.HumanEventSink.moment(event)

    def event_text(self, at: float, event: Any) -> str:
        if str(event.event) != "expression":
            return super().event_text(at, event)
        who = event.person or "unknown"
        return (
            f"[{output.clock(at, self.wall)}] {'expression':<10} #{event.track_id} {who}: "
            f"{event.label} ({event.score:.2f})"
        )


def _dispatch(sinks: list[EventSink], events: Any, identified: set[int]) -> None:
    for event in events:
        if event.person_id is not None:
            identified.add(event.person_id)
        for sink in sinks:
            sink.emit(event)


def _audit_watch(gallery: Gallery, source: str, frames: int, identified: set[int]) -> None:
    from faceindex.io.video import redact

    try:
        gallery.record(
            "watch",
            decision=f"{len(identified)} identified",
            details={
                "source": redact(str(source)),
                "frames": frames,
                "identified": sorted(identified),
            },
        )
    except Exception:  # the audit must not hide the command's own outcome
        log.exception("could not record the watch session in the audit log")


# -- anonymize --------------------------------------------------------------------------


def anonymize(args: argparse.Namespace, ctx: CliContext) -> int:
    from faceindex.errors import InvalidInputError
    from faceindex.io.files import is_image_file
    from faceindex.video.anonymize import HideMode, KeepRule, anonymize_image, anonymize_video

    src, dst = Path(args.input), Path(args.output)
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        return ctx.out.usage("OUT must differ from IN")
    if not 0.0 <= args.margin <= 2.0:
        return ctx.out.usage("--margin must be between 0 and 2")
    photo = is_image_file(src)
    if photo != is_image_file(dst):
        raise InvalidInputError(f"{src} and {dst} must both be photos or both videos")
    pipeline = ctx.pipeline
    mode = HideMode(args.mode)
    keep = None
    if args.keep:
        gallery = _gallery(ctx, required=True)
        if gallery is not None:
            keep = KeepRule(gallery, frozenset(ctx.person(name).id for name in args.keep))
    if photo:
        report = anonymize_image(pipeline, src, dst, mode=mode, margin=args.margin, keep=keep)
    else:
        with ctx.out.progress("finding faces", unit="frames") as progress:
            report = anonymize_video(
                pipeline,
                src,
                dst,
                mode=mode,
                margin=args.margin,
                keep=keep,
                hold_s=args.hold,
                detect_max_side=args.detect_size,
                progress=progress.update,
            )
    ctx.out.emit(report.as_dict(), output.anonymize_text(dst, report, args.mode))
    return OK
