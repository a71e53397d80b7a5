"""The seeded degradations of :mod:`faceindex.testing.degrade`: deterministic, shape- and
dtype-preserving, and worse as the severity grows."""

from __future__ import annotations

import numpy as np
import pytest

from faceindex.alignment import ARCFACE_112
from faceindex.testing import degrade
from faceindex.testing.synthetic import synthetic_photo


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return synthetic_photo([3, 5], variant=2)


def _error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def _detail(a: np.ndarray) -> float:
    """High-frequency energy: mean squared difference of neighbouring pixels."""
    g = a.astype(np.float64).mean(axis=2)
    return float(np.mean(np.diff(g, axis=0) ** 2) + np.mean(np.diff(g, axis=1) ** 2))


LANDMARKS = np.asarray(ARCFACE_112, np.float32) * 2.0 + np.array([200.0, 150.0], np.float32)

ALL = [
    lambda im: degrade.gaussian_blur(im, 2.0),
    lambda im: degrade.motion_blur(im, 9, 30.0),
    lambda im: degrade.dark(im, gamma=2.0, gain=0.5, noise=6.0, seed=3),
    lambda im: degrade.lowres(im, 0.3),
    lambda im: degrade.jpeg(im, 20),
    lambda im: degrade.occlude(im, LANDMARKS, "mask"),
    lambda im: degrade.occlude(im, LANDMARKS, "sunglasses"),
    lambda im: degrade.occlude(im, LANDMARKS, "hand", seed=4),
    degrade.grey,
]


@pytest.mark.parametrize("transform", ALL)
def test_same_shape_and_dtype_new_array_and_deterministic(
    image: np.ndarray, transform: object
) -> None:
    before = image.copy()
    out = transform(image)  # type: ignore[operator]
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out is not image and np.array_equal(image, before)  # the input is left alone
    assert np.array_equal(out, transform(image))  # type: ignore[operator]
    assert not np.array_equal(out, image)


def test_seeds_change_the_random_ones(image: np.ndarray) -> None:
    a = degrade.dark(image, gamma=2.0, gain=0.5, noise=6.0, seed=1)
    b = degrade.dark(image, gamma=2.0, gain=0.5, noise=6.0, seed=2)
    assert not np.array_equal(a, b)
    h1 = degrade.occlude(image, LANDMARKS, "hand", seed=1)
    h2 = degrade.occlude(image, LANDMARKS, "hand", seed=2)
    assert not np.array_equal(h1, h2)
    assert degrade.photo_seed(1234, "x/1.png") == degrade.photo_seed(1234, "x/1.png")
    assert degrade.photo_seed(1234, "x/1.png") != degrade.photo_seed(1234, "x/2.png")


def test_severity_is_monotonic(image: np.ndarray) -> None:
    blur = [_detail(degrade.gaussian_blur(image, s)) for s in (0.0, 1.0, 2.0, 4.0)]
    assert blur == sorted(blur, reverse=True)
    motion = [_error(image, degrade.motion_blur(image, n, 45.0)) for n in (1, 5, 9, 17)]
    assert motion == sorted(motion)
    low = [_detail(degrade.lowres(image, f)) for f in (1.0, 0.5, 0.25, 0.1)]
    assert low == sorted(low, reverse=True)
    jpg = [_error(image, degrade.jpeg(image, q)) for q in (90, 50, 20, 10)]
    assert jpg == sorted(jpg)
    levels = [(1.0, 1.0, 0.0), (2.0, 0.5, 6.0), (2.8, 0.3, 10.0)]
    means = [float(degrade.dark(image, gamma=g, gain=k, noise=n).mean()) for g, k, n in levels]
    assert means == sorted(means, reverse=True)


def test_identity_at_zero_severity(image: np.ndarray) -> None:
    assert np.array_equal(degrade.gaussian_blur(image, 0.0), image)
    assert np.array_equal(degrade.motion_blur(image, 1), image)
    assert np.array_equal(degrade.lowres(image, 1.0), image)
    assert np.array_equal(degrade.dark(image, gamma=1.0, gain=1.0, noise=0.0), image)


def test_occlusions_cover_the_right_part_of_the_face(image: np.ndarray) -> None:
    eyes_y = int(LANDMARKS[:2, 1].mean())
    mouth_y = int(LANDMARKS[3:, 1].mean())
    mid_x = int(LANDMARKS[:2, 0].mean())
    glasses = degrade.occlude(image, LANDMARKS, degrade.Occlusion.SUNGLASSES)
    mask = degrade.occlude(image, LANDMARKS, degrade.Occlusion.MASK)
    assert tuple(glasses[eyes_y, mid_x]) == (20, 20, 24)
    assert np.array_equal(glasses[mouth_y], image[mouth_y])  # the mouth stays visible
    assert tuple(mask[mouth_y, mid_x]) == (170, 200, 220)
    assert np.array_equal(mask[eyes_y - 2], image[eyes_y - 2])  # the eyes stay visible


def test_grey_is_one_channel_and_bad_input_is_refused(image: np.ndarray) -> None:
    g = degrade.grey(image)
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 1], g[..., 2])
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        degrade.jpeg(image[..., 0], 10)
    with pytest.raises(ValueError, match="five landmarks"):
        degrade.occlude(image, LANDMARKS[:3], "mask")
    with pytest.raises(ValueError):
        degrade.occlude(image, LANDMARKS, "scarf")
