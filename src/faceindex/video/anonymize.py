"""Hide faces in photos and videos (blur, pixelate or a solid box), optionally sparing
enrolled people who consented (``keep``).

Photos: every detected face is hidden, except faces identified as a kept person.

Videos take two passes over the file:

1. detect on *every* frame (privacy favours recall over speed) and track; when people are
   to be kept, recognise each track by k-of-n votes on its best frames
   (:class:`~faceindex.video.watch.Watcher` does both);
2. decode again and hide every box of every track that is not a kept person.

Tracking closes the gaps a detector leaves: a track's predicted box stays hidden for
``hold_s`` after its last detection (a face turning away, motion blur), and its first box is
also hidden for ``hold_s`` *before* its first detection (a face entering the frame is often
found a few frames late). Undecided or unknown tracks are hidden: when in doubt, hide.
A kept track is shown whole, so a wrong association between two crossing people could
show the other face for a few frames; keep is for consenting people, not a guarantee.

Audio is not copied (OpenCV writes video only).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceindex.errors import InvalidInputError
from faceindex.io.files import is_image_file
from faceindex.io.image import load_image
from faceindex.io.video import FileVideo, open_video
from faceindex.pipeline import Pipeline
from faceindex.tracking.identity import IdentityStatus
from faceindex.types import BBox, ImageArray
from faceindex.video.events import EventType
from faceindex.video.recognition import Identifier, NobodyIdentifier
from faceindex.video.watch import Watcher, WatchOptions

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


class HideMode(enum.StrEnum):
    BLUR = "blur"
    PIXELATE = "pixelate"
    BOX = "box"


@dataclass(frozen=True, slots=True)
class KeepRule:
    """Leave visible the faces identified as one of ``person_ids`` (consenting people)."""

    identifier: Identifier
    person_ids: frozenset[int]


@dataclass(frozen=True, slots=True)
class AnonymizeReport:
    input: str
    output: str
    kind: str
    mode: HideMode
    #: Faces hidden on each frame (one entry for a photo).
    per_frame: tuple[int, ...]
    tracks: int = 0
    #: Tracks (or photo faces) left visible: ``{"track_id", "person", "similarity"}``.
    kept: tuple[dict[str, Any], ...] = ()
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def faces_hidden(self) -> int:
        return int(sum(self.per_frame))

    def as_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "output": self.output,
            "kind": self.kind,
            "mode": str(self.mode),
            "frames": len(self.per_frame),
            "faces_hidden": self.faces_hidden,
            "frames_with_hidden_faces": sum(1 for n in self.per_frame if n),
            "max_per_frame": max(self.per_frame, default=0),
            "per_frame": list(self.per_frame),
            "tracks": self.tracks,
            "kept": list(self.kept),
            "seconds": round(self.seconds, 3),
            **self.extra,
        }


# -- hiding pixels ----------------------------------------------------------------------


def expand_box(box: BBox, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer pixel rectangle of ``box`` grown by ``margin`` of its size on each side."""
    mx, my = margin * box.width, margin * box.height
    x1 = max(0, int(np.floor(box.x1 - mx)))
    y1 = max(0, int(np.floor(box.y1 - my)))
    x2 = min(width, int(np.ceil(box.x2 + mx)))
    y2 = min(height, int(np.ceil(box.y2 + my)))
    return x1, y1, x2, y2


def hide_faces(image: ImageArray, boxes: Sequence[BBox], *, mode: HideMode, margin: float) -> int:
    """Hide each box (grown by ``margin``) in ``image``, in place; returns boxes hidden."""
    import cv2

    h, w = image.shape[:2]
    hidden = 0
    for box in boxes:
        x1, y1, x2, y2 = expand_box(box, margin, w, h)
        rw, rh = x2 - x1, y2 - y1
        if rw <= 0 or rh <= 0:
            continue
        region = image[y1:y2, x1:x2]
        if mode is HideMode.BOX:
            region[:] = 0
        elif mode is HideMode.PIXELATE:
            # about 8 blocks across the face: no landmarks or identity survive
            block = max(2, max(rw, rh) // 8)
            small = cv2.resize(
                region, (max(1, rw // block), max(1, rh // block)), interpolation=cv2.INTER_AREA
            )
            region[:] = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_NEAREST)
        else:
            # a blur as wide as a fifth of the face, computed on a shrunk copy (fast at any size)
            k = max(1, max(rw, rh) // 16)
            small = cv2.resize(
                region, (max(1, rw // k), max(1, rh // k)), interpolation=cv2.INTER_AREA
            )
            small = cv2.GaussianBlur(small, (0, 0), 2.5)
            region[:] = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_LINEAR)
        hidden += 1
    return hidden


# -- photos -----------------------------------------------------------------------------


def anonymize_image(
    pipeline: Pipeline,
    source: str | Path,
    output: str | Path,
    *,
    mode: HideMode = HideMode.BLUR,
    margin: float = 0.2,
    keep: KeepRule | None = None,
) -> AnonymizeReport:
    """Hide the faces of a photo and save it to ``output`` (format from its suffix)."""
    from PIL import Image

    start = time.perf_counter()
    out = Path(output)
    _check_output(out, IMAGE_SUFFIXES, "a photo")
    image = load_image(source, limits=pipeline.limits).copy()
    faces = pipeline.detect(image)
    kept: list[dict[str, Any]] = []
    to_hide = list(faces)
    if keep is not None and faces:
        embedded = pipeline.embed_faces(image, faces)
        vectors = np.stack([f.embedding.vector for f in embedded if f.embedding is not None])
        answers = keep.identifier.identify_vectors(vectors)
        to_hide = []
        for i, (face, answer) in enumerate(zip(faces, answers, strict=True)):
            who = answer.person
            if who is not None and who.person_id in keep.person_ids:
                kept.append({"face": i, "person": who.name, "similarity": answer.similarity})
            else:
                to_hide.append(face)
    n = hide_faces(image, [f.bbox for f in to_hide], mode=mode, margin=margin)
    options: dict[str, Any] = {"quality": 95} if out.suffix.lower() in (".jpg", ".jpeg") else {}
    try:
        Image.fromarray(image).save(out, **options)
    except OSError as exc:
        raise InvalidInputError(f"{out}: cannot write ({exc})", path=str(out)) from exc
    return AnonymizeReport(
        str(source),
        str(out),
        "photo",
        mode,
        (n,),
        tracks=len(faces),
        kept=tuple(kept),
        seconds=time.perf_counter() - start,
    )


# -- videos -----------------------------------------------------------------------------


def anonymize_video(
    pipeline: Pipeline,
    source: str | Path,
    output: str | Path,
    *,
    mode: HideMode = HideMode.BLUR,
    margin: float = 0.2,
    keep: KeepRule | None = None,
    hold_s: float = 0.3,
    detect_max_side: int = 960,
    progress: Callable[[int, int | None], None] | None = None,
) -> AnonymizeReport:
    """Hide faces in every frame of a video file; see the module docstring."""
    import cv2

    from faceindex.video.annotate import FOURCC_BY_SUFFIX, VideoOutput

    start = time.perf_counter()
    out = Path(output)
    _check_output(out, frozenset(FOURCC_BY_SUFFIX), "a video")
    video = open_video(source)
    if not isinstance(video, FileVideo):  # pragma: no cover - open_video of a path
        raise InvalidInputError("anonymize takes a video file")
    fps = video.info.fps or 30.0
    hold_frames = max(1, round(hold_s * fps))
    options = WatchOptions(
        detect_max_side=detect_max_side,
        detect_every=1,
        min_hits=1,
        absence_timeout_s=hold_frames / fps,
        recognize=keep is not None,
        decision_timeout_s=0.0,
    )
    identifier = keep.identifier if keep is not None else NobodyIdentifier()
    watcher = Watcher(pipeline, identifier, options=options, source=str(source))
    boxes: list[list[tuple[int, BBox]]] = []
    first_box: dict[int, tuple[int, BBox]] = {}
    decisions: dict[int, tuple[IdentityStatus, int | None, str | None, float | None]] = {}
    total = video.info.frame_count
    with video:
        for frame in video.frames():
            result = watcher.process(frame.image, frame.timestamp, frame.index)
            row = [(t.track_id, t.bbox) for t in result.tracks]
            boxes.append(row)
            for t in result.tracks:
                first_box.setdefault(t.track_id, (frame.index, t.bbox))
            _collect(decisions, result.events)
            if progress is not None:
                progress(frame.index + 1, total)
        _collect(decisions, watcher.finish())
    kept_ids = {
        tid
        for tid, (status, pid, _, _) in decisions.items()
        if keep is not None and status is IdentityStatus.IDENTIFIED and pid in keep.person_ids
    }
    for tid, (f0, box) in first_box.items():  # cover the frames before the first detection
        for i in range(max(0, f0 - hold_frames), f0):
            if all(t != tid for t, _ in boxes[i]):
                boxes[i].append((tid, box))
    per_frame: list[int] = []
    second = FileVideo(Path(source))
    info = second.info
    with second, VideoOutput(out, fps=fps, width=info.width, height=info.height) as writer:
        for frame in second.frames():
            image = frame.image.copy()
            row = boxes[frame.index] if frame.index < len(boxes) else []
            hidden = [b for tid, b in row if tid not in kept_ids]
            per_frame.append(hide_faces(image, hidden, mode=mode, margin=margin))
            writer.write(np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), dtype=np.uint8))
    kept = tuple(
        {"track_id": tid, "person": decisions[tid][2], "similarity": decisions[tid][3]}
        for tid in sorted(kept_ids)
    )
    return AnonymizeReport(
        str(source),
        str(out),
        "video",
        mode,
        tuple(per_frame),
        tracks=len(first_box),
        kept=kept,
        seconds=time.perf_counter() - start,
        extra={"fps": round(fps, 3), "hold_frames": hold_frames},
    )


def _collect(
    decisions: dict[int, tuple[IdentityStatus, int | None, str | None, float | None]],
    events: Sequence[Any],
) -> None:
    for e in events:
        if e.event is EventType.LEFT:
            decisions[e.track_id] = (e.decision, e.person_id, e.person, e.similarity)


def _check_output(path: Path, suffixes: frozenset[str], what: str) -> None:
    if path.suffix.lower() not in suffixes:
        raise InvalidInputError(
            f"{path}: output of {what} must end in one of {', '.join(sorted(suffixes))}",
            path=str(path),
        )
    if not path.parent.is_dir():
        raise InvalidInputError(f"{path.parent}: no such folder", path=str(path))


def is_photo(path: str | Path) -> bool:
    return is_image_file(path)
