"""``faceindex audit``: who enrolled, searched, deleted what, when."""

from __future__ import annotations

import argparse

from faceindex.cli import output
from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK
from faceindex.cli.options import (
    PERSON_HELP,
    Subparsers,
    add_gallery_options,
    add_json_option,
    count,
)


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("audit", help="query the audit log")
    p.add_argument("--action", help="enroll, identify, delete, rename, keys_rotate, ...")
    p.add_argument("--person", help=PERSON_HELP)
    p.add_argument(
        "--since",
        type=iso_time,
        metavar="TIME",
        help="ISO 8601 date or time, inclusive (without a zone: UTC)",
    )
    p.add_argument(
        "--until",
        type=iso_time,
        metavar="TIME",
        help="ISO 8601 date or time, exclusive (without a zone: UTC)",
    )
    p.add_argument("--limit", type=count, default=100, help="at most this many events (100)")
    add_json_option(p, "JSON lines on stdout")
    add_gallery_options(p)
    p.set_defaults(handler=run)


def iso_time(text: str) -> str:
    """``--since``/``--until``: an ISO 8601 date (``2024-05-01``: its midnight) or date and
    time, with or without a zone (without: UTC), as the audit log stores times (UTC,
    ``2024-05-01T00:00:00.000000+00:00``), so that comparing the text compares the times.
    Anything else is a usage error (argparse: exit 2)."""
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date or time (e.g. 2024-05-01 or 2024-05-01T13:30)"
        ) from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.isoformat(timespec="microseconds")


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    gallery = ctx.gallery(must_exist=True)
    person_id = ctx.person(args.person).id if args.person else None
    events = gallery.audit(
        action=args.action,
        person_id=person_id,
        since=args.since,
        until=args.until,
        limit=args.limit,
    )
    for e in events:
        ctx.out.emit(e, output.audit_text(e))
    return OK
