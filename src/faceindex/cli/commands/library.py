"""``faceindex scan`` and ``faceindex clusters``: who is in my photos?

``scan DIR...`` indexes every face of every photo under the folders into the gallery's
file (incremental and resumable: see :mod:`faceindex.library.scan`), recognising enrolled
people and grouping the others into clusters. ``clusters`` lists the clusters (largest
first) and the faces in none; ``clusters name ID NAME`` makes a cluster a person (NAME as
``#ID`` adds it to an existing person), ``clusters merge A B`` puts B's faces into A,
``clusters remove-face ID FACE`` takes a face out of a cluster for good ("not this person").

The renderings live here rather than in :mod:`faceindex.cli.output`, as this module is the
only writer of these shapes (``clusters --json``:
``{"clusters": [{"id", "size", "faces": [{"id", "path", "bbox"}]}], "unclustered": [...]}``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from faceindex.cli import output
from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK, PARTIAL_FAILURE
from faceindex.cli.options import (
    PERSON_HELP,
    Subparsers,
    add_engine_options,
    add_gallery_options,
    add_json_option,
    add_model_options,
    cosine,
    engine_usage_error,
)

if TYPE_CHECKING:
    from faceindex.library import Clusters, PhotoLibrary, ScanReport

#: ``clusters`` actions and how many arguments each takes.
ACTIONS = {"list": 0, "name": 2, "merge": 2, "remove-face": 2}


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "scan",
        help="index the faces of every photo under folders (incremental)",
        description="Find every face of every photo under the folders (recursively: JPEG, "
        "PNG, WebP, ..., HEIC where Pillow reads it), recognise the enrolled people and "
        "group the others into clusters to name (faceindex clusters). A re-scan only "
        "reads new or changed files; an interrupted scan resumes where it stopped.",
    )
    p.add_argument("folders", nargs="+", metavar="DIR", help="photo folders")
    add_gallery_options(p)
    add_model_options(p, embedder=True, json=False)
    add_json_option(p, "the summary as JSON on stdout")
    add_engine_options(p)
    _cluster_threshold(p)
    p.add_argument(
        "--no-cluster", action="store_true", help="only index; leave the clustering for later"
    )
    p.set_defaults(handler=scan)

    c = subparsers.add_parser(
        "clusters",
        help="list, name, merge the clusters of unnamed faces",
        description="Without an action (or 'list'): the clusters, largest first, and the "
        "faces in none. 'name ID NAME': the cluster becomes a person (NAME as #ID: an "
        "existing person); its faces are enrolled. 'merge A B': B's faces join A. "
        "'remove-face ID FACE': not this person (the face never rejoins that cluster).",
    )
    c.add_argument(
        "action", nargs="?", default="list", choices=sorted(ACTIONS), help="default: list"
    )
    c.add_argument("values", nargs="*", metavar="ARG", help=f"IDs; NAME is {PERSON_HELP}")
    add_gallery_options(c)
    add_json_option(c)
    _cluster_threshold(c)
    c.set_defaults(handler=clusters)


def _cluster_threshold(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cluster-threshold",
        type=cosine,
        metavar="SIM",
        help="average similarity at which faces are grouped (default: the tuned value)",
    )


def _library(args: argparse.Namespace, ctx: CliContext, *, must_exist: bool) -> PhotoLibrary:
    from faceindex.library import ClusterRule, PhotoLibrary

    rule = None
    if getattr(args, "cluster_threshold", None) is not None:
        rule = ClusterRule(threshold=args.cluster_threshold)
    pipeline = ctx.pipeline
    gallery = ctx.gallery(must_exist=must_exist, pipeline=pipeline)
    return PhotoLibrary(gallery, pipeline=pipeline, rule=rule)


# -- scan -------------------------------------------------------------------------------


def scan(args: argparse.Namespace, ctx: CliContext) -> int:
    from faceindex.engines import EngineOptions, open_engine

    wrong = engine_usage_error(args)
    if wrong:
        return ctx.out.usage(wrong)
    options = EngineOptions(workers=args.workers, address=args.address)
    with (
        _library(args, ctx, must_exist=False) as library,
        open_engine(
            args.engine, pipeline=library.pipeline, settings=ctx.settings, options=options
        ) as engine,
        ctx.out.progress("scanning", unit="files") as progress,
    ):
        if ctx.out.verbose or args.engine != "local":
            ctx.out.note(f"faceindex: {engine.describe()}")
        report = library.scan(
            args.folders, progress=progress.update, cluster=not args.no_cluster, engine=engine
        )
    for path, code in report.error_paths:
        ctx.out.note(f"{path}: error: {code}")
    ctx.out.emit(report.as_dict(), None)
    ctx.out.note(scan_text(report))
    if report.not_done:
        ctx.out.note(
            f"{output.plural(report.not_done, 'photo')} not done (a worker was lost): "
            "scan again to finish them"
        )
    return OK if not report.errors and not report.not_done else PARTIAL_FAILURE


def scan_text(r: ScanReport) -> str:
    unchanged = r.unchanged + r.touched
    lines = [
        f"scanned {output.plural(r.files, 'file')} in {r.elapsed_s:.1f} s "
        f"({r.photos_per_s:.1f} files/s): {r.new} new, {r.changed} changed, "
        f"{unchanged} unchanged, {r.not_images} not photos (skipped), "
        f"{output.plural(r.errors, 'error')}, {r.removed} gone",
        f"{output.plural(r.faces, 'face')} found, {r.recognised} recognised; "
        f"{r.clusters_joined} joined a cluster, {output.plural(r.clusters_new, 'new cluster')}",
    ]
    return "\n".join(lines)


# -- clusters ---------------------------------------------------------------------------


def clusters(args: argparse.Namespace, ctx: CliContext) -> int:
    want = ACTIONS[args.action]
    if len(args.values) != want:
        usage = {"list": "", "name": " ID NAME", "merge": " A B", "remove-face": " ID FACE"}
        return ctx.out.usage(f"usage: faceindex clusters {args.action}{usage[args.action]}")
    with _library(args, ctx, must_exist=True) as library:
        if args.action == "list":
            listing = library.clusters()
            ctx.out.emit(listing.as_dict(), lambda: clusters_text(listing))
            return OK
        first = _id(args.values[0])
        if first is None:
            return ctx.out.usage(f"{args.values[0]!r} is not a cluster id")
        if args.action == "name":
            return _name(library, first, args.values[1], ctx)
        second = _id(args.values[1])
        if second is None:
            return ctx.out.usage(f"{args.values[1]!r} is not an id")
        if args.action == "merge":
            merged = library.merge(first, second)
            ctx.out.emit(
                merged.as_dict(),
                f"cluster #{second} merged into #{first}: {output.plural(merged.size, 'face')}",
            )
            return OK
        face = library.remove_face(first, second)
        ctx.out.emit(
            {"cluster": first, "face": face.as_dict(), "now_in": face.cluster_id},
            f"face #{face.id} ({face.path}) taken out of cluster #{first}",
        )
        return OK


def _name(library: PhotoLibrary, cluster_id: int, text: str, ctx: CliContext) -> int:
    from faceindex.cli.options import person_ref

    ref = person_ref(text)
    size = library.cluster(cluster_id).size
    if isinstance(ref, int):
        person = library.name(cluster_id, person_id=ref)
    else:
        person = library.name(cluster_id, ref)
    data: dict[str, Any] = {"cluster": cluster_id, "faces": size, "person": person.as_dict()}
    ctx.out.emit(
        data,
        f"cluster #{cluster_id} ({output.plural(size, 'face')}) is now {person.name} "
        f"(#{person.id}, {output.plural(person.templates, 'template')})",
    )
    return OK


def _id(text: str) -> int | None:
    clean = text.strip().lstrip("#")
    return int(clean) if clean.isdigit() else None


def clusters_text(listing: Clusters) -> str:
    lines = []
    for c in listing.clusters:
        shown = ", ".join(f"#{f.id} {f.path}" for f in c.faces[:3])
        more = f", ... ({c.size - 3} more)" if c.size > 3 else ""
        lines.append(f"cluster #{c.id}: {output.plural(c.size, 'face')}: {shown}{more}")
    n = len(listing.unclustered)
    lines.append(f"{output.plural(n, 'face')} in no cluster")
    return "\n".join(lines)
