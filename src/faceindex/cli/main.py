"""``faceindex`` command: detect faces and verify identities from the shell.

The JSON output (``--json``, one object per line) is the machine contract and stays
stable; the human output may change. Exit codes: see :mod:`faceindex.cli.exit_codes`.
Only argparse is imported up front so that ``--help`` and error paths are instant; the
pipeline (and its models) load when a command first needs them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from faceindex import __version__
from faceindex.cli.exit_codes import INTERNAL, USAGE, exit_code_for
from faceindex.errors import FaceIndexError

log = logging.getLogger("faceindex.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faceindex",
        description="Self-hosted face recognition: detect faces, verify identities.",
        epilog="Exit codes: 0 ok/match, 1 no match, 2 usage, 3 invalid input, 4 no face, "
        "5 model unavailable, 6 not found, 7 config, 8 partial batch failure, 70 bug.",
    )
    parser.add_argument("--version", action="version", version=f"faceindex {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def model_options(p: argparse.ArgumentParser, *, embedder: bool) -> None:
        p.add_argument("--detector", help="detector: yunet (default), dlib-hog, dlib-cnn")
        p.add_argument("--min-face", type=int, metavar="PX", help="smallest face, in pixels")
        if embedder:
            p.add_argument("--embedder", help="embedder: fusion (default), sface, dlib-resnet")
            p.add_argument("--threshold", type=float, help="match threshold (cosine similarity)")
        p.add_argument("--json", action="store_true", help="JSON lines on stdout")

    p_detect = sub.add_parser(
        "detect",
        help="find every face in photos",
        description="Print every face found in each photo: box, score, landmarks, quality.",
    )
    p_detect.add_argument("images", nargs="+", metavar="IMG", help="photo files")
    model_options(p_detect, embedder=False)

    p_verify = sub.add_parser(
        "verify",
        help="are two photos the same person?",
        description="Compare the largest face of photo A with that of photo B, or every "
        "pair listed in a CSV file (--pairs). Exit code 0 = match, 1 = no match.",
    )
    p_verify.add_argument("a", nargs="?", metavar="A", help="first photo")
    p_verify.add_argument("b", nargs="?", metavar="B", help="second photo")
    p_verify.add_argument(
        "--pairs", metavar="PAIRS.csv", help="CSV with a header and columns a,b (photo paths)"
    )
    p_verify.add_argument(
        "--root", metavar="DIR", help="folder the CSV's paths are relative to (default: its own)"
    )
    model_options(p_verify, embedder=True)

    p_models = sub.add_parser(
        "models", help="list detectors and embedders", description="List available models."
    )
    p_models.add_argument("--json", action="store_true", help="JSON on stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        from faceindex.cli import commands

        handler = getattr(commands, f"cmd_{args.command}")
        code: int = handler(args)
        return code
    except FaceIndexError as exc:
        emit_error(args, exc)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception:  # a bug: say so plainly, keep the traceback for -v
        log.exception("internal error")
        print("faceindex: internal error (run with -v for details)", file=sys.stderr)
        return INTERNAL


def emit_error(args: argparse.Namespace, exc: FaceIndexError) -> None:
    if getattr(args, "json", False):
        print(json.dumps({"error": exc.to_dict()}, default=str))
    print(f"faceindex: error: {exc.message}", file=sys.stderr)


def usage_error(message: str) -> int:
    print(f"faceindex: error: {message}", file=sys.stderr)
    return USAGE


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
