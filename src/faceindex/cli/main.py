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
            p.add_argument(
                "--flip",
                action="store_true",
                help="also embed the mirrored face and average (slower, slightly more accurate)",
            )
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

    _gallery_parsers(sub, model_options)
    from faceindex.cli.api_commands import add_api_parsers

    add_api_parsers(sub, add_gallery_options)
    from faceindex.cli.video_commands import add_video_parsers

    add_video_parsers(sub, add_gallery_options, model_options)

    p_models = sub.add_parser(
        "models", help="list detectors and embedders", description="List available models."
    )
    p_models.add_argument("--json", action="store_true", help="JSON on stdout")
    return parser


def add_gallery_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--gallery",
        metavar="PATH",
        help="gallery file (default: $FACEINDEX_GALLERY, else gallery.db in the user data folder)",
    )
    p.add_argument(
        "--key-file",
        metavar="FILE",
        help="template encryption key (default: $FACEINDEX_KEY if set)",
    )


def _gallery_parsers(sub: Any, model_options: Any) -> None:
    p = sub.add_parser(
        "enroll",
        help="add photos of a person to the gallery",
        description="Enrol photos of NAME (created if new), or a folder tree with one "
        "subfolder per person (--folders). Each photo passes a quality gate; rejections "
        "are listed with their reasons. Re-running skips photos already enrolled.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="the person's name")
    p.add_argument("images", nargs="*", metavar="IMG", help="photos of that person")
    p.add_argument("--folders", metavar="DIR", help="DIR/<person>/<photos>: bulk enrolment")
    p.add_argument("--keep-photos", action="store_true", help="store the photos too")
    add_gallery_options(p)
    model_options(p, embedder=True)

    p = sub.add_parser(
        "identify",
        help="who is in these photos?",
        description="Identify every face of each photo against the gallery; faces that "
        "match nobody well enough are reported as unknown (person null).",
    )
    p.add_argument("images", nargs="+", metavar="IMG", help="photos")
    add_gallery_options(p)
    model_options(p, embedder=True)

    p = sub.add_parser("people", help="list, show, rename, remove people")
    acts = p.add_subparsers(dest="people_action", metavar="ACTION", required=True)
    a = acts.add_parser("list", help="list people")
    a.add_argument("--search", help="only names containing this text")
    a.add_argument("--offset", type=int, default=0)
    a.add_argument("--limit", type=int, default=100)
    a = acts.add_parser("show", help="one person and their templates")
    a.add_argument("person", metavar="PERSON", help="name, or #id")
    a = acts.add_parser("rename", help="rename a person")
    a.add_argument("person", metavar="PERSON", help="name, or #id")
    a.add_argument("new_name", metavar="NEW_NAME")
    a = acts.add_parser("remove", help="erase a person: templates, photos, index entries")
    a.add_argument("person", metavar="PERSON", help="name, or #id")
    a.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    for a in acts.choices.values():
        add_gallery_options(a)
        a.add_argument("--json", action="store_true", help="JSON on stdout")

    p = sub.add_parser("index", help="manage the search index")
    acts = p.add_subparsers(dest="index_action", metavar="ACTION", required=True)
    a = acts.add_parser("rebuild", help="rebuild the index from the gallery")
    a.add_argument(
        "--backend",
        default="auto",
        help="auto (default: exact below 200k templates, else pq-rerank), exact, pq-rerank, hnsw",
    )
    add_gallery_options(a)
    a.add_argument("--json", action="store_true", help="JSON on stdout")

    p = sub.add_parser(
        "reembed",
        help="move the gallery to another embedding model",
        description="Re-embed every template with the model chosen by --embedder/--detector. "
        "Needs the photos kept at enrolment (--keep-photos); all or nothing.",
    )
    add_gallery_options(p)
    model_options(p, embedder=True)

    p = sub.add_parser(
        "eval",
        help="measure accuracy on your own photos",
        description="Evaluate verification on a pairs CSV or open-set identification on a "
        "folder per person; writes PNG plots, report.html and report.json to --out.",
    )
    acts = p.add_subparsers(dest="eval_action", metavar="PROTOCOL", required=True)
    pa = acts.add_parser("pairs", help="verification on PAIRS.csv (columns a,b,same)")
    pa.add_argument("pairs", metavar="PAIRS.csv")
    pa.add_argument("--root", metavar="DIR", help="folder the paths are relative to")
    pa.add_argument("--target-fmr", type=float, default=1e-3, help="for the recommended threshold")
    b = acts.add_parser("gallery", help="open-set identification on DIR/<person>/<photos>")
    b.add_argument("folder", metavar="DIR")
    b.add_argument("--enrol", type=int, default=5, help="photos enrolled per person")
    b.add_argument(
        "--unknown-fraction", type=float, default=0.3, help="share of people kept out as unknown"
    )
    b.add_argument("--seed", type=int, default=0, help="seed of the enrol/probe split")
    b.add_argument("--target-fpir", type=float, default=1e-2)
    for a in (pa, b):
        a.add_argument(
            "--groups", metavar="GROUPS.json", help="person -> group, for per-group rates"
        )
        a.add_argument("--out", metavar="DIR", default="faceindex-report", help="report folder")
        model_options(a, embedder=True)

    p = sub.add_parser("audit", help="query the audit log")
    p.add_argument("--action", help="enroll, identify, delete, rename, keys_rotate, ...")
    p.add_argument("--person", help="name or #id")
    p.add_argument("--since", help="ISO time, inclusive (UTC)")
    p.add_argument("--until", help="ISO time, exclusive (UTC)")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true", help="JSON lines on stdout")
    add_gallery_options(p)

    p = sub.add_parser("keys", help="API keys and template encryption keys")
    acts = p.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    a = acts.add_parser("generate", help="write a new random key to a file")
    a.add_argument("--out", required=True, metavar="FILE")
    a = acts.add_parser("status", help="which key ids the gallery uses")
    add_gallery_options(a)
    a.add_argument("--json", action="store_true")
    a = acts.add_parser("rotate", help="re-encrypt every template with a new key")
    a.add_argument("--new-key-file", metavar="FILE", help="the new key")
    a.add_argument("--decrypt", action="store_true", help="store templates unencrypted")
    add_gallery_options(a)


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
        from faceindex.cli import commands, gallery_commands

        name = f"cmd_{args.command}"
        handler = (
            getattr(args, "handler", None)
            or getattr(commands, name, None)
            or getattr(gallery_commands, name)
        )
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
