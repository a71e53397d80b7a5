"""``faceindex eval pairs|gallery``: accuracy on the user's own photos, with a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from faceindex.cli import output
from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK
from faceindex.cli.options import Subparsers, action_subparsers, add_model_options


def register(subparsers: Subparsers) -> None:
    acts = action_subparsers(
        subparsers,
        "eval",
        dest="eval_action",
        metavar="PROTOCOL",
        help="measure accuracy on your own photos",
        description="Evaluate verification on a pairs CSV or open-set identification on a "
        "folder per person; writes PNG plots, report.html and report.json to --out.",
    )
    pa = acts.add_parser("pairs", help="verification on PAIRS.csv (columns a,b,same)")
    pa.add_argument("pairs", metavar="PAIRS.csv", help="the pairs: a header, then a,b,same")
    pa.add_argument("--root", metavar="DIR", help="folder the paths are relative to")
    pa.add_argument(
        "--target-fmr",
        type=float,
        default=1e-3,
        help="false match rate of the recommended threshold (0.001)",
    )
    b = acts.add_parser("gallery", help="open-set identification on DIR/<person>/<photos>")
    b.add_argument("folder", metavar="DIR", help="one subfolder of photos per person")
    b.add_argument("--enrol", type=int, default=5, help="photos enrolled per person")
    b.add_argument(
        "--unknown-fraction", type=float, default=0.3, help="share of people kept out as unknown"
    )
    b.add_argument("--seed", type=int, default=0, help="seed of the enrol/probe split")
    b.add_argument(
        "--target-fpir",
        type=float,
        default=1e-2,
        help="strangers named (FPIR) to report the FNIR at (0.01)",
    )
    for a in (pa, b):
        a.add_argument(
            "--groups", metavar="GROUPS.json", help="person -> group, for per-group rates"
        )
        a.add_argument("--out", metavar="DIR", default="faceindex-report", help="report folder")
        add_model_options(a, embedder=True)
        a.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from faceindex.eval import protocols
    from faceindex.eval.report import write_report

    pipeline = ctx.pipeline
    embed = protocols.pipeline_embed_fn(pipeline)
    groups = protocols.load_groups(args.groups) if args.groups else None
    with ctx.out.progress("embedding", unit="photos") as progress:
        result: protocols.PairsResult | protocols.GalleryResult
        if args.eval_action == "pairs":
            result = protocols.evaluate_pairs_csv(
                args.pairs,
                embed,
                threshold=pipeline.threshold,
                root=args.root,
                target_fmr=args.target_fmr,
                groups=groups,
                progress=progress.update,
            )
        else:
            result = protocols.evaluate_gallery(
                args.folder,
                embed,
                threshold=pipeline.threshold,
                enrol_per_person=args.enrol,
                unknown_fraction=args.unknown_fraction,
                seed=args.seed,
                groups=groups,
                target_fpir=args.target_fpir,
                progress=progress.update,
            )
    written = write_report(result, args.out)
    if ctx.out.json:
        ctx.out.line(result.to_json(indent=None))
    else:
        ctx.out.line(output.eval_text(result))
    ctx.out.note(
        f"report: {Path(args.out) / 'report.html'} ({output.plural(len(written), 'file')})"
    )
    return OK
