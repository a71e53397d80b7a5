"""``faceindex audit``: who enrolled, searched, deleted what, when."""

from __future__ import annotations

import argparse

from faceindex.cli import output
from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK
from faceindex.cli.options import Subparsers, add_gallery_options, add_json_option


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("audit", help="query the audit log")
    p.add_argument("--action", help="enroll, identify, delete, rename, keys_rotate, ...")
    p.add_argument("--person", help="name or #id")
    p.add_argument("--since", help="ISO time, inclusive (UTC)")
    p.add_argument("--until", help="ISO time, exclusive (UTC)")
    p.add_argument("--limit", type=int, default=100)
    add_json_option(p, "JSON lines on stdout")
    add_gallery_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    gallery = ctx.gallery()
    person_id = gallery.person(args.person).id if args.person else None
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
