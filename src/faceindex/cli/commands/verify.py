"""``faceindex verify A B`` and ``faceindex verify --pairs PAIRS.csv``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from faceindex.cli import output
from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import NO_MATCH, OK, PARTIAL_FAILURE
from faceindex.cli.options import Subparsers, add_model_options

if TYPE_CHECKING:
    from pathlib import Path

    from faceindex.errors import FaceIndexError
    from faceindex.types import Embedding, Verification


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "verify",
        help="are two photos the same person?",
        description="Compare the largest face of photo A with that of photo B, or every "
        "pair listed in a CSV file (--pairs). Exit code 0 = match, 1 = no match.",
    )
    p.add_argument("a", nargs="?", metavar="A", help="first photo")
    p.add_argument("b", nargs="?", metavar="B", help="second photo")
    p.add_argument(
        "--pairs", metavar="PAIRS.csv", help="CSV with a header and columns a,b (photo paths)"
    )
    p.add_argument(
        "--root", metavar="DIR", help="folder the CSV's paths are relative to (default: its own)"
    )
    add_model_options(p, embedder=True)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.pairs:
        if args.a or args.b:
            return ctx.out.usage("give either two photos or --pairs, not both")
        return _pairs(args, ctx)
    if not (args.a and args.b):
        return ctx.out.usage("verify needs two photos A B (or --pairs PAIRS.csv)")
    result = ctx.pipeline.verify(args.a, args.b)
    ctx.out.emit(output.verification_json(result), output.verification_text(result))
    return OK if result.match else NO_MATCH


def _pairs(args: argparse.Namespace, ctx: CliContext) -> int:
    """Each pair's line, in the CSV's order; each distinct photo is embedded once.

    A photo is decoded, detected and embedded the first time a pair names it, and its
    embedding, or its error, is kept for every later pair (keyed by the photo's path, so
    ``p/x.jpg`` and ``p/./x.jpg`` are one photo): N pairs over M photos cost M
    embeddings, and each line is written as soon as its pair is compared.
    """
    from faceindex.errors import FaceIndexError, InvalidInputError
    from faceindex.io.pairs import read_pairs

    pairs = read_pairs(args.pairs, root=args.root)
    pipeline = ctx.pipeline
    cache: dict[Path, Embedding | FaceIndexError] = {}

    def embedding_of(name: str, line: int) -> Embedding:
        if not name:
            raise InvalidInputError(f"line {line}: empty path", line=line)
        path = pairs.resolve(name)
        if path not in cache:
            try:
                face = pipeline.largest_face(path)
                if face.embedding is None:
                    raise InvalidInputError(f"{name}: face could not be embedded")
                cache[path] = face.embedding
            except FaceIndexError as exc:
                cache[path] = exc
        value = cache[path]
        if isinstance(value, FaceIndexError):
            raise value
        return value

    failures = matches = 0
    with ctx.out.progress("verifying", total=len(pairs.pairs), unit="pairs") as progress:
        for pair in pairs.pairs:
            result: Verification | FaceIndexError
            try:
                result = pipeline.compare(
                    embedding_of(pair.a, pair.line), embedding_of(pair.b, pair.line)
                )
                matches += result.match
            except FaceIndexError as exc:
                failures += 1
                result = exc
            record = output.pair_json(pair.a, pair.b, result)
            ctx.out.emit(record, output.pair_text(record))
            progress.advance()
    n = len(pairs.pairs)
    ctx.out.note(
        f"{output.plural(n, 'pair')}: {matches} match, {n - matches - failures} no match, "
        f"{failures} failed (threshold {pipeline.threshold:.3f}, model {pipeline.model_id})"
    )
    return OK if failures == 0 else PARTIAL_FAILURE
