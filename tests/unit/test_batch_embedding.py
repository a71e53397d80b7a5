"""Several photos' faces embedded in one batch: same vectors, fewer network calls."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from faceindex.errors import ImageDecodeError, NoFaceError
from faceindex.pipeline import Pipeline
from faceindex.testing.fakes import FakeDetector, FakeEmbedder
from faceindex.types import Face, FloatArray, ImageArray


class CountingEmbedder(FakeEmbedder):
    """The fake embedder with a batch method that records each batch's photo count."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def embed_many(self, items: Sequence[tuple[ImageArray, Sequence[Face]]]) -> list[FloatArray]:
        self.batches.append(len(items))
        return [self.embed(image, faces) for image, faces in items]


def test_subjects_come_in_order_with_errors_in_place(
    photo_of: Callable[..., Path], tmp_path: Path
) -> None:
    embedder = CountingEmbedder()
    pipeline = Pipeline(detector=FakeDetector(), embedder=embedder)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    sources = [photo_of(1), broken, photo_of(2), photo_of(), photo_of(3), photo_of(1, variant=1)]
    got = list(pipeline.iter_subjects(sources, batch=2))
    assert isinstance(got[1], ImageDecodeError) and isinstance(got[3], NoFaceError)
    faces = [got[i] for i in (0, 2, 4, 5)]
    assert all(isinstance(f, Face) and f.embedding is not None for f in faces)
    one = [pipeline.subject_face(s) for s in (sources[0], sources[2], sources[4], sources[5])]
    for batched, single in zip(faces, one, strict=True):
        assert isinstance(batched, Face) and batched.bbox == single.bbox
        assert batched.embedding is not None and single.embedding is not None
        np.testing.assert_allclose(batched.embedding.vector, single.embedding.vector, atol=1e-6)
    # Batches of 2 pending photos (errors included), embedding only the readable ones.
    assert embedder.batches == [1, 1, 2]


def test_a_pixel_budget_closes_a_batch_early(photo_of: Callable[..., Path]) -> None:
    embedder = CountingEmbedder()
    pipeline = Pipeline(detector=FakeDetector(), embedder=embedder)
    sources = [photo_of(i) for i in range(1, 5)]
    list(pipeline.iter_subjects(sources, batch=16, batch_pixels=1))
    assert embedder.batches == [1, 1, 1, 1]
    embedder.batches.clear()
    list(pipeline.iter_subjects(sources, batch=16))
    assert embedder.batches == [4]


def test_an_embedder_without_a_batch_method_embeds_photo_by_photo(
    photo_of: Callable[..., Path],
) -> None:
    pipeline = Pipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    got = list(pipeline.iter_subjects([photo_of(1), photo_of(2)]))
    assert all(isinstance(f, Face) and f.embedding is not None for f in got)
