"""The gallery commands: ``enroll``, ``identify``, ``people``, ``index``, ``reembed``."""

from __future__ import annotations

import argparse
import collections
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from faceindex.cli import output
from faceindex.cli.batch import each_photo
from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK, PARTIAL_FAILURE
from faceindex.cli.options import (
    PERSON_HELP,
    Subparsers,
    action_subparsers,
    add_engine_options,
    add_gallery_options,
    add_json_option,
    add_model_options,
    add_require_live,
    count,
    engine_usage_error,
    looks_like_id,
)
from faceindex.cli.reject import add_reject_below

if TYPE_CHECKING:
    from faceindex.engines import Engine
    from faceindex.types import Identification


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "enroll",
        aliases=["enrol"],
        help="add photos of a person to the gallery (creates the gallery if need be)",
        description="Enrol photos of NAME (created if new), or a folder tree with one "
        "subfolder per person (--folders). Each photo passes a quality gate; rejections "
        "are listed with their reasons. Re-running skips photos already enrolled. "
        "Names of the form #N are refused: on the command line #N always means an id. "
        "A gallery that does not exist yet is created (and named on stderr).",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="the person's name")
    p.add_argument("images", nargs="*", metavar="IMG", help="photos of that person")
    p.add_argument("--folders", metavar="DIR", help="DIR/<person>/<photos>: bulk enrolment")
    p.add_argument("--keep-photos", action="store_true", help="store the photos too")
    p.add_argument(
        "--force",
        action="store_true",
        help="enrol photos whose face matches another enrolled person better (refused "
        "otherwise, reason matches_other_person); such faces stay flagged",
    )
    add_gallery_options(p)
    add_model_options(p, embedder=True)
    add_engine_options(p)
    p.set_defaults(handler=enroll)

    p = subparsers.add_parser(
        "identify",
        help="who is in these photos?",
        description="Identify every face of each photo against the gallery; faces that "
        "match nobody well enough are reported as unknown (person null); with --reject-below Q, "
        "faces whose quality score is under Q as unsure (person null). The gallery must "
        "exist (exit 6 otherwise: a mistyped --gallery is never taken as an empty one).",
    )
    p.add_argument("images", nargs="+", metavar="IMG", help="photos")
    add_reject_below(p)
    add_require_live(p)
    add_gallery_options(p)
    add_model_options(p, embedder=True)
    p.set_defaults(handler=identify)

    acts = action_subparsers(
        subparsers, "people", dest="people_action", help="list, show, rename, remove people"
    )
    a = acts.add_parser("list", help="list people")
    a.add_argument("--search", help="only names containing this text")
    a.add_argument("--offset", type=count, default=0, help="skip this many people first (0)")
    a.add_argument("--limit", type=count, default=100, help="list at most this many (100)")
    a.set_defaults(handler=people_list)
    a = acts.add_parser("show", help="one person and their templates")
    a.add_argument("person", metavar="PERSON", help=PERSON_HELP)
    a.set_defaults(handler=people_show)
    a = acts.add_parser("rename", help="rename a person")
    a.add_argument("person", metavar="PERSON", help=PERSON_HELP)
    a.add_argument("new_name", metavar="NEW_NAME", help="the person's new name")
    a.set_defaults(handler=people_rename)
    a = acts.add_parser("remove", help="erase a person: templates, photos, index entries")
    a.add_argument("person", metavar="PERSON", help=PERSON_HELP)
    a.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    a.set_defaults(handler=people_remove)
    for a in acts.choices.values():
        add_gallery_options(a)
        add_json_option(a)

    acts = action_subparsers(
        subparsers, "index", dest="index_action", help="manage the search index"
    )
    a = acts.add_parser("rebuild", help="rebuild the index from the gallery")
    a.add_argument(
        "--backend",
        default="auto",
        help="auto (default: exact below 200k templates, else pq-rerank), exact, pq-rerank, hnsw",
    )
    add_gallery_options(a)
    add_json_option(a)
    a.set_defaults(handler=index_rebuild)

    p = subparsers.add_parser(
        "reembed",
        help="move the gallery to another embedding model",
        description="Re-embed every template with the model chosen by --embedder/--detector. "
        "Needs the photos kept at enrolment (--keep-photos); all or nothing.",
    )
    add_gallery_options(p)
    add_model_options(p, embedder=True)
    p.set_defaults(handler=reembed)


# -- enroll -----------------------------------------------------------------------------


def enroll(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.folders:
        if args.name or args.images:
            return ctx.out.usage("give either NAME IMG... or --folders DIR, not both")
        return _enroll_folders(args, ctx)
    if not args.name or not args.images:
        return ctx.out.usage("enroll needs a NAME and at least one photo (or --folders DIR)")
    if args.engine != "local" or args.workers is not None or args.address is not None:
        return ctx.out.usage("--engine, --workers and --address are for --folders DIR")
    _check_new_name(args.name)
    _check_photo_args(args.images)
    gallery = ctx.gallery(pipeline=ctx.pipeline)  # creates one
    report = gallery.enroll(args.name, args.images, force=args.force)
    ctx.out.emit(output.enrolment_json(report), output.enrolment_text(args.name, report))
    return OK if not report.rejected else PARTIAL_FAILURE


def _check_new_name(name: str) -> None:
    """Refuse a name that would read as an id reference (``#2``), so that ``#N`` on the
    command line is never ambiguous; one made elsewhere is reached as ``name:#2``."""
    from faceindex.errors import InvalidInputError

    if looks_like_id(name):
        raise InvalidInputError(
            f"{name!r} looks like a person id: on the command line #N always means an id, "
            "so such names are refused (choose another name)",
            name=name,
        )


def _check_photo_args(images: list[str]) -> None:
    """A folder given as a photo is a mistake in the command line, not a rejected photo."""
    from pathlib import Path

    from faceindex.errors import InvalidInputError

    for image in images:
        if Path(image).is_dir():
            raise InvalidInputError(
                f"{image}: is a folder, not a photo (enrol a folder per person with --folders DIR)",
                path=image,
            )


def _enroll_folders(args: argparse.Namespace, ctx: CliContext) -> int:
    from faceindex.engines.analysis import NOT_DONE, Job
    from faceindex.errors import InvalidInputError
    from faceindex.gallery import EnrolStatus
    from faceindex.gallery.enrolment import ENROLMENT_PLAN, PhotoOutcome
    from faceindex.io.files import person_folders

    wrong = engine_usage_error(args)
    if wrong:
        return ctx.out.usage(wrong)
    people = person_folders(args.folders)
    if not people:
        raise InvalidInputError(
            f"{args.folders}: no person folders with photos (expected DIR/NAME/*.jpg)"
        )
    for name, _ in people:  # before enrolling anyone: all or nothing for this mistake
        _check_new_name(name)
    total = sum(len(photos) for _, photos in people)
    counts: collections.Counter[str] = collections.Counter()
    rejected: list[tuple[str, tuple[str, ...]]] = []
    start = time.perf_counter()
    gallery = ctx.gallery(pipeline=ctx.pipeline)

    def jobs() -> Iterator[Job[tuple[str, Path, bool]]]:
        # A photo the gallery already holds is not sent to the engine: a re-run of an
        # interrupted job analyses only what is left.
        for name, photos in people:
            for photo in photos:
                known = gallery.known_photo(name, photo, str(photo)) is not None
                yield Job((name, photo, known), None if known else str(photo))

    with (
        _engine(args, ctx) as engine,
        ctx.out.progress("enrolling", total=total, unit="photos") as progress,
    ):
        for (name, photo, known), analysis in engine.analyse(jobs(), ENROLMENT_PLAN):
            # One photo at a time, in folder order whatever the engine: each is committed
            # on its own, so an interrupted run keeps what it did and a re-run skips it
            # (duplicate by hash). A photo known before is checked again now (it was
            # checked ahead of the writes).
            outcome: PhotoOutcome | None = None
            if known:
                outcome = gallery.known_photo(name, photo, str(photo))
            if outcome is None:
                report = gallery.enroll(
                    name,
                    [photo],
                    sources=[str(photo)],
                    force=args.force,
                    analyses=[analysis],
                )
                outcome = report.outcomes[0]
            counts[str(outcome.status)] += 1
            if outcome.status is EnrolStatus.REJECTED:
                rejected.append((outcome.source, outcome.reasons))
            ctx.out.emit({"person": name, **outcome.as_dict()}, None)
            progress.advance()
    elapsed = time.perf_counter() - start
    ctx.out.note(output.enrol_folders_summary(len(people), counts, rejected, elapsed))
    lost = sum(1 for _, reasons in rejected if NOT_DONE in reasons)
    if lost:
        ctx.out.note(
            f"{output.plural(lost, 'photo')} not done (a worker was lost): run the same "
            "command again to finish them"
        )
    return OK if not counts["rejected"] else PARTIAL_FAILURE


@contextlib.contextmanager
def _engine(args: argparse.Namespace, ctx: CliContext) -> Iterator[Engine]:
    """The engine of ``--engine``/``--workers``/``--address``, closed afterwards; the
    local one warms up the pipeline, remote workers load their own."""
    from faceindex.engines import EngineOptions, open_engine

    options = EngineOptions(workers=args.workers, address=args.address)
    with open_engine(
        args.engine, pipeline=ctx.pipeline, settings=ctx.settings, options=options
    ) as engine:
        if args.engine == "local":
            ctx.pipeline.warm_up()
        if ctx.out.verbose or args.engine != "local":
            ctx.out.note(f"faceindex: {engine.describe()}")
        yield engine


# -- identify ---------------------------------------------------------------------------


def identify(args: argparse.Namespace, ctx: CliContext) -> int:
    from faceindex.errors import ConfigError

    gallery = ctx.gallery(must_exist=True, pipeline=ctx.pipeline)
    floor = getattr(args, "reject_below", None)

    def plain_identify(path: str) -> tuple[Identification, ...]:
        return gallery.identify(path, reject_below=floor)

    work: Callable[[str], tuple[Identification, ...]] = plain_identify
    if args.require_live:
        from faceindex.cli.live import live_image

        def live_identify(path: str) -> tuple[Identification, ...]:
            return gallery.identify(live_image(ctx.pipeline, path, path), reject_below=floor)

        work = live_identify

    return each_photo(
        ctx,
        args.images,
        work,
        lambda faces: {"faces": [output.identification_json(f) for f in faces]},
        output.identify_text,
        stop_on=(ConfigError,),  # a wrong key or model fails every photo alike: stop at once
        description="identifying",
    )


# -- people -----------------------------------------------------------------------------


def people_list(args: argparse.Namespace, ctx: CliContext) -> int:
    gallery = ctx.gallery(must_exist=True)
    for p in gallery.people(search=args.search, offset=args.offset, limit=args.limit):
        ctx.out.emit(p.as_dict(), output.person_line(p))
    if not ctx.out.json:
        ctx.out.note(f"{output.people(gallery.count_people())} in {gallery.where}")
    return OK


def people_show(args: argparse.Namespace, ctx: CliContext) -> int:
    gallery = ctx.gallery(must_exist=True)
    p = ctx.person(args.person)
    templates = gallery.templates(p.id)
    ctx.out.emit(output.person_show_json(p, templates), output.person_show_text(p, templates))
    return OK


def people_rename(args: argparse.Namespace, ctx: CliContext) -> int:
    _check_new_name(args.new_name)
    p = ctx.gallery(must_exist=True).rename(ctx.person(args.person).id, args.new_name)
    ctx.out.emit(p.as_dict(), f"#{p.id} is now {p.name}")
    return OK


def people_remove(args: argparse.Namespace, ctx: CliContext) -> int:
    gallery = ctx.gallery(must_exist=True)
    p = ctx.person(args.person)
    if not args.yes:
        if not sys.stdin.isatty():
            return ctx.out.usage("refusing to delete without --yes (no terminal to ask)")
        what = output.plural(p.templates, "template")
        answer = input(f"Delete {p.name} (#{p.id}) and {what}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            ctx.out.note("nothing deleted")
            return OK
    n = gallery.remove(p.id)
    ctx.out.emit(
        {"deleted": p.id, "templates": n},
        f"deleted {p.name} (#{p.id}) and {output.plural(n, 'template')}",
    )
    return OK


# -- index, reembed ---------------------------------------------------------------------


def index_rebuild(args: argparse.Namespace, ctx: CliContext) -> int:
    gallery = ctx.gallery(must_exist=True)
    start = time.perf_counter()
    size = gallery.rebuild_index(args.backend)
    elapsed = time.perf_counter() - start
    ctx.out.emit(
        {"templates": size, "backend": args.backend, "seconds": round(elapsed, 3)},
        f"index rebuilt: {output.plural(size, 'template')} ({args.backend}) in {elapsed:.2f} s",
    )
    return OK


def reembed(args: argparse.Namespace, ctx: CliContext) -> int:
    gallery = ctx.gallery(must_exist=True)  # opened before the new pipeline: it keeps its own
    new = ctx.pipeline
    old = gallery.model_id
    start = time.perf_counter()
    n = gallery.reembed(new)
    elapsed = time.perf_counter() - start
    ctx.out.emit(
        {"from": old, "to": new.model_id, "templates": n},
        f"re-embedded {output.plural(n, 'template')}: {old} -> {new.model_id} in {elapsed:.1f} s",
    )
    return OK
