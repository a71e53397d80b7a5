"""One front door for the attributes: pick the backends for the attributes asked for,
run each once over the faces of an image, merge their answers.

A :class:`FaceAnalyzer` is cheap to build; its backends load their models on first use
(or :meth:`FaceAnalyzer.warm_up`), and the dlib predictors are shared between them. It
keeps no per-call state, so one analyzer serves concurrent requests.
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
        shapes = DlibShapes()
        self.estimators: tuple[AttributeEstimator, ...] = tuple(
            _build(name, shapes) for name in names
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
        results = [FaceAttributes() for _ in faces]
        timings: dict[str, float] = {}
        for estimator in self.estimators:
            asked = wanted & estimator.provides
            if not asked:
                continue
            start = time.perf_counter()
            found = estimator.estimate(image, faces, asked)
            timings[estimator.name] = time.perf_counter() - start
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
