"""``faceindex liveness IMG...``: is each face live, or a photo held to the camera?"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from faceindex.cli.batch import each_photo
from faceindex.cli.context import CliContext
from faceindex.cli.options import Subparsers, add_model_options
from faceindex.cli.output import box_text

if TYPE_CHECKING:
    from faceindex.liveness import LivenessScore
    from faceindex.types import Face

Result = tuple[tuple["Face", ...], tuple["LivenessScore", ...]]


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "liveness",
        help="tell live faces from photos of faces (presentation attacks)",
        description="Score every face of each photo: the calibrated probability that it is "
        "a live person in front of the camera rather than a printed photo or a screen "
        "(passive, one image; see docs/liveness.md for what it was measured on).",
    )
    p.add_argument("images", nargs="+", metavar="IMG", help="photo files")
    p.add_argument(
        "--liveness-threshold",
        type=float,
        metavar="P",
        help="score (0-1) at and above which a face is live (default: the model's)",
    )
    add_model_options(p, embedder=False)
    p.set_defaults(handler=run)


def liveness_json(result: Result) -> dict[str, Any]:
    faces, scores = result
    return {
        "faces": [
            {"bbox": f.bbox.as_list(), "live": s.live, "score": round(s.score, 6)}
            for f, s in zip(faces, scores, strict=True)
        ]
    }


def liveness_text(path: str, result: Result) -> str:
    faces, scores = result
    if not faces:
        return f"{path}: no face"
    lines = [f"{path}: {len(faces)} face{'' if len(faces) == 1 else 's'}"]
    # Numbered and boxed as detect shows them: from 0, largest first, whole pixels.
    for i, (f, s) in enumerate(zip(faces, scores, strict=True)):
        verdict = "live" if s.live else "NOT LIVE"
        lines.append(
            f"  face {i} box {box_text(f.bbox)}: {verdict} "
            f"(score {s.score:.3f}, threshold {s.threshold:.3f})"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from faceindex.liveness import DEFAULT_CHECKER, LIVENESS_CHECKERS

    threshold = args.liveness_threshold
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        return ctx.out.usage("--liveness-threshold must be between 0 and 1")
    checker = LIVENESS_CHECKERS.get(DEFAULT_CHECKER)(threshold=threshold)
    pipeline = ctx.pipeline

    def work(path: str) -> Result:
        image = pipeline.load(path)
        faces: Sequence[Face] = pipeline.detector.detect(image)
        return tuple(faces), checker.check(image, faces)

    return each_photo(ctx, args.images, work, liveness_json, liveness_text)
