"""dlib's ResNet face descriptor (the model behind face_recognition), 128-d.

Alignment is dlib's own: ``dlib.get_face_chip`` (150x150, padding 0.25) from a dlib
5-point shape. Faces that come with YuNet's five points get a dlib shape by running dlib's
5-point predictor in a box placed from those points, because the chip's geometry is
defined by that predictor's points.

Two backends compute the same descriptor: ``onnx`` (default: the network ported to an
ONNX graph, :mod:`~faceindex.embedding.dlib_resnet.onnx_graph`, built once into
``cache_dir``; batched, multi-core, releases the GIL) and ``dlib`` (dlib's own call, the
reference). Vectors are L2-normalised here; dlib's customary 0.6 Euclidean threshold on
raw descriptors corresponds roughly to a cosine of 0.82 on normalised ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from faceindex.embedding import EmbedderSpec, l2_normalise, split_rows
from faceindex.embedding.specs import DLIB_RESNET
from faceindex.errors import InvalidInputError
from faceindex.models import catalog
from faceindex.models.dlib_models import load_shape_predictor5
from faceindex.models.lazy import Lazy
from faceindex.types import Face, FloatArray, ImageArray, LandmarkScheme

Backend = Literal["onnx", "dlib"]


def _five_point_to_rect(points: np.ndarray) -> tuple[int, int, int, int]:
    """A dlib-HOG-like box from ArcFace-order points (fitted on dev photos, see tests)."""
    eyes = points[0:2].mean(0)
    mouth = points[3:5].mean(0)
    eye_mouth = float(np.linalg.norm(mouth - eyes))
    inter_ocular = float(np.linalg.norm(points[1] - points[0]))
    side = 1.9 * max(eye_mouth, 0.9 * inter_ocular)
    cx, cy = (eyes + mouth) / 2.0 + np.array([0.0, 0.05 * side])
    half = side / 2.0
    return round(cx - half), round(cy - half), round(cx + half), round(cy + half)


class DlibResnetEmbedder:
    spec: EmbedderSpec = DLIB_RESNET

    def __init__(
        self,
        *,
        threads: int | None = None,
        backend: Backend = "onnx",
        flip: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        if backend not in ("onnx", "dlib"):
            raise InvalidInputError(f"unknown dlib-resnet backend {backend!r}; valid: onnx, dlib")
        self.threads = threads
        self.backend = backend
        self.flip = flip
        #: Where the ``onnx`` backend keeps the graph it builds from dlib's weights (``None``:
        #: :func:`~faceindex.models.cache.default_cache_dir`).
        self.cache_dir = cache_dir
        self._shape5: Lazy[Any] = Lazy(load_shape_predictor5)
        self._net: Lazy[Any] = Lazy(self._load_net)

    def _load_net(self) -> Any:
        if self.backend == "onnx":
            from faceindex.embedding.dlib_resnet.onnx_graph import DlibResnetOnnx

            return DlibResnetOnnx(intra_op_threads=self.threads, cache_dir=self.cache_dir)
        import dlib

        return dlib.face_recognition_model_v1(str(catalog.DLIB_RESNET.verified_path()))

    def warm_up(self) -> None:
        self._shape5.get()
        net = self._net.get()
        if self.backend == "onnx":
            net.embed_chips(np.zeros((1, 150, 150, 3), dtype=np.uint8))

    def _shape(self, image: ImageArray, face: Face) -> Any:
        import dlib

        if face.landmarks is None:
            raise InvalidInputError("dlib-resnet needs landmarks to align a face")
        b = face.bbox
        if face.landmarks.scheme is LandmarkScheme.DLIB_5:
            rect = dlib.rectangle(round(b.x1), round(b.y1), round(b.x2), round(b.y2))
            pts = dlib.points([dlib.point(round(x), round(y)) for x, y in face.landmarks.points])
            return dlib.full_object_detection(rect, pts)
        if face.landmarks.scheme is LandmarkScheme.FIVE_POINT:
            rect = dlib.rectangle(*_five_point_to_rect(face.landmarks.points))
            return self._shape5.get()(image, rect)
        raise InvalidInputError(f"dlib-resnet cannot align {face.landmarks.scheme} landmarks")

    def chip_details(self, image: ImageArray, face: Face) -> Any:
        """dlib's ``chip_details`` (rect, angle, rows, cols) of the chip :meth:`chips` cuts
        for ``face`` (the privacy cloak rebuilds the crop from it as an affine warp)."""
        import dlib

        return dlib.get_face_chip_details(self._shape(image, face), 150, 0.25)

    def chips(self, image: ImageArray, faces: Sequence[Face]) -> list[ImageArray]:
        import dlib

        return [
            np.ascontiguousarray(dlib.get_face_chip(image, self._shape(image, f), 150, 0.25))
            for f in faces
        ]

    def embed_chips(self, chips: Sequence[ImageArray]) -> FloatArray:
        if not chips:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        batch = np.stack(chips)
        if self.flip:
            batch = np.concatenate([batch, batch[:, :, ::-1]])
        net = self._net.get()
        if self.backend == "onnx":
            raw = np.asarray(net.embed_chips(np.ascontiguousarray(batch)), dtype=np.float32)
        else:
            raw = np.array(
                [net.compute_face_descriptor(np.ascontiguousarray(c)) for c in batch],
                dtype=np.float32,
            )
        if self.flip:
            n = len(chips)
            raw = l2_normalise(raw[:n]) + l2_normalise(raw[n:])
        return l2_normalise(raw)

    def embed(self, image: ImageArray, faces: Sequence[Face]) -> FloatArray:
        return self.embed_chips(self.chips(image, faces))

    def embed_many(self, items: Sequence[tuple[ImageArray, Sequence[Face]]]) -> list[FloatArray]:
        chips = [c for image, faces in items for c in self.chips(image, faces)]
        return split_rows(self.embed_chips(chips), [len(faces) for _, faces in items])
