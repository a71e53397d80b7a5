"""Restoration of soft and dark faces before embedding (:mod:`faceindex.quality.restore`):
which faces get which filter, what the filters do to the pixels, and the pipeline's rule
of keeping the restored embedding only when its SFace norm is the larger (fake backends
whose norm is a function of the pixels)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import pytest

from faceindex.pipeline import Pipeline
from faceindex.quality import assess
from faceindex.quality.restore import (
    DENOISE_BELOW,
    SHARPEN_BELOW,
    Restoration,
    moved,
    region,
    relocated,
    restoration_for,
    restore,
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


def test_sharpening_restores_detail_around_the_face_only() -> None:
    image = cv2.GaussianBlur(_texture(400), (0, 0), 2.0)
    face = _face(150, 150, 250, 250)
    out = restore(image, face, Restoration.SHARPEN)
    assert out is not image and out.dtype == np.uint8 and out.shape == image.shape
    inside = (slice(150, 250), slice(150, 250))
    assert _laplacian_var(out[inside]) > 2 * _laplacian_var(image[inside])
    # the region is the box and half a box on each side; the rest is untouched
    assert np.array_equal(out[:95], image[:95]) and np.array_equal(out[305:], image[305:])
    assert np.array_equal(out[:, :95], image[:, :95])
    assert np.array_equal(out[:, 305:], image[:, 305:])
    assert not np.array_equal(out[100:300, 100:300], image[100:300, 100:300])


def test_denoising_takes_out_sensor_noise() -> None:
    flat = np.full((200, 200, 3), 40, np.uint8)
    noise = np.random.default_rng(1).normal(0, 6, flat.shape)
    noisy = np.clip(flat + noise, 0, 255).astype(np.uint8)
    face = _face(50, 50, 150, 150)
    out = restore(noisy, face, Restoration.DENOISE)
    inside = (slice(60, 140), slice(60, 140))
    assert out[inside].std() < 0.7 * noisy[inside].std()
    assert abs(float(out[inside].mean()) - 40.0) < 1.0  # brightness kept


def test_a_face_at_the_edge_or_past_it_does_not_break() -> None:
    image = _texture(64)
    for box in ((-30, -30, 20, 20), (50, 50, 120, 120), (100, 100, 140, 140)):
        out = restore(image, _face(*box), Restoration.SHARPEN)
        assert out.shape == image.shape and out.dtype == np.uint8


def test_a_face_found_again_in_the_region_is_moved_back_into_the_photo() -> None:
    image = np.zeros((300, 400, 3), np.uint8)
    face = _face(100, 120, 180, 200)
    x1, y1, x2, y2 = region(image, face)
    assert (x1, y1, x2, y2) == (60, 80, 220, 240)
    in_crop = _face(42, 38, 118, 122)  # the same face, a little tighter, crop pixels
    back = moved(in_crop, x1, y1)
    assert back.bbox == BBox(102, 118, 178, 202)
    assert in_crop.landmarks is not None and back.landmarks is not None
    shift = np.array([60, 80], np.float32)
    assert np.allclose(back.landmarks.points, in_crop.landmarks.points + shift)
    again = relocated([in_crop], face, x1, y1)
    assert again is not None and again.bbox == back.bbox
    elsewhere = _face(0, 0, 40, 40)  # another face in the region: not this one
    assert relocated([elsewhere], face, x1, y1) is None
    both = relocated([elsewhere, in_crop], face, x1, y1)
    assert both is not None and both.bbox == back.bbox
    assert relocated([], face, x1, y1) is None
    assert region(image, _face(500, 500, 600, 600))[2:] == (400, 300)  # outside: empty


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
    restored = restore(image, faces[0], Restoration.SHARPEN)
    # the face is embedded as the detector finds it again in the restored region
    x1, y1, x2, y2 = region(image, faces[0])
    found = FakeDetector().detect(np.ascontiguousarray(restored[y1:y2, x1:x2]))
    again = relocated(found, faces[0], x1, y1)
    assert again is not None and again.bbox != faces[0].bbox
    expected = embedder.embed(restored, [again])[0]
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
    assert (
        embedder.embed_with_norms(restored, [faces[0]])[1][0]
        > embedder.embed_with_norms(image, [faces[0]])[1][0]
    )


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


def test_settings_can_turn_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from faceindex.config import Settings

    monkeypatch.setenv("FACEINDEX_EMBEDDING__RESTORATION", "false")
    monkeypatch.setenv("FACEINDEX_DETECTION__DETECTOR", "fake")
    monkeypatch.setenv("FACEINDEX_EMBEDDING__EMBEDDER", "fake")
    assert Pipeline.from_settings(Settings.from_env()).restoration is False
    assert Pipeline.from_settings(Settings()).restoration is True
