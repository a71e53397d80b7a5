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
from faceindex.embedding.specs import FUSION
from faceindex.types import Face, FloatArray, ImageArray


class FusionEmbedder:
    spec: EmbedderSpec = FUSION

    #: Weight of SFace's cosine in the fused score (dlib gets the rest); measured on the
    #: glint6 calibration half by benchmarks/calibrate.py.
    sface_weight = 0.25

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
        return self.fuse(self.sface.embed(image, faces), self.dlib.embed(image, faces))

    def fuse(self, sface: FloatArray, dlib: FloatArray) -> FloatArray:
        ws = math.sqrt(self.sface_weight)
        wd = math.sqrt(1.0 - self.sface_weight)
        return np.concatenate([ws * sface, wd * dlib], axis=1).astype(np.float32)
