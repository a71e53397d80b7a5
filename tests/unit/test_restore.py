"""Restoration of soft and dark faces before embedding (:mod:`faceindex.quality.restore`):
which faces get which filter, what the filters do to the pixels, and the pipeline's rule
of keeping the restored embedding only when its SFace norm is the larger (fake backends
whose norm is a function of the pixels)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from faceindex.pipeline import Pipeline
from faceindex.quality import assess
from faceindex.quality.restore import (
    DENOISE_BELOW,
    SHARPEN_BELOW,
    Restoration,
    moved,
    region,
    restoration_for,
    restore,
    same_face,
)
from faceindex.testing.fakes import FakeDetector, FakeEmbedder, frontal_landmarks
from faceindex.types import BBox, Face, FloatArray, ImageArray, Quality


def _quality(*, sharpness: float = 200.0, brightness: float = 120.0) -> Quality:
    return Quality(
        score=0.9,
        face_px=100.0,
        sharpness=sharpness,
        brightness=brightness,
        yaw=0.0,
        pitch=0.0,
        roll=0.0,
        issues=(),
    )


def _face(x1: float, y1: float, x2: float, y2: float) -> Face:
    box = BBox(x1, y1, x2, y2)
    return Face(bbox=box, score=0.9, landmarks=frontal_landmarks(box))


def _texture(size: int, seed: int = 0) -> ImageArray:
    """Smooth random texture (a stand-in for skin and features), uint8 RGB."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size // 8, size // 8, 3)).astype(np.uint8)
    return np.ascontiguousarray(cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC))


def _laplacian_var(image: ImageArray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


# --------------------------------------------------------------------- which faces, which filter


def test_clean_faces_are_left_alone() -> None:
    assert restoration_for(None) is None
    assert restoration_for(_quality()) is None
    assert restoration_for(_quality(sharpness=SHARPEN_BELOW, brightness=DENOISE_BELOW)) is None


def test_soft_faces_are_sharpened_and_dark_ones_denoised() -> None:
    assert restoration_for(_quality(sharpness=SHARPEN_BELOW - 1)) is Restoration.SHARPEN
    assert restoration_for(_quality(brightness=DENOISE_BELOW - 1)) is Restoration.DENOISE
    # a dark face's noise would only be sharpened: denoise wins
    both = _quality(sharpness=5.0, brightness=20.0)
    assert restoration_for(both) is Restoration.DENOISE


# ------------------------------------------------------------------------------ the filters


def _restored(image: ImageArray, face: Face, kind: Restoration) -> tuple[ImageArray, Face]:
    done = restore(image, face, kind)
    assert done is not None
    return done


def test_sharpening_restores_detail_in_the_region_around_the_face() -> None:
    image = cv2.GaussianBlur(_texture(400), (0, 0), 2.0)
    face = _face(150, 150, 250, 250)
    before = image.copy()
    part, placed = _restored(image, face, Restoration.SHARPEN)
    assert np.array_equal(image, before)  # the photo itself is never written
    # the region is the box and half a box on each side, the face moved into it
    assert part.dtype == np.uint8 and part.shape == (200, 200, 3)
    assert placed.bbox == BBox(50, 50, 150, 150)
    assert face.landmarks is not None and placed.landmarks is not None
    assert np.allclose(placed.landmarks.points, face.landmarks.points - 100)
    inside = (slice(50, 150), slice(50, 150))
    assert _laplacian_var(part[inside]) > 2 * _laplacian_var(image[150:250, 150:250])


def test_denoising_takes_out_sensor_noise() -> None:
    flat = np.full((200, 200, 3), 40, np.uint8)
    noise = np.random.default_rng(1).normal(0, 6, flat.shape)
    noisy = np.clip(flat + noise, 0, 255).astype(np.uint8)
    face = _face(50, 50, 150, 150)
    part, _ = _restored(noisy, face, Restoration.DENOISE)
    assert part.shape == (200, 200, 3)  # clipped by the photo's edges
    inside = (slice(60, 140), slice(60, 140))
    assert part[inside].std() < 0.7 * noisy[inside].std()
    assert abs(float(part[inside].mean()) - 40.0) < 1.0  # brightness kept


def test_faces_at_the_edge_or_past_it() -> None:
    image = _texture(64)
    for box in ((-30, -30, 20, 20), (50, 50, 120, 120)):
        part, placed = _restored(image, _face(*box), Restoration.SHARPEN)
        x1, y1, x2, y2 = region(image, _face(*box))
        assert part.shape == (y2 - y1, x2 - x1, 3) and part.dtype == np.uint8
        assert placed.bbox.x1 == box[0] - x1 and placed.bbox.y1 == box[1] - y1
    # a region under 8 px, or none at all, is not restored
    assert restore(image, _face(60, 60, 63, 63), Restoration.SHARPEN) is None
    assert restore(image, _face(100, 100, 140, 140), Restoration.SHARPEN) is None
    assert region(image, _face(100, 100, 140, 140)) == (64, 64, 64, 64)


def test_the_face_found_again_is_the_one_that_overlaps_most() -> None:
    face = _face(40, 40, 120, 120)
    tighter = _face(42, 38, 118, 122)
    shifted = _face(60, 60, 140, 140)  # IoU 0.39 with ``face``: another face
    elsewhere = _face(0, 0, 30, 30)
    assert same_face([tighter], face) is tighter
    assert same_face([elsewhere, shifted, tighter], face) is tighter
    assert same_face([elsewhere, shifted], face) is None
    assert same_face([], face) is None
    assert moved(tighter, 60, 80).bbox == BBox(102, 118, 178, 202)


# ------------------------------------------------------------------------- the pipeline's rule


class PixelNormFake(FakeEmbedder):
    """The fake embedder reporting, as each face's raw norm, ``norm(face's pixels)``."""

    def __init__(self, norm: Callable[[ImageArray], float]) -> None:
        super().__init__()
        self.norm = norm
        self.batches: list[int] = []

    def _norms(self, image: ImageArray, faces: Sequence[Face]) -> FloatArray:
        out = []
        for f in faces:
            b = f.bbox.clipped(image.shape[1], image.shape[0])
            out.append(self.norm(image[int(b.y1) : int(b.y2), int(b.x1) : int(b.x2)]))
        return np.asarray(out, np.float32)

    def embed_with_norms(
        self, image: ImageArray, faces: Sequence[Face]
    ) -> tuple[FloatArray, FloatArray]:
        return self.embed(image, faces), self._norms(image, faces)

    def embed_many_with_norms(
        self, items: Sequence[tuple[ImageArray, Sequence[Face]]]
    ) -> list[tuple[FloatArray, FloatArray]]:
        self.batches.append(sum(len(faces) for _image, faces in items))
        return [self.embed_with_norms(image, faces) for image, faces in items]


def _soft_photo() -> tuple[ImageArray, tuple[Face, Face]]:
    """A blurred face (left) and a sharp one (right), with their quality measured."""
    left = cv2.GaussianBlur(_texture(160, seed=2), (0, 0), 3.0)
    right = _texture(160, seed=3)
    image = np.full((400, 800, 3), 128, np.uint8)
    image[120:280, 120:280] = left
    image[120:280, 520:680] = right
    faces = (_face(120, 120, 280, 280), _face(520, 120, 680, 280))
    measured = tuple(dataclasses.replace(f, quality=assess(image, f)) for f in faces)
    assert measured[0].quality is not None and measured[1].quality is not None
    assert measured[0].quality.sharpness < SHARPEN_BELOW < measured[1].quality.sharpness
    return image, measured  # type: ignore[return-value]


def _vector(face: Face) -> np.ndarray:
    assert face.embedding is not None
    return face.embedding.vector


def test_the_restored_embedding_is_kept_when_its_norm_is_larger() -> None:
    image, faces = _soft_photo()
    embedder = PixelNormFake(_laplacian_var)  # sharper pixels, larger norm
    pipeline = Pipeline(detector=FakeDetector(), embedder=embedder)
    soft, sharp = pipeline.embed_faces(image, faces)
    # the face is embedded from the restored region, as the detector finds it there again
    part, placed = _restored(image, faces[0], Restoration.SHARPEN)
    again = same_face(FakeDetector().detect(part), placed)
    assert again is not None and again.bbox != placed.bbox
    expected = embedder.embed(part, [again])[0]
    assert np.allclose(_vector(soft), expected, atol=1e-6)
    assert soft.bbox == faces[0].bbox  # the answer keeps the box found in the photo
    assert not np.allclose(_vector(soft), embedder.embed(image, [faces[0]])[0], atol=1e-6)
    # only the soft face was embedded again, in one batch of one
    assert embedder.batches == [1]
    assert np.allclose(_vector(sharp), embedder.embed(image, [faces[1]])[0], atol=1e-6)
    # the quality score stays that of the face as it is (the first norm)
    unrestored = Pipeline(detector=FakeDetector(), embedder=embedder, restoration=False)
    (plain, _) = unrestored.embed_faces(image, faces)
    assert soft.quality is not None and plain.quality is not None
    assert soft.quality.score == plain.quality.score
    restored_norm = embedder.embed_with_norms(part, [again])[1][0]
    assert restored_norm > embedder.embed_with_norms(image, [faces[0]])[1][0]


def test_the_first_embedding_is_kept_when_restoring_does_not_raise_the_norm() -> None:
    image, faces = _soft_photo()
    embedder = PixelNormFake(lambda px: 1000.0 - _laplacian_var(px))
    pipeline = Pipeline(detector=FakeDetector(), embedder=embedder)
    soft, _ = pipeline.embed_faces(image, faces)
    assert np.allclose(_vector(soft), embedder.embed(image, [faces[0]])[0], atol=1e-6)
    assert embedder.batches == [1]  # it was tried


def test_off_restoration_and_faces_without_quality_embed_once() -> None:
    image, faces = _soft_photo()
    embedder = PixelNormFake(_laplacian_var)
    off = Pipeline(detector=FakeDetector(), embedder=embedder, restoration=False)
    off.embed_faces(image, faces)
    bare = tuple(dataclasses.replace(f, quality=None) for f in faces)
    Pipeline(detector=FakeDetector(), embedder=embedder).embed_faces(image, bare)
    assert embedder.batches == []


def test_the_batched_path_restores_across_photos_in_one_batch() -> None:
    image, faces = _soft_photo()
    embedder = PixelNormFake(_laplacian_var)
    pipeline = Pipeline(detector=FakeDetector(), embedder=embedder)
    out = pipeline.embed_photos([(image, faces), (image, ()), (image, faces[:1])])
    assert [len(x) for x in out] == [2, 0, 1]
    assert embedder.batches == [3, 2]  # the first pass, then the two soft faces together
    single = pipeline.embed_faces(image, faces)
    assert np.allclose(_vector(out[0][0]), _vector(single[0]), atol=1e-6)
    assert np.allclose(_vector(out[2][0]), _vector(single[0]), atol=1e-6)
