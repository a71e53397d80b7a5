"""``faceindex stats`` (the gallery's size, its decision, and what that decision should
give) and ``faceindex calibrate`` (set that decision from the user's own photos)."""

from __future__ import annotations

import argparse

from faceindex.cli import output
from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK
from faceindex.cli.options import (
    Subparsers,
    add_gallery_options,
    add_model_options,
)


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "stats",
        help="the gallery's size, threshold and expected error rates",
        description="People and templates in the gallery, the open-set threshold in force "
        "(set for the gallery's size from the model's calibration, unless fixed), and the "
        "false positive (FPIR: strangers named) and false negative (FNIR: enrolled people "
        "missed) identification rates expected at it. The expectations come from the "
        "development people's scores; measure your own with 'faceindex eval gallery'.",
    )
    add_gallery_options(p)
    add_model_options(p, embedder=True)
    p.set_defaults(handler=stats)

    p = subparsers.add_parser(
        "calibrate",
        help="set the gallery's thresholds from your own photos",
        description="Embed DIR/<person>/<photos>, score every photo against every other, "
        "and store in the gallery the verification threshold for --target-fmr and the "
        "impostor-score tail that sets the open-set threshold for the gallery's size. A "
        "part your photos have too few trials to support is refused, with the reason, and "
        "the model's shipped value stays. --dry-run prints without storing; --reset goes "
        "back to the shipped calibration.",
    )
    p.add_argument("folder", nargs="?", metavar="DIR", help="one subfolder of photos per person")
    p.add_argument("--target-fmr", type=float, default=1e-3, help="false match rate (1e-3)")
    p.add_argument("--enrol", type=int, default=5, help="photos enrolled per person (5)")
    p.add_argument("--dry-run", action="store_true", help="measure and print, store nothing")
    p.add_argument("--reset", action="store_true", help="forget the stored calibration")
    add_gallery_options(p)
    add_model_options(p, embedder=True)
    p.set_defaults(handler=calibrate)


def stats(args: argparse.Namespace, ctx: CliContext) -> int:
    gallery = ctx.gallery(must_exist=True)
    exp = gallery.expectations()
    record = output.stats_json(gallery.where, gallery.model_id, gallery.count_templates(), exp)
    ctx.out.emit(record, output.stats_text(record))
    return OK


def calibrate(args: argparse.Namespace, ctx: CliContext) -> int:
    from pathlib import Path

    if args.reset:
        if args.folder:
            return ctx.out.usage("give DIR or --reset, not both")
        ctx.gallery(must_exist=True).set_calibration(None)
        ctx.out.emit({"reset": True}, "back to the model's shipped calibration")
        return OK
    if not args.folder:
        return ctx.out.usage("give the folder of photos to calibrate on (DIR/<person>/<photos>)")
    from faceindex.eval.calibrate import calibrate_folder

    with ctx.out.progress("embedding", unit="photos") as progress:
        result = calibrate_folder(
            Path(args.folder),
            ctx.pipeline,
            target_fmr=args.target_fmr,
            enrol=args.enrol,
            progress=progress.update,
        )
    stored = False
    if not args.dry_run:
        ctx.gallery().set_calibration(result.calibration)  # created if need be (and said)
        stored = True
    record = output.calibration_json(result, stored=stored)
    ctx.out.emit(record, output.calibration_text(record))
    return OK
