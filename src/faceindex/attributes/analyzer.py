"""One front door for the attributes: pick the backends for the attributes asked for,
run each once over the faces of an image, merge their answers.

A :class:`FaceAnalyzer` is cheap to build; its backends load their models on first use
(or :meth:`FaceAnalyzer.warm_up`), and the dlib predictors are shared between them. It
keeps no per-call state, so one analyzer serves concurrent requests.

When one call asks for age or gender and for pose or eyes, dlib's 68 landmarks are
predicted once and serve both (:meth:`~faceindex.attributes.shapes.DlibShapes.with_68`).

The backends run one after the other on the caller's thread. Running them on two threads
was measured and gained nothing (``docs/attributes.md``, "Time per face"): dlib's
predictors, most of the work, hold Python's GIL for their whole call, so the nets that
release it (ONNX Runtime, LiteRT) found few moments to overlap with, and the handovers cost
more than they saved. A caller with many photos gets more from one analyzer per process.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterable, Mapping, Sequence

from faceindex.attributes import (
    ALL_ATTRIBUTES,
    ATTRIBUTE_ESTIMATORS,
    DEFAULT_BACKENDS,
    AnalyzedFace,
    Attribute,
    AttributeEstimator,
    FaceAttributes,
)
from faceindex.attributes.shapes import DlibShapes
from faceindex.types import Face, ImageArray


class FaceAnalyzer:
    """Estimates ``attributes`` (default: all) of faces, with ``backends`` choosing the
    estimator of each attribute (default :data:`~faceindex.attributes.DEFAULT_BACKENDS`)."""

    def __init__(
        self,
        attributes: Iterable[Attribute] | None = None,
        *,
        backends: Mapping[Attribute, str] | None = None,
    ) -> None:
        self.attributes = frozenset(ALL_ATTRIBUTES if attributes is None else attributes)
        chosen = {**DEFAULT_BACKENDS, **(backends or {})}
        names = sorted({chosen[a] for a in self.attributes})
        self._shapes = DlibShapes()
        self.estimators: tuple[AttributeEstimator, ...] = tuple(
            _build(name, self._shapes) for name in names
        )

    def warm_up(self) -> None:
        for estimator in self.estimators:
            estimator.warm_up()

    def estimate(
        self,
        image: ImageArray,
        faces: Sequence[Face],
        attributes: Iterable[Attribute] | None = None,
    ) -> tuple[FaceAttributes, ...]:
        """The attributes of each face of ``image``, in the faces' order: ``attributes``
        (default: the analyzer's own; any it was not built for are left out)."""
        return self.estimate_timed(image, faces, attributes)[0]

    def estimate_timed(
        self,
        image: ImageArray,
        faces: Sequence[Face],
        attributes: Iterable[Attribute] | None = None,
    ) -> tuple[tuple[FaceAttributes, ...], dict[str, float]]:
        """:meth:`estimate`, and the seconds each backend took (for benchmarks)."""
        wanted = self.attributes if attributes is None else self.attributes & set(attributes)
        jobs = [(e, wanted & e.provides) for e in self.estimators if wanted & e.provides]
        landmarked = [e for e, _ in jobs if _dlib_points(e)]
        shared: Sequence[Face] = faces
        if len(landmarked) > 1 and any(_dlib_points(e) == 68 for e in landmarked):
            shared = self._shapes.with_68(image, faces)
        outcomes = [_run(e, image, shared if e in landmarked else faces, a) for e, a in jobs]
        results = [FaceAttributes() for _ in faces]
        timings: dict[str, float] = {}
        for name, found, seconds in outcomes:
            timings[name] = seconds
            results = [r.merged(f) for r, f in zip(results, found, strict=True)]
        return tuple(results), timings

    def analyze(
        self,
        image: ImageArray,
        faces: Sequence[Face],
        attributes: Iterable[Attribute] | None = None,
    ) -> tuple[AnalyzedFace, ...]:
        """Each face with its attributes."""
        return tuple(
            AnalyzedFace(face, attrs)
            for face, attrs in zip(faces, self.estimate(image, faces, attributes), strict=True)
        )


def _build(name: str, shapes: DlibShapes) -> AttributeEstimator:
    """The backend ``name``, given the shared dlib predictors if it takes them."""
    factory = ATTRIBUTE_ESTIMATORS.get(name)
    if "shapes" in inspect.signature(factory).parameters:
        return factory(shapes=shapes)
    return factory()


_Outcome = tuple[str, tuple[FaceAttributes, ...], float]


def _run(
    estimator: AttributeEstimator,
    image: ImageArray,
    faces: Sequence[Face],
    asked: frozenset[Attribute],
) -> _Outcome:
    start = time.perf_counter()
    found = estimator.estimate(image, faces, asked)
    return estimator.name, found, time.perf_counter() - start


def _dlib_points(estimator: AttributeEstimator) -> int:
    """The dlib landmarks a backend runs a predictor for (0: none); see
    :class:`~faceindex.attributes.AttributeEstimator`."""
    return int(getattr(estimator, "dlib_points", 0))
