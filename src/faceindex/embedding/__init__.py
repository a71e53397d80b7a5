"""Face embedding: the :class:`Embedder` protocol, model specs as data, and the registry.

An embedder owns its alignment (each model was trained on one canonical crop) and returns
L2-normalised vectors, so similarity is a dot product everywhere downstream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from faceindex.calibration import GenuineScores, ImpostorTail
from faceindex.errors import EmbeddingModelMismatchError
from faceindex.registry import Registry
from faceindex.types import Embedding, Face, FloatArray, ImageArray


@dataclass(frozen=True, slots=True)
class EmbedderSpec:
    """What an embedder is, as data: no branches on model names anywhere else.

    ``threshold`` is a cosine similarity: two faces match when their similarity is at
    least this. It was calibrated on data held out from tuning for ``target_fmr`` (the
    false match rate it aims at); ``calibration`` says on what.
    """

    name: str
    model_id: str
    dim: int
    input_size: int
    threshold: float
    target_fmr: float
    calibration: str
    licence: str
    #: A fixed open-set identification threshold on the aggregated person score (None:
    #: use ``impostor_tail`` if set, else ``threshold``).
    identify_threshold: float | None = None
    #: The tail of the person-level impostor score (mean-top2 rule), from which the
    #: open-set threshold is set for the gallery's size (:mod:`faceindex.calibration`).
    impostor_tail: ImpostorTail | None = None
    #: Person-level scores of genuine probes (mean-top2), for the expected FNIR.
    genuine: GenuineScores | None = None


@runtime_checkable
class TemplateConverter(Protocol):
    """An embedder that can take templates of another model as its own, exactly."""

    def convert(self, vectors: FloatArray, model_id: str) -> FloatArray | None:
        """``vectors`` of ``model_id`` in this embedder's space, or None if not possible."""
        ...


@runtime_checkable
class Embedder(Protocol):
    spec: EmbedderSpec

    def embed(self, image: ImageArray, faces: Sequence[Face]) -> FloatArray:
        """``(len(faces), spec.dim)`` float32 L2-normalised vectors, one per face."""
        ...

    def warm_up(self) -> None: ...


@runtime_checkable
class BatchEmbedder(Embedder, Protocol):
    """An embedder that can run the faces of several photos through its network at once
    (one batch instead of one per photo: the network's fixed cost per call is paid once)."""

    def embed_many(self, items: Sequence[tuple[ImageArray, Sequence[Face]]]) -> list[FloatArray]:
        """``embed(image, faces)`` for each item, in one batch."""
        ...


@runtime_checkable
class NormReportingEmbedder(Embedder, Protocol):
    """An embedder that also gives, per face, the norm of SFace's output before
    L2-normalisation: how strongly the network responded to the face. Faces it cannot
    read (blurred, dark, masked) land nearer the origin (MagFace's observation), which
    makes the norm a quality signal (:func:`faceindex.quality.embedding_quality_score`,
    fitted to this norm of the float32 SFace graph)."""

    def embed_with_norms(
        self, image: ImageArray, faces: Sequence[Face]
    ) -> tuple[FloatArray, FloatArray]:
        """``embed(image, faces)`` and the ``(len(faces),)`` raw norms."""
        ...

    def embed_many_with_norms(
        self, items: Sequence[tuple[ImageArray, Sequence[Face]]]
    ) -> list[tuple[FloatArray, FloatArray]]:
        """:meth:`embed_with_norms` for each item, in one batch."""
        ...


def embed_many(
    embedder: Embedder, items: Sequence[tuple[ImageArray, Sequence[Face]]]
) -> list[FloatArray]:
    """Each item's vectors: in one batch when the embedder can, else photo by photo."""
    if isinstance(embedder, BatchEmbedder):
        return embedder.embed_many(items)
    return [embedder.embed(image, faces) for image, faces in items]


def split_rows(vectors: FloatArray, counts: Sequence[int]) -> list[FloatArray]:
    """``vectors`` cut into consecutive blocks of ``counts`` rows."""
    ends = np.cumsum(counts)
    return [vectors[end - n : end] for n, end in zip(counts, ends, strict=True)]


#: Every factory takes the keyword arguments ``threads: int | None``, ``flip: bool`` and
#: ``cache_dir: Path | None`` (``None``: :func:`faceindex.models.cache.default_cache_dir`;
#: where derived model files such as the dlib ONNX graph are kept).
EMBEDDERS: Registry[Callable[..., Embedder]] = Registry("embedder")
EMBEDDERS.register("sface", "faceindex.embedding.sface:SFaceEmbedder")
EMBEDDERS.register("dlib-resnet", "faceindex.embedding.dlib_resnet.embedder:DlibResnetEmbedder")
EMBEDDERS.register("fusion", "faceindex.embedding.fusion:FusionEmbedder")
EMBEDDERS.register("fusion-v1", "faceindex.embedding.fusion:FusionV1Embedder")
#: Deterministic test backend (no model): embeds the synthetic faces of
#: :mod:`faceindex.testing.synthetic` so that one person's photos agree, in microseconds.
EMBEDDERS.register("fake", "faceindex.testing.fakes:FakeEmbedder")


def l2_normalise(vectors: np.ndarray) -> FloatArray:
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    out: FloatArray = (v / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def similarity(a: Embedding, b: Embedding) -> float:
    """Cosine similarity in [-1, 1]; refuses embeddings of different models."""
    if a.model_id != b.model_id:
        raise EmbeddingModelMismatchError(
            f"cannot compare embeddings of {a.model_id!r} and {b.model_id!r}",
            a=a.model_id,
            b=b.model_id,
        )
    return float(np.clip(np.dot(a.vector, b.vector), -1.0, 1.0))
