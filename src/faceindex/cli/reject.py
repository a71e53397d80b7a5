"""``--reject-below QUALITY``: the quality floor of ``verify`` and ``identify``.

A face whose quality score (0-1, as ``detect`` shows it) is under the floor gets the
decision ``unsure`` rather than a match or a non-match (docs/robustness.md).
"""

from __future__ import annotations

import argparse


def add_reject_below(p: argparse.ArgumentParser) -> None:
    """``--reject-below QUALITY``, shared by ``verify`` and ``identify``."""
    p.add_argument(
        "--reject-below",
        type=quality_floor,
        metavar="QUALITY",
        help="answer 'unsure' for a face whose quality score (0-1: the detector's "
        "confidence with the embedder's response to the face, as the JSON's 'quality' "
        "shows it) is under QUALITY, rather than a match or a non-match "
        "(docs/robustness.md: 0.5 leaves out 0.3%% of clean dev photo pairs and 10%% of "
        "damaged ones, halving the missed matches)",
    )


def quality_floor(text: str) -> float:
    """A quality score floor: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 0 to 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("quality scores run from 0 to 1")
    return value
