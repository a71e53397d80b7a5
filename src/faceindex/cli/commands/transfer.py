"""``faceindex export`` and ``faceindex import``: a whole gallery to one file and back.

The file holds people, external ids, metadata and templates with their model and flags
(photos too with ``--photos``, where kept); it is encrypted when the gallery has a key, and
then imports only with that key. See :mod:`faceindex.gallery.transfer`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK
from faceindex.cli.options import Subparsers, add_gallery_options, add_json_option


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="write the whole gallery to one file (encrypted when it has a key)",
        description="Write the gallery's people, external ids, metadata and face templates "
        "(with their model and flags) to one file, for a backup or another gallery. With a "
        "template key the file is encrypted with it, and imports only with the same key.",
    )
    p.add_argument("out", metavar="OUT", help="the file to write (refused if it exists)")
    p.add_argument("--photos", action="store_true", help="also the kept photos")
    add_gallery_options(p)
    add_json_option(p)
    p.set_defaults(handler=export)
    p = subparsers.add_parser(
        "import",
        help="add the people and faces of an export file to the gallery",
        description="Add an export file's people to the gallery: each to the person of the "
        "same name (regardless of case), else a new person. Faces whose photo is already "
        "enrolled are skipped, so importing twice adds nothing. Refused when the file's "
        "templates come from another model than the gallery's.",
    )
    p.add_argument("file", metavar="FILE", help="a file written by faceindex export")
    add_gallery_options(p)
    add_json_option(p)
    p.set_defaults(handler=import_file)


def export(args: argparse.Namespace, ctx: CliContext) -> int:
    import json
    import os

    out = Path(args.out)
    if out.exists():
        return ctx.out.usage(f"{out} exists; refusing to overwrite it")
    data = ctx.gallery(must_exist=True).export(photos=args.photos)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:  # private whatever the umask: it holds biometric templates
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return ctx.out.usage(f"{out} exists; refusing to overwrite it")
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(data)
    sealed = bool(json.loads(data.partition(b"\n")[0]).get("sealed"))
    ctx.out.emit(
        {"path": str(out), "bytes": len(data), "sealed": sealed},
        f"wrote {out} ({len(data)} bytes{', encrypted' if sealed else ''})",
    )
    return OK


def import_file(args: argparse.Namespace, ctx: CliContext) -> int:
    from faceindex.errors import InvalidInputError, NotFoundError

    path = Path(args.file)
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder, not an export file", path=str(path))
    if not path.is_file():
        raise NotFoundError(f"{path}: no such file", path=str(path))
    report = ctx.gallery().import_from(path.read_bytes())
    r = report.as_dict()
    ctx.out.emit(
        r,
        f"imported {path}: {r['people_created']} people created, {r['people_merged']} "
        f"merged by name, {r['templates_added']} faces added, {r['skipped']} skipped "
        "(already enrolled)",
    )
    return OK
