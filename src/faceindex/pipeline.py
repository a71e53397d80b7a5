"""The recognition pipeline: image -> detect -> quality -> align + embed -> compare.

Orchestration only: every stage is a registered backend chosen by settings. Backends load
their models lazily on first use (or on :meth:`Pipeline.warm_up`), so building a pipeline
is cheap and ``import faceindex`` loads nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from faceindex.config import Settings
from faceindex.detection import DETECTORS, Detector
from faceindex.embedding import EMBEDDERS, Embedder, similarity
from faceindex.errors import NoFaceError
from faceindex.io.image import ImageLimits, ImageSource, load_image
from faceindex.quality import QualityThresholds, assess
from faceindex.types import Embedding, Face, ImageArray, Verification


def _label(source: ImageSource) -> str:
    return str(source) if isinstance(source, str | Path) else f"<{type(source).__name__}>"


class Pipeline:
    def __init__(
        self,
        *,
        detector: Detector,
        embedder: Embedder,
        threshold: float | None = None,
        limits: ImageLimits | None = None,
        quality: QualityThresholds | None = None,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.threshold = embedder.spec.threshold if threshold is None else threshold
        self.limits = limits or ImageLimits()
        self.quality_thresholds = quality or QualityThresholds()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Pipeline:
        s = settings or Settings()
        det_kwargs: dict[str, object] = {"min_face_px": s.detection.min_face_px}
        if s.detection.score_threshold is not None:
            det_kwargs["score_threshold"] = s.detection.score_threshold
        detector = DETECTORS.get(s.detection.detector)(**det_kwargs)
        embedder = EMBEDDERS.get(s.embedding.embedder)(
            threads=s.runtime.threads,
            flip=s.embedding.flip,
            cache_dir=Path(s.runtime.cache_dir).expanduser() if s.runtime.cache_dir else None,
        )
        limits = ImageLimits(s.runtime.max_image_pixels, s.runtime.max_image_bytes)
        return cls(
            detector=detector, embedder=embedder, threshold=s.embedding.threshold, limits=limits
        )

    @property
    def model_id(self) -> str:
        return self.embedder.spec.model_id

    def warm_up(self) -> None:
        self.detector.warm_up()
        self.embedder.warm_up()

    def load(self, source: ImageSource) -> ImageArray:
        return load_image(source, limits=self.limits)

    def detect(self, source: ImageSource | ImageArray) -> tuple[Face, ...]:
        """Every face with its box, landmarks, detector score and quality, largest first."""
        image = self.load(source)
        return self._with_quality(image, self.detector.detect(image))

    def analyze(self, source: ImageSource) -> tuple[Face, ...]:
        """Every face, with quality and embedding (all faces of the photo in one batch)."""
        image = self.load(source)
        faces = self._with_quality(image, self.detector.detect(image))
        return self.embed_faces(image, faces)

    def embed_faces(self, image: ImageArray, faces: Sequence[Face]) -> tuple[Face, ...]:
        if not faces:
            return ()
        vectors = self.embedder.embed(image, faces)
        model_id = self.model_id
        return tuple(
            dataclasses.replace(face, embedding=Embedding(vec, model_id))
            for face, vec in zip(faces, vectors, strict=True)
        )

    def largest_face(self, source: ImageSource) -> Face:
        """The largest face of a photo, embedded; :class:`NoFaceError` if there is none."""
        image = self.load(source)
        faces = self.detector.detect(image)
        if not faces:
            label = _label(source)
            raise NoFaceError(f"{label}: no face found", path=label)
        face = self._with_quality(image, faces[:1])
        return self.embed_faces(image, face)[0]

    def compare(self, a: Embedding, b: Embedding) -> Verification:
        return Verification(similarity(a, b), self.threshold, a.model_id)

    def verify(self, a: ImageSource, b: ImageSource) -> Verification:
        """Are the largest faces of two photos the same person?"""
        fa, fb = self.largest_face(a), self.largest_face(b)
        assert fa.embedding is not None and fb.embedding is not None  # set by embed_faces
        return self.compare(fa.embedding, fb.embedding)

    def _with_quality(self, image: ImageArray, faces: Sequence[Face]) -> tuple[Face, ...]:
        return tuple(
            dataclasses.replace(f, quality=assess(image, f, self.quality_thresholds)) for f in faces
        )
