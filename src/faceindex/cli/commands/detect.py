"""``faceindex detect IMG...``: every face of each photo."""

from __future__ import annotations

import argparse

from faceindex.cli import output
from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK, PARTIAL_FAILURE, exit_code_for
from faceindex.cli.options import Subparsers, add_model_options
from faceindex.errors import FaceIndexError


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "detect",
        help="find every face in photos",
        description="Print every face found in each photo: box, score, landmarks, quality.",
    )
    p.add_argument("images", nargs="+", metavar="IMG", help="photo files")
    add_model_options(p, embedder=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    pipeline = ctx.pipeline
    failures = 0
    last_code = OK
    for path in args.images:
        try:
            faces = pipeline.detect(path)
        except FaceIndexError as exc:
            failures += 1
            last_code = exit_code_for(exc)
            ctx.out.item_error(path, exc, path=path)
            continue
        ctx.out.emit(
            {"path": path, "faces": [output.face_json(f) for f in faces]},
            lambda: output.detect_text(path, faces),  # noqa: B023 (called at once)
        )
    if failures == 0:
        return OK
    return last_code if len(args.images) == 1 else PARTIAL_FAILURE
