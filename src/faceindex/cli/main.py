"""``faceindex``: the entry point. Builds the parser, dispatches, maps errors to exit codes.

The parser is assembled from the command modules (:data:`faceindex.cli.commands.MODULES`),
each of which registers its parsers with a ``handler``; :func:`main` calls that handler
and nothing else. Only argparse and the CLI's own small modules load up front, so
``--help`` and usage errors are instant; the library loads inside the handlers.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from faceindex import __version__
from faceindex.cli.commands import MODULES
from faceindex.cli.context import CliContext, ContextFactory, Handler
from faceindex.cli.exit_codes import INTERNAL, exit_code_for
from faceindex.cli.output import Output
from faceindex.errors import FaceIndexError, StorageError

log = logging.getLogger("faceindex.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faceindex",
        description="Self-hosted face recognition: detect faces, verify identities.",
        epilog="Exit codes: 0 ok/match, 1 no match, 2 usage, 3 invalid input, 4 no face, "
        "5 model unavailable, 6 not found, 7 config, 8 partial batch failure, 9 storage, "
        "10 conflict, 70 bug.",
    )
    parser.add_argument("--version", action="version", version=f"faceindex {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in MODULES:
        importlib.import_module(f"faceindex.cli.commands.{name}").register(subparsers)
    return parser


def main(
    argv: Sequence[str] | None = None, *, context_factory: ContextFactory | None = None
) -> int:
    """Run one command line; returns its exit code (see :mod:`faceindex.cli.exit_codes`).

    ``context_factory(args)`` makes the :class:`CliContext` the handler works with
    (default: one built from the environment and the flags).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler = args.handler
    out = Output(json=bool(getattr(args, "json", False)))
    try:
        with (context_factory or CliContext)(args) as ctx:
            out = ctx.out
            return handler(args, ctx)
    except FaceIndexError as exc:
        out.error(exc)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the file system refused (permissions, read-only, full disk)
        log.debug("storage error", exc_info=True)
        reason = exc.strerror or str(exc)
        where = f"{exc.filename}: " if exc.filename else ""
        error = StorageError(f"{where}{reason}")
        out.error(error)
        return exit_code_for(error)
    except Exception as exc:
        if _is_storage_failure(exc):  # e.g. a read-only gallery refusing a write
            log.debug("storage error", exc_info=True)
            error = StorageError(f"the gallery database refused the operation: {exc}")
            out.error(error)
            return exit_code_for(error)
        # a bug: say so plainly, keep the traceback for -v
        log.exception("internal error")
        out.note("faceindex: internal error (run with -v for details)")
        return INTERNAL


def _is_storage_failure(exc: BaseException) -> bool:
    """SQLite's own failures of the file (read-only, locked, disk full or I/O error,
    damaged file): not bugs. Looked up in ``sys.modules`` so that ``--help`` does not
    import sqlite3; an error of it can only exist once it is imported."""
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is None:
        return False
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
