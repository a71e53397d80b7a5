"""``faceindex check``: prove that erased people left no trace in the gallery file.

Runs :meth:`faceindex.gallery.Gallery.check` (integrity check, WAL truncated, no pending
erasure, no row left for a deleted person, every free page zero-filled). Exit codes: 0
when the gallery is clean; 1 (:data:`NOT_CLEAN`, like ``verify``'s "no match": the check
ran and its answer is no) when a trace or a pending erasure is found; the usual codes of
:mod:`faceindex.cli.exit_codes` otherwise (6: no such gallery, 9: unreadable file).
"""

from __future__ import annotations

import argparse

from faceindex.cli import output
from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK
from faceindex.cli.options import Subparsers, add_gallery_options, add_json_option

#: The gallery holds a trace of an erased person, a pending erasure, or is damaged.
NOT_CLEAN = 1


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "check",
        help="prove that erased people left no trace in the gallery",
        description="Check the gallery file: SQLite's integrity check, the WAL truncated "
        "(no erasure pending behind a reader), no row left for a person the audit log "
        "records as deleted, and every free page of the file zero-filled. Exit 0 when "
        "clean, 1 when not (the issues are listed).",
    )
    add_gallery_options(p)
    add_json_option(p)
    p.set_defaults(handler=check)


def check(args: argparse.Namespace, ctx: CliContext) -> int:
    report = ctx.gallery(must_exist=True).check()
    ctx.out.emit(report.as_dict(), lambda: output.check_text(report))
    return OK if report.clean else NOT_CLEAN
