"""``faceindex models``: the registered detectors and embedders."""

from __future__ import annotations

import argparse
import dataclasses

from faceindex.cli import output
from faceindex.cli.context import CliContext
from faceindex.cli.exit_codes import OK
from faceindex.cli.options import Subparsers, add_json_option


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "models", help="list detectors and embedders", description="List available models."
    )
    add_json_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    from faceindex.config import Settings
    from faceindex.detection import DETECTORS
    from faceindex.embedding import EMBEDDERS, EmbedderSpec

    defaults = Settings()
    specs: list[EmbedderSpec] = [
        EMBEDDERS.get(name).spec  # type: ignore[attr-defined]
        for name in EMBEDDERS.names()
    ]
    detectors = DETECTORS.names()
    ctx.out.emit(
        {
            "detectors": detectors,
            "default_detector": defaults.detection.detector,
            "embedders": [dataclasses.asdict(s) for s in specs],
            "default_embedder": defaults.embedding.embedder,
        },
        output.models_text(
            detectors, defaults.detection.detector, specs, defaults.embedding.embedder
        ),
    )
    return OK
