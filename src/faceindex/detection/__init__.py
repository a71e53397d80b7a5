"""Face detection: the :class:`Detector` protocol and the registry of backends.

Every backend returns faces in original-image pixels, sorted by descending box area, with
5 landmarks where it can (YuNet natively; dlib's detectors through dlib's 5-point shape
predictor), and drops faces smaller than ``min_face_px``.

Backends: :mod:`~faceindex.detection.yunet` (a package: detector and output decoder),
:mod:`~faceindex.detection.dlib` (HOG and MMOD-CNN), and ``fake``
(:class:`faceindex.testing.fakes.FakeDetector`, for fast logic tests). Every backend takes
the keyword arguments ``min_face_px`` and ``score_threshold``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from faceindex.registry import Registry
from faceindex.types import Face, ImageArray


@runtime_checkable
class Detector(Protocol):
    name: str

    def detect(self, image: ImageArray) -> tuple[Face, ...]:
        """Every face in ``image`` (``(H, W, 3)`` uint8 RGB), largest first."""
        ...

    def warm_up(self) -> None:
        """Load the model now (it otherwise loads on the first call)."""
        ...


DETECTORS: Registry[Callable[..., Detector]] = Registry("detector")
DETECTORS.register("yunet", "faceindex.detection.yunet.detector:YuNetDetector")
DETECTORS.register("dlib-hog", "faceindex.detection.dlib:DlibHogDetector")
DETECTORS.register("dlib-cnn", "faceindex.detection.dlib:DlibCnnDetector")
#: Deterministic test backend (no model): finds the flat-coloured squares that
#: :mod:`faceindex.testing.synthetic` draws on a uniform background, in milliseconds.
DETECTORS.register("fake", "faceindex.testing.fakes:FakeDetector")


def sort_largest_first(faces: list[Face]) -> tuple[Face, ...]:
    return tuple(sorted(faces, key=lambda f: f.bbox.area, reverse=True))
