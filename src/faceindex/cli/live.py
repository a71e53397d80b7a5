"""``--require-live``: a photo is used only when every face in it passes passive liveness."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from faceindex.io.image import ImageSource
    from faceindex.liveness import LivenessChecker
    from faceindex.pipeline import Pipeline
    from faceindex.types import ImageArray


@functools.cache
def _checker() -> LivenessChecker:
    """The default checker, built once per process (its model loads on first use)."""
    from faceindex.liveness import DEFAULT_CHECKER, LIVENESS_CHECKERS

    return LIVENESS_CHECKERS.get(DEFAULT_CHECKER)()


def live_image(pipeline: Pipeline, source: ImageSource, label: str) -> ImageArray:
    """``source`` decoded, once every face the detector finds in it is judged live;
    :class:`~faceindex.errors.SpoofDetectedError` naming the first face that is not."""
    from faceindex.liveness import require_live

    image = pipeline.load(source)
    faces = pipeline.find_faces(image)
    require_live(_checker().check(image, faces), label=label)
    return image
