"""SFace (OpenCV Zoo, 2021dec): 128-d embeddings from 112x112 ArcFace-aligned RGB crops.

The shipped graph is block-quantized int8; :mod:`faceindex.models.onnx_float` turns it
into a float32 graph once, at load, so onnxruntime no longer dequantizes on every call.
Input is RGB, raw 0-255 floats, NCHW.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from faceindex.alignment import arcface_crop
from faceindex.embedding import EmbedderSpec, l2_normalise, split_rows
from faceindex.embedding.specs import SFACE
from faceindex.errors import InvalidInputError
from faceindex.models import catalog
from faceindex.models.lazy import Lazy
from faceindex.types import Face, FloatArray, ImageArray


class SFaceEmbedder:
    spec: EmbedderSpec = SFACE

    def __init__(
        self, *, threads: int | None = None, flip: bool = False, cache_dir: Path | None = None
    ) -> None:
        self.threads = threads
        #: Accepted like every registered embedder's; unused, since SFace's float32 graph is
        #: built in memory and nothing is written to the cache folder.
        self.cache_dir = cache_dir
        #: Average with the mirrored crop's embedding (costs a second pass).
        self.flip = flip
        self._session: Lazy[Any] = Lazy(self._load)

    def _load(self) -> Any:
        from faceindex.models.onnx_float import load_float32_session

        return load_float32_session(
            catalog.SFACE.verified_path(), threads=self.threads, dynamic_hw=False
        )

    def warm_up(self) -> None:
        self._session.get()

    def crops(self, image: ImageArray, faces: Sequence[Face]) -> list[ImageArray]:
        out = []
        for face in faces:
            if face.landmarks is None:
                raise InvalidInputError("SFace needs landmarks to align a face")
            out.append(arcface_crop(image, face.landmarks, size=112))
        return out

    def embed_crops(self, crops: Sequence[ImageArray]) -> FloatArray:
        return self.embed_crops_with_norms(crops)[0]

    def embed_crops_with_norms(self, crops: Sequence[ImageArray]) -> tuple[FloatArray, FloatArray]:
        """The crops' vectors and the norms of the network's output before normalisation
        (of the crop as given, also with ``flip``)."""
        if not crops:
            return np.zeros((0, self.spec.dim), dtype=np.float32), np.zeros(0, np.float32)
        batch = np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2)
        if self.flip:
            batch = np.concatenate([batch, batch[:, :, :, ::-1]])
        session = self._session.get()
        name = session.get_inputs()[0].name
        raw = np.asarray(session.run(None, {name: np.ascontiguousarray(batch)})[0])
        raw = raw.reshape(raw.shape[0], -1)
        n = len(crops)
        norms = np.linalg.norm(raw[:n], axis=1).astype(np.float32)
        if self.flip:
            raw = l2_normalise(raw[:n]) + l2_normalise(raw[n:])
        return l2_normalise(raw), norms

    def embed(self, image: ImageArray, faces: Sequence[Face]) -> FloatArray:
        return self.embed_crops(self.crops(image, faces))

    def embed_with_norms(
        self, image: ImageArray, faces: Sequence[Face]
    ) -> tuple[FloatArray, FloatArray]:
        return self.embed_crops_with_norms(self.crops(image, faces))

    def embed_many(self, items: Sequence[tuple[ImageArray, Sequence[Face]]]) -> list[FloatArray]:
        return [vectors for vectors, _ in self.embed_many_with_norms(items)]

    def embed_many_with_norms(
        self, items: Sequence[tuple[ImageArray, Sequence[Face]]]
    ) -> list[tuple[FloatArray, FloatArray]]:
        crops = [c for image, faces in items for c in self.crops(image, faces)]
        vectors, norms = self.embed_crops_with_norms(crops)
        counts = [len(faces) for _, faces in items]
        return list(zip(split_rows(vectors, counts), split_rows(norms, counts), strict=True))
