"""``faceindex keys create|list|revoke``: the REST API's keys (secrets shown once).

The same ``keys`` command still accepts the template-encryption actions under their old
names (``generate``, ``status``, ``rotate``); :mod:`.encryption` adds those.
"""

from __future__ import annotations

import argparse

from faceindex.cli import output
from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK
from faceindex.cli.options import (
    KEYS_COMMAND,
    KEYS_HELP,
    Subparsers,
    action_subparsers,
    add_gallery_options,
    add_json_option,
)


def register(subparsers: Subparsers) -> None:
    acts = action_subparsers(subparsers, KEYS_COMMAND, dest="keys_action", help=KEYS_HELP)
    a = acts.add_parser(
        "create",
        help="create a REST API key (prints its secret once)",
        description="Create an API key for the REST API. The secret is printed once and only "
        "its hash is stored: keep it somewhere safe.",
    )
    a.add_argument("--name", required=True, help="who or what the key is for")
    a.add_argument(
        "--scopes",
        default="read",
        help="comma-separated: read, write, admin (admin implies write implies read)",
    )
    a.set_defaults(handler=create)
    a = acts.add_parser("list", help="list the REST API keys (never their secrets)")
    a.set_defaults(handler=list_keys)
    a = acts.add_parser("revoke", help="revoke a REST API key at once")
    a.add_argument("key_id", type=int, metavar="ID", help="the key's id (see keys list)")
    a.set_defaults(handler=revoke)
    for name in ("create", "list", "revoke"):
        add_gallery_options(acts.choices[name])
        add_json_option(acts.choices[name])


def create(args: argparse.Namespace, ctx: CliContext) -> int:
    key, secret = ctx.keyring().create(args.name, args.scopes)
    scopes = ",".join(key.as_dict()["scopes"])
    ctx.out.emit(
        {"key": key.as_dict(), "secret": secret},
        f"created API key #{key.id} {key.name!r} with scopes {scopes}\n"
        f"secret (shown only now, keep it safe): {secret}",
    )
    return OK


def list_keys(args: argparse.Namespace, ctx: CliContext) -> int:
    keyring = ctx.keyring(must_exist=True)
    found = keyring.keys()
    for k in found:
        ctx.out.emit(k.as_dict(), output.apikey_line(k))
    if not ctx.out.json:
        ctx.out.note(f"{output.plural(len(found), 'API key')} in {ctx.gallery_where}")
    return OK


def revoke(args: argparse.Namespace, ctx: CliContext) -> int:
    key = ctx.keyring(must_exist=True).revoke(args.key_id)
    ctx.out.emit(key.as_dict(), f"revoked API key #{key.id} {key.name!r} ({key.revoked_at})")
    return OK
