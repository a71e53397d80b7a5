"""``faceindex cloak IN OUT``: protect photos against face recognition (the privacy cloak).

``IN`` a photo: ``OUT`` is written (its suffix picks the format). ``IN`` a folder: every
photo under it is cloaked into the same place under the folder ``OUT``; outputs that exist
already are skipped (unless ``--overwrite``), so a stopped run goes on where it stopped.
See docs/cloak.md for what the cloak does, and what it does not promise.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK, PARTIAL_FAILURE, exit_code_for
from faceindex.cli.options import Subparsers, add_model_options, count
from faceindex.cli.output import box_text, plural

if TYPE_CHECKING:
    from faceindex.cloak.cloaker import Cloaker
    from faceindex.cloak.report import CloakedFace, CloakReport

#: The strengths ``--strength`` takes (kept here so that ``--help`` imports no library).
STRENGTHS = ("low", "medium", "high")


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "cloak",
        help="protect photos against face recognition (a nearly invisible change)",
        description="Cloak every face of a photo (or of every photo under a folder): a "
        "small change, computed through faceindex's recognisers, so that recognisers no "
        "longer link the faces to the person's other photos. Reports, per face and model, "
        "the similarity to the clean face before and after, and PSNR/SSIM. Needs the "
        "cloak extra (pip install 'faceindex[cloak]'). docs/cloak.md says what it does "
        "not promise.",
    )
    p.add_argument("input", metavar="IN", help="a photo, or a folder of photos")
    p.add_argument(
        "output",
        metavar="OUT",
        help="the cloaked photo (.png, .jpg, .webp: the suffix picks the format), or a "
        "folder for the cloaked photos when IN is a folder",
    )
    p.add_argument(
        "--strength",
        choices=STRENGTHS,
        default="medium",
        help="how strong a change: low, medium (default), high (see docs/cloak.md)",
    )
    p.add_argument("--seed", type=count, default=0, metavar="N", help="random seed (default 0)")
    p.add_argument(
        "--quality", type=count, default=95, metavar="Q", help="JPEG quality (default 95)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="folder mode: cloak photos whose output exists already (default: skip them)",
    )
    add_model_options(p, embedder=False)
    p.set_defaults(handler=run)


def make_cloaker(ctx: CliContext) -> Cloaker:
    """The cloaker of a run (tests replace this to use stand-in nets)."""
    from faceindex.cloak.cloaker import Cloaker

    return Cloaker.from_settings(ctx.settings, pipeline=ctx.pipeline)


def face_text(i: int, face: CloakedFace) -> str:
    parts = []
    for model, after in face.similarity_after.items():
        before = face.similarity_before.get(model, 1.0)
        threshold = face.thresholds.get(model)
        verdict = ""
        if threshold is not None:
            verdict = " protected" if after < threshold else " STILL MATCHES"
            verdict = f" (threshold {threshold:.3f},{verdict})"
        parts.append(f"{model} {before:.3f} -> {after:.3f}{verdict}")
    quality = f"PSNR {face.psnr:.1f} dB, SSIM {face.ssim:.3f}"
    return f"  face {i} box {box_text(face.bbox)}: " + "; ".join(parts) + f"; {quality}"


def report_text(report: CloakReport) -> str:
    head = (
        f"{report.out}: cloaked {plural(len(report.faces), 'face')} of {report.path} "
        f"({report.strength}, {report.seconds:.1f} s, {report.cpu_seconds:.1f} CPU s; whole "
        f"photo PSNR {report.psnr:.1f} dB, "
        f"SSIM {report.ssim:.3f})"
    )
    return "\n".join([head, *(face_text(i, f) for i, f in enumerate(report.faces))])


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from faceindex.cloak.cloaker import require_torch
    from faceindex.errors import InvalidInputError, NotFoundError

    src, dst = Path(args.input), Path(args.output)
    if not src.exists():
        raise NotFoundError(f"{src}: no such file or folder", path=str(src))
    if args.quality < 1 or args.quality > 100:
        return ctx.out.usage("--quality must be from 1 to 100")
    require_torch()
    if src.is_dir():
        return _folder(args, ctx, src, dst)
    from faceindex.cloak.files import output_format

    output_format(dst)  # a bad suffix fails before minutes of work
    if dst.exists() and dst.resolve() == src.resolve():
        raise InvalidInputError(
            f"{dst}: the output is the input photo; write the cloak to another file",
            path=str(dst),
        )
    cloaker = make_cloaker(ctx)
    with ctx.out.progress("cloaking", unit="steps") as bar:
        report = cloaker.cloak_file(
            src,
            dst,
            strength=args.strength,
            seed=args.seed,
            quality=args.quality,
            progress=bar.update,
        )
    ctx.out.emit(report.as_dict(), lambda: report_text(report))
    return OK


def _folder(args: argparse.Namespace, ctx: CliContext, src: Path, dst: Path) -> int:
    from faceindex.cloak.folder import folder_jobs
    from faceindex.errors import ConfigError, FaceIndexError, ModelUnavailableError

    jobs = folder_jobs(src, dst)
    cloaker = make_cloaker(ctx)
    done = skipped = failed = 0
    last_code = OK
    bar_context: Any = ctx.out.progress("cloaking", total=len(jobs), unit="photos")
    with bar_context if jobs else contextlib.nullcontext() as bar:
        for job in jobs:
            record: dict[str, Any] = {"path": str(job.src), "out": str(job.dst)}
            if job.dst.exists() and not args.overwrite:
                skipped += 1
                ctx.out.emit({**record, "skipped": True}, None)
            else:
                try:
                    report = cloaker.cloak_file(
                        job.src,
                        job.dst,
                        strength=args.strength,
                        seed=args.seed,
                        quality=args.quality,
                    )
                except (ConfigError, ModelUnavailableError):
                    raise
                except FaceIndexError as exc:
                    failed += 1
                    last_code = exit_code_for(exc)
                    ctx.out.item_error(str(job.src), exc, **record)
                else:
                    done += 1
                    ctx.out.emit(report.as_dict(), lambda: report_text(report))  # noqa: B023
            if bar is not None:
                bar.advance()
    summary = f"cloaked {plural(done, 'photo')} into {dst}"
    if skipped:
        summary += f", skipped {skipped} already done (--overwrite to redo)"
    if failed:
        summary += f", {failed} failed"
    ctx.out.note(summary if jobs else f"{src}: no photos found")
    if failed == 0:
        return OK
    return last_code if len(jobs) == 1 else PARTIAL_FAILURE
