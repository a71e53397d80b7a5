"""Fusion of SFace and dlib's ResNet: one 256-d vector whose cosine is a weighted mean.

Each model's normalised vector is scaled by ``sqrt(w_i)`` and the two are concatenated;
because both halves are unit vectors, the dot product of two fused vectors is
``w_sface * cos_sface + w_dlib * cos_dlib`` with ``w_sface + w_dlib = 1``: score-level
fusion that still lives in one vector, so galleries and indexes need no special case.
The two networks err on different faces (different training data and crops), which is
why the fused score separates genuine from impostor pairs better than either alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from faceindex.embedding import EmbedderSpec
from faceindex.embedding.dlib_resnet.embedder import Backend, DlibResnetEmbedder
from faceindex.embedding.sface import SFaceEmbedder
from faceindex.embedding.specs import FUSION, FUSION_V1
from faceindex.types import Face, FloatArray, ImageArray

#: SFace's weight in each fused model's score (dlib gets the rest), by model id: a vector of
#: one can be turned into the other's exactly, since each half is a scaled unit vector.
WEIGHTS: dict[str, float] = {FUSION.model_id: 0.5, FUSION_V1.model_id: 0.25}


class FusionEmbedder:
    spec: EmbedderSpec = FUSION

    def __init__(
        self,
        *,
        threads: int | None = None,
        dlib_backend: Backend = "onnx",
        flip: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        self.sface = SFaceEmbedder(threads=threads, flip=flip, cache_dir=cache_dir)
        self.dlib = DlibResnetEmbedder(
            threads=threads, backend=dlib_backend, flip=flip, cache_dir=cache_dir
        )

    def warm_up(self) -> None:
        self.sface.warm_up()
        self.dlib.warm_up()

    def embed(self, image: ImageArray, faces: Sequence[Face]) -> FloatArray:
        return self.embed_with_norms(image, faces)[0]

    def embed_with_norms(
        self, image: ImageArray, faces: Sequence[Face]
    ) -> tuple[FloatArray, FloatArray]:
        """The fused vectors and SFace's raw norms (the quality signal)."""
        sface, norms = self.sface.embed_with_norms(image, faces)
        return self.fuse(sface, self.dlib.embed(image, faces)), norms

    def embed_many(self, items: Sequence[tuple[ImageArray, Sequence[Face]]]) -> list[FloatArray]:
        return [vectors for vectors, _ in self.embed_many_with_norms(items)]

    def embed_many_with_norms(
        self, items: Sequence[tuple[ImageArray, Sequence[Face]]]
    ) -> list[tuple[FloatArray, FloatArray]]:
        sface, dlib = self.sface.embed_many_with_norms(items), self.dlib.embed_many(items)
        return [(self.fuse(s, d), n) for (s, n), d in zip(sface, dlib, strict=True)]

    @property
    def sface_weight(self) -> float:
        return WEIGHTS[self.spec.model_id]

    def fuse(self, sface: FloatArray, dlib: FloatArray) -> FloatArray:
        ws = math.sqrt(self.sface_weight)
        wd = math.sqrt(1.0 - self.sface_weight)
        return np.concatenate([ws * sface, wd * dlib], axis=1).astype(np.float32)

    def convert(self, vectors: FloatArray, model_id: str) -> FloatArray | None:
        """Templates of another fused model as this model's, exactly; None if not possible.

        A fused vector is ``[sqrt(w) * sface, sqrt(1 - w) * dlib]`` with both halves unit
        vectors, so re-weighting the halves moves a template between fusion weights
        without its photo.
        """
        old = WEIGHTS.get(model_id)
        if old is None:
            return None
        half = vectors.shape[1] // 2
        sface = vectors[:, :half] / math.sqrt(old)
        dlib = vectors[:, half:] / math.sqrt(1.0 - old)
        return self.fuse(sface, dlib)


class FusionV1Embedder(FusionEmbedder):
    """The fusion of faceindex 0.1 (0.25 SFace), for galleries enrolled with it."""

    spec: EmbedderSpec = FUSION_V1
