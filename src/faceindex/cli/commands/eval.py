"""``faceindex eval pairs|gallery``: accuracy on the user's own photos, with a report.

``--groups auto`` estimates the groups with the attribute models
(:mod:`faceindex.eval.estimated_groups`): gender as the main grouping, apparent-age band
beside it, and says so, with who was left undecided.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceindex.cli import output
from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK
from faceindex.cli.options import Subparsers, action_subparsers, add_model_options

if TYPE_CHECKING:
    from faceindex.eval.groups import EstimatedGroups, GroupBreakdown


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
        "--group-unit",
        choices=["person", "photo"],
        help="with --groups auto: estimate a group per person (the folder of a path; the "
        "default when every photo has one) or per photo",
    )
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
            "--groups",
            metavar="GROUPS.json|auto",
            help="person -> group, for per-group rates; 'auto': groups estimated from "
            "apparent gender and age, per person from up to 10 of their photos (pairs: per "
            "photo when the paths have no person folders, or with --group-unit photo), "
            "with the estimator's own errors",
        )
        a.add_argument("--out", metavar="DIR", default="faceindex-report", help="report folder")
        add_model_options(a, embedder=True)
        a.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from faceindex.eval import protocols
    from faceindex.eval.report import write_report

    pipeline = ctx.pipeline
    embed = protocols.pipeline_embed_fn(pipeline)
    estimated: EstimatedGroups | None = None
    more: dict[str, dict[str, str]] = {}
    if getattr(args, "group_unit", None) and args.groups != "auto":
        return ctx.out.usage("--group-unit needs --groups auto")
    if args.groups == "auto":
        from faceindex.eval.estimated_groups import split_groupings

        estimated, embed = _estimate_groups(args, ctx, embed)
        groups, more = split_groupings(estimated)
    else:
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
                more_groups=more,
                estimated_groups=estimated,
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
                more_groups=more,
                estimated_groups=estimated,
            )
    written = write_report(result, args.out)
    if ctx.out.json:
        ctx.out.line(result.to_json(indent=None))
        if estimated is not None:
            ctx.out.note(f"groups ESTIMATED per {estimated.unit}: see group_estimation")
    else:
        ctx.out.line(output.eval_text(result))
        if estimated is not None:
            ctx.out.line(estimated_text(result, estimated))
    ctx.out.note(
        f"report: {Path(args.out) / 'report.html'} ({output.plural(len(written), 'file')})"
    )
    return OK


def _estimate_groups(
    args: argparse.Namespace, ctx: CliContext, embed: Any
) -> tuple[EstimatedGroups, Any]:
    """Estimate the groups (each photo decoded and detected once: its embedding is kept
    for the evaluation) and the ``embed_fn`` that reuses them."""
    from faceindex.errors import InvalidInputError
    from faceindex.eval import estimated_groups as eg
    from faceindex.eval import protocols
    from faceindex.io.pairs import read_pairs

    subject = eg.pipeline_subject_fn(ctx.pipeline)
    estimate = eg.analyzer_estimate_fn()
    with ctx.out.progress("estimating groups", unit="photos") as progress:
        if args.eval_action == "pairs":
            pairs_file = read_pairs(Path(args.pairs), root=args.root, labelled=True)
            photos = {p: pairs_file.root / p for pair in pairs_file.pairs for p in (pair.a, pair.b)}
            people: dict[str, list[Path]] = {}
            for key, path in photos.items():
                people.setdefault(protocols.person_of(key) or "", []).append(path)
            unit = args.group_unit or ("photo" if "" in people else "person")
            if unit == "person":
                if "" in people:
                    raise InvalidInputError(
                        f"--group-unit person: some photos of {args.pairs} are not in a "
                        "person folder (use --group-unit photo)"
                    )
                estimated, found = eg.estimate_people_groups(
                    people, subject, estimate, progress=progress.update
                )
            else:
                estimated, found = eg.estimate_photo_groups(
                    photos, subject, estimate, progress=progress.update
                )
        else:
            estimated, found = eg.estimate_person_groups(
                args.folder, subject, estimate, progress=progress.update
            )
    return estimated, eg.cached_embed_fn(found, embed)


def estimated_text(result: Any, estimated: EstimatedGroups) -> str:
    """The lines that say the groups were estimated, who was undecided, and the rates of
    the groupings after the first (the first is in ``output.eval_text``'s group lines)."""
    from faceindex.eval.groups import GROUPING_TITLES

    unit = "people" if estimated.unit == "person" else "photos"
    lines = [f"groups ESTIMATED per {estimated.unit}: {estimated.caveat}"]
    for i, name in enumerate(estimated.groupings):
        title = GROUPING_TITLES.get(name, name)
        counts = ", ".join(f"{g} {n}" for g, n in estimated.counts(name).items()) or "none"
        undecided = estimated.undecided(name)
        where = "(the per-group lines above)" if i == 0 else "(below)"
        lines.append(f"  {title} {where}: {counts}; {len(undecided)} {unit} undecided")
        if undecided:
            shown = ", ".join(undecided[:10]) + (" ..." if len(undecided) > 10 else "")
            lines.append(f"    undecided: {shown}")
    for more in result.more_groups:
        title = GROUPING_TITLES.get(more.name, more.name)
        for breakdown in (more.verification, more.open_set):
            if breakdown is not None:
                lines += _breakdown_lines(title, breakdown)
    return "\n".join(lines)


def _breakdown_lines(title: str, g: GroupBreakdown) -> list[str]:
    first, second = g.names
    lines = [f"per {title} at threshold {g.threshold:.3f}:"]
    for row in g.groups:
        lines.append(
            f"  {row.group:<12} {first} {output.fmt(row.fmr)} (n={row.n_impostor})  "
            f"{second} {output.fmt(row.fnmr)} (n={row.n_genuine})"
        )
    for name, d in ((first, g.fmr_disparity), (second, g.fnmr_disparity)):
        ratio = "-" if d.ratio is None else ("inf" if d.ratio == float("inf") else f"{d.ratio:.2f}")
        lines.append(f"  {name} worst/best: {ratio} ({d.worst_group} vs {d.best_group})")
    return lines
