"""``faceindex detect IMG...``: every face of each photo."""

from __future__ import annotations

import argparse

from faceindex.cli import output
from faceindex.cli.batch import each_photo
from faceindex.cli.context import CliContext
from faceindex.cli.options import Subparsers, add_model_options


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
    return each_photo(
        ctx,
        args.images,
        ctx.pipeline.detect,
        lambda faces: {"faces": [output.face_json(f) for f in faces]},
        output.detect_text,
        description="detecting",
    )
