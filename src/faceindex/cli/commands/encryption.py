"""``faceindex encryption-key generate|status|rotate``: the key templates are sealed with.

Formerly ``faceindex keys generate|status|rotate``, next to the REST API keys they have
nothing to do with; those spellings still work, with a deprecation line on stderr.
"""

from __future__ import annotations

import argparse
from pathlib import Path

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

COMMAND = "encryption-key"
#: The old home of these actions (see :mod:`.apikeys`, which owns it).
DEPRECATED_COMMAND = KEYS_COMMAND


def register(subparsers: Subparsers) -> None:
    acts = action_subparsers(
        subparsers,
        COMMAND,
        dest="encryption_action",
        help="template encryption key: generate, status, rotate",
        description="Templates (and kept photos) can be encrypted at rest with AES-256-GCM; "
        "the key is given with --key-file or $FACEINDEX_KEY.",
    )
    _add_actions(acts, deprecated=False)
    old = action_subparsers(subparsers, DEPRECATED_COMMAND, dest="keys_action", help=KEYS_HELP)
    _add_actions(old, deprecated=True)


def _add_actions(acts: Subparsers, *, deprecated: bool) -> None:
    def parser(name: str, help: str) -> argparse.ArgumentParser:
        if deprecated:
            help = f"deprecated: use '{COMMAND} {name}'"
        p: argparse.ArgumentParser = acts.add_parser(name, help=help)
        p.set_defaults(handler=_HANDLERS[name], deprecated_spelling=deprecated)
        return p

    a = parser("generate", "write a new random key to a file")
    a.add_argument(
        "--out", required=True, metavar="FILE", help="the new key file (never overwritten)"
    )
    a = parser("status", "which key ids the gallery uses")
    add_gallery_options(a)
    add_json_option(a)
    a = parser("rotate", "re-encrypt every template with a new key")
    a.add_argument("--new-key-file", metavar="FILE", help="the new key")
    a.add_argument("--decrypt", action="store_true", help="store templates unencrypted")
    add_gallery_options(a)


def _warn_if_deprecated(args: argparse.Namespace, ctx: CliContext, action: str) -> None:
    if getattr(args, "deprecated_spelling", False):
        ctx.out.deprecated(f"{DEPRECATED_COMMAND} {action}", f"{COMMAND} {action}")


def generate(args: argparse.Namespace, ctx: CliContext) -> int:
    from faceindex.crypto import TemplateKey

    _warn_if_deprecated(args, ctx, "generate")
    out = Path(args.out)
    if out.exists():
        return ctx.out.usage(f"{out} exists; refusing to overwrite a key")
    import os

    key = TemplateKey.generate()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:  # created private whatever the umask, and never over a file made meanwhile
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return ctx.out.usage(f"{out} exists; refusing to overwrite a key")
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(key.to_text() + "\n")
    ctx.out.line(
        f"wrote key {key.key_id} to {out} (keep it safe: without it the gallery is unreadable)"
    )
    return OK


def status(args: argparse.Namespace, ctx: CliContext) -> int:
    _warn_if_deprecated(args, ctx, "status")
    ids = sorted(str(k) for k in ctx.gallery(must_exist=True).key_ids())
    ctx.out.emit({"key_ids": ids}, "key ids in use: " + ", ".join(ids))
    return OK


def rotate(args: argparse.Namespace, ctx: CliContext) -> int:
    from faceindex.crypto import TemplateKey

    _warn_if_deprecated(args, ctx, "rotate")
    new_key = TemplateKey.from_file(args.new_key_file) if args.new_key_file else None
    if new_key is None and not args.decrypt:
        return ctx.out.usage(f"{COMMAND} rotate needs --new-key-file FILE (or --decrypt)")
    from faceindex.gallery.sealing import Sealer
    from faceindex.library.store import reseal_library

    gallery = ctx.gallery(must_exist=True)
    old = gallery.sealer
    n = gallery.rekey(new_key)
    # The photo library keeps its face vectors in the gallery's database (file or
    # PostgreSQL), sealed with the same key.
    faces = reseal_library(gallery.location, old, Sealer(new_key))
    target = new_key.key_id if new_key else "no key (plaintext)"
    also = f" and {output.plural(faces, 'library face')}" if faces else ""
    ctx.out.line(f"re-encrypted {output.plural(n, 'template')}{also} with {target}")
    return OK


_HANDLERS = {"generate": generate, "status": status, "rotate": rotate}
