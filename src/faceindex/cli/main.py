"""``faceindex``: the entry point. Builds the parser, dispatches, maps errors to exit codes.

The parser is assembled from the command modules (:data:`faceindex.cli.commands.MODULES`),
each of which registers its parsers with a ``handler``; :func:`main` calls that handler
and nothing else. Only argparse and the CLI's own small modules load up front, so
``--help`` and usage errors are instant; the library loads inside the handlers.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from faceindex import __version__
from faceindex.cli.commands import MODULES
from faceindex.cli.context import CliContext, ContextFactory, Handler
from faceindex.cli.exit_codes import INTERNAL, MEANINGS, exit_code_for
from faceindex.cli.output import Output
from faceindex.errors import FaceIndexError, StorageError

log = logging.getLogger("faceindex.cli")


VERBOSE_HELP = "log what happens, and progress even without a terminal, to stderr"


class Parser(argparse.ArgumentParser):
    """argparse's parser, with "did you mean" for a mistyped command or choice (Python
    3.14's ``suggest_on_error``, which 3.11 lacks); sub-parsers are of this class too."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is None or value in choices:
            return
        names = [str(c) for c in choices]
        close = difflib.get_close_matches(str(value), names, n=3, cutoff=0.6)
        hint = (
            "did you mean " + " or ".join(repr(c) for c in close) + "?"
            if close
            else "choose from " + ", ".join(repr(c) for c in names)
        )
        raise argparse.ArgumentError(action, f"invalid choice: {value!r} ({hint})")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="faceindex",
        description="Self-hosted face recognition: detect faces, verify identities.",
        epilog="exit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in MEANINGS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"faceindex {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in MODULES:
        importlib.import_module(f"faceindex.cli.commands.{name}").register(subparsers)
    for sub in _subcommand_parsers(parser):
        # -v after the command too; SUPPRESS keeps a -v given before it from being reset
        sub.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
        )
    return parser


def _subcommand_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser below ``parser`` (each once, though aliases name some twice)."""
    found: dict[int, argparse.ArgumentParser] = {}
    todo = [parser]
    while todo:
        for action in todo.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    if id(child) not in found:
                        found[id(child)] = child
                        todo.append(child)
    return list(found.values())


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
    out = Output(json=bool(getattr(args, "json", False)), verbose=bool(args.verbose))
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
