"""``faceindex analyze IMG...``: expression, age, gender, head pose and eyes of each face.

The estimates are computed, printed and forgotten: nothing is stored (see
docs/attributes.md for what each model was trained on and how wrong it can be).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from faceindex.cli.batch import each_photo
from faceindex.cli.context import CliContext
from faceindex.cli.options import Subparsers, add_model_options
from faceindex.cli.output import box_text, plural

if TYPE_CHECKING:
    from faceindex.attributes import AnalyzedFace, Attribute

#: The names ``--attributes`` takes (kept here so that ``--help`` imports no library).
ATTRIBUTE_NAMES = ("expression", "age", "gender", "pose", "eyes")


def attribute_list(text: str) -> tuple[str, ...]:
    """``--attributes``: names from :data:`ATTRIBUTE_NAMES`, comma-separated, or ``all``."""
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    if names == ("all",):
        return ATTRIBUTE_NAMES
    unknown = [n for n in names if n not in ATTRIBUTE_NAMES]
    if unknown or not names:
        what = f"unknown attribute {unknown[0]!r}" if unknown else "no attribute given"
        raise argparse.ArgumentTypeError(f"{what}; valid: {', '.join(ATTRIBUTE_NAMES)}, all")
    return tuple(dict.fromkeys(names))


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="estimate expression, age, gender, head pose and eyes of every face",
        description="Estimate attributes of every face of each photo: expression (7 "
        "classes), apparent age, gender (as the model's two classes), head pose (yaw, "
        "pitch, roll in degrees) and whether each eye is open. Estimates are printed, "
        "never stored; docs/attributes.md says how wrong each can be.",
    )
    p.add_argument("images", nargs="+", metavar="IMG", help="photo files")
    p.add_argument(
        "--attributes",
        type=attribute_list,
        default=ATTRIBUTE_NAMES,
        metavar="LIST",
        help=f"comma-separated: {','.join(ATTRIBUTE_NAMES)} (default: all)",
    )
    add_model_options(p, embedder=False)
    p.set_defaults(handler=run)


def analyze_json(faces: Sequence[AnalyzedFace]) -> dict[str, Any]:
    return {"faces": [f.as_dict() for f in faces]}


def face_text(face: AnalyzedFace) -> str:
    """One face's attributes in words: ``male (0.99), age ~52 (46-60), happy (0.87), ...``."""
    a = face.attributes
    parts = []
    if a.gender is not None:
        parts.append(f"{a.gender.label} ({a.gender.score:.2f})")
    if a.age is not None:
        parts.append(f"age ~{a.age.years:.0f} ({a.age.low:.0f}-{a.age.high:.0f})")
    if a.expression is not None:
        parts.append(f"{a.expression.label} ({a.expression.score:.2f})")
    if a.pose is not None:
        p = a.pose
        yaw, pitch, roll = (round(v) for v in (p.yaw, p.pitch, p.roll))
        parts.append(f"yaw {yaw:+d}° pitch {pitch:+d}° roll {roll:+d}°")
    if a.eyes is not None:
        state = {True: "open", False: "closed"}
        e = a.eyes
        parts.append(
            f"eyes {state[e.left_open]}/{state[e.right_open]} (left/right)"
            if e.left_open != e.right_open
            else f"eyes {state[e.left_open]}"
        )
    return ", ".join(parts) if parts else "-"


def analyze_text(path: str, faces: Sequence[AnalyzedFace]) -> str:
    lines = [f"{path}: {plural(len(faces), 'face')}"]
    for i, f in enumerate(faces):  # numbered as detect numbers them: from 0, largest first
        lines.append(f"  face {i} box {box_text(f.face.bbox)}: {face_text(f)}")
    return "\n".join(lines)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from faceindex.attributes import Attribute
    from faceindex.attributes.analyzer import FaceAnalyzer
    from faceindex.errors import ModelUnavailableError

    wanted: frozenset[Attribute] = frozenset(Attribute(n) for n in args.attributes)
    analyzer = FaceAnalyzer(wanted)
    pipeline = ctx.pipeline

    def work(path: str) -> tuple[AnalyzedFace, ...]:
        image = pipeline.load(path)
        return analyzer.analyze(image, pipeline.find_faces(image))

    return each_photo(
        ctx,
        args.images,
        work,
        analyze_json,
        analyze_text,
        stop_on=(ModelUnavailableError,),
        description="analysing",
    )
