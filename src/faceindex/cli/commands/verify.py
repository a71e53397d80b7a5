"""``faceindex verify A B`` and ``faceindex verify --pairs PAIRS.csv``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from faceindex.cli import output
from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import NO_MATCH, OK, PARTIAL_FAILURE, UNSURE
from faceindex.cli.options import Subparsers, add_model_options, add_require_live
from faceindex.cli.reject import add_reject_below

if TYPE_CHECKING:
    from faceindex.errors import FaceIndexError
    from faceindex.types import Face, Verification


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "verify",
        help="are two photos the same person?",
        description="Compare the subject of photo A (its most prominent face: large and "
        "near the centre) with that of photo B, or every pair listed in a CSV file "
        "(--pairs). When a photo has several faces, the output says which was compared; "
        "--face-a/--face-b pick another (0 is the largest, as detect lists them) and "
        "--search looks for A's person among every face of B. With --reject-below Q, a "
        "face whose quality score is under Q gives the decision 'unsure' (JSON: match "
        "null) instead of a match or a non-match. Exit code 0 = match, 1 = no match, "
        "12 = unsure.",
    )
    p.add_argument("a", nargs="?", metavar="A", help="first photo")
    p.add_argument("b", nargs="?", metavar="B", help="second photo")
    p.add_argument(
        "--pairs", metavar="PAIRS.csv", help="CSV with a header and columns a,b (photo paths)"
    )
    p.add_argument(
        "--root", metavar="DIR", help="folder the CSV's paths are relative to (default: its own)"
    )
    p.add_argument(
        "--face-a", type=face_index, metavar="N", help="compare face N of A (0 = largest)"
    )
    p.add_argument(
        "--face-b", type=face_index, metavar="N", help="compare face N of B (0 = largest)"
    )
    p.add_argument(
        "--search",
        action="store_true",
        help="is A's person anywhere in B? (compares with every face of B, answers the best)",
    )
    add_reject_below(p)
    add_require_live(p)
    add_model_options(p, embedder=True)
    p.set_defaults(handler=run)


def face_index(text: str) -> int:
    """A face number as detect lists them: a whole number from 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a face number (0, 1, ...)") from None
    if value < 0:
        raise argparse.ArgumentTypeError("face numbers start at 0 (the largest face)")
    return value


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.pairs:
        if args.a or args.b:
            return ctx.out.usage("give either two photos or --pairs, not both")
        if args.face_a is not None or args.face_b is not None or args.search:
            return ctx.out.usage("--face-a, --face-b and --search compare two photos, not --pairs")
        return _pairs(args, ctx)
    if not (args.a and args.b):
        return ctx.out.usage("verify needs two photos A B (or --pairs PAIRS.csv)")
    if args.search and args.face_b is not None:
        return ctx.out.usage("give --face-b or --search, not both")
    a, b = args.a, args.b
    if args.require_live:
        from faceindex.cli.live import live_image

        a, b = live_image(ctx.pipeline, a, a), live_image(ctx.pipeline, b, b)
    pair = ctx.pipeline.verify_faces(
        a,
        b,
        face_a=args.face_a,
        face_b=args.face_b,
        search=args.search,
        labels=(args.a, args.b),
        reject_below=args.reject_below,
    )
    ctx.out.emit(output.pair_verification_json(pair), output.pair_verification_text(pair))
    if pair.verification.unsure:
        return UNSURE
    return OK if pair.verification.match else NO_MATCH


def _pairs(args: argparse.Namespace, ctx: CliContext) -> int:
    """Each pair's line, in the CSV's order; each distinct photo is embedded once.

    The distinct photos (by resolved path, so ``p/x.jpg`` and ``p/./x.jpg`` are one) are
    read in the order the pairs first name them, their subjects embedded in batches
    (:meth:`~faceindex.pipeline.Pipeline.iter_subjects`), and each pair's line is written
    as soon as both of its photos are in: N pairs over M photos cost M embeddings, run a
    batch at a time. A photo's error is kept and given for every pair that names it.
    """
    from pathlib import Path

    from faceindex.errors import FaceIndexError, InvalidInputError
    from faceindex.io.pairs import read_pairs
    from faceindex.pipeline import with_quality_floor

    pairs = read_pairs(args.pairs, root=args.root)
    pipeline = ctx.pipeline

    def resolved(name: str) -> Path | FaceIndexError:
        try:
            return pairs.resolve(name)
        except FaceIndexError as exc:  # a path refused by --root: that pair's error
            return exc

    where = {n: resolved(n) for p in pairs.pairs for n in (p.a, p.b) if n}
    order = list(dict.fromkeys(w for w in where.values() if isinstance(w, Path)))
    subjects = pipeline.iter_subjects(order)
    cache: dict[Path, Face | FaceIndexError] = {}

    def face_of(name: str, line: int) -> Face:
        if not name:
            raise InvalidInputError(f"line {line}: empty path", line=line)
        path = where[name]
        if isinstance(path, FaceIndexError):
            raise path
        while path not in cache:  # photos come in first-named order: read up to this one
            found, key = next(subjects), order[len(cache)]
            if isinstance(found, FaceIndexError) or found.embedding is None:
                cache[key] = (
                    found
                    if isinstance(found, FaceIndexError)
                    else InvalidInputError(f"{key}: face could not be embedded")
                )
            else:
                cache[key] = found
        value = cache[path]
        if isinstance(value, FaceIndexError):
            raise value
        return value

    failures = matches = unsure = 0
    with ctx.out.progress("verifying", total=len(pairs.pairs), unit="pairs") as progress:
        for pair in pairs.pairs:
            result: Verification | FaceIndexError
            try:
                fa, fb = face_of(pair.a, pair.line), face_of(pair.b, pair.line)
                assert fa.embedding is not None and fb.embedding is not None  # checked above
                result = pipeline.compare(fa.embedding, fb.embedding)
                if args.reject_below is not None:
                    result = with_quality_floor(result, (fa, fb), args.reject_below)
                matches += result.match
                unsure += result.unsure
            except FaceIndexError as exc:
                failures += 1
                result = exc
            record = output.pair_json(
                pair.a, pair.b, result, decision=args.reject_below is not None
            )
            ctx.out.emit(record, output.pair_text(record))
            progress.advance()
    n = len(pairs.pairs)
    ctx.out.note(
        f"{output.plural(n, 'pair')}: {matches} match, {n - matches - unsure - failures} "
        f"no match, {f'{unsure} unsure, ' if args.reject_below is not None else ''}"
        f"{failures} failed (threshold {pipeline.threshold:.3f}, model {pipeline.model_id})"
    )
    return OK if failures == 0 else PARTIAL_FAILURE
