"""Colour-texture features on synthetic arrays: LBP codes and histograms by hand."""

from __future__ import annotations

import numpy as np
import pytest

from faceindex.liveness.features import (
    LBP_BINS,
    SHARPNESS_CUES,
    FeatureSpec,
    colour_channels,
    colour_moments,
    colour_texture_features,
    crop_contrast,
    face_crop,
    lbp_codes,
    sharpness_cues,
    uniform_lbp_histogram,
)
from faceindex.types import BBox, Face, Landmarks, LandmarkScheme


def test_uniform_table_has_58_uniform_patterns() -> None:
    from faceindex.liveness.features import _UNIFORM

    assert LBP_BINS == 59
    assert sorted(set(_UNIFORM.tolist())) == list(range(59))
    assert int((_UNIFORM < 58).sum()) == 58  # 2 + 8 * 7 uniform codes
    assert _UNIFORM[0] == 0 and _UNIFORM[255] == 57  # first and last uniform codes
    assert _UNIFORM[0b01010101] == 58  # 8 transitions: non-uniform


def test_lbp_code_of_a_hand_made_neighbourhood() -> None:
    # Neighbour k sits at angle 2*pi*k/8 counter-clockwise from the right (image y down):
    # k=0 right, k=2 up, k=4 left, k=6 down; R=1 diagonals are interpolated.
    x = np.full((3, 3), 10.0)
    x[1, 2] = 20.0  # right  -> bit 0
    x[0, 1] = 0.0  # up     -> bit 2 cleared
    x[1, 0] = 10.0  # left   -> bit 4 (equal counts as >=)
    x[2, 1] = 5.0  # down   -> bit 6 cleared
    code = int(lbp_codes(x, 1.0)[0, 0])
    assert code & 1 and code & (1 << 4)
    assert not code & (1 << 2) and not code & (1 << 6)


def test_flat_channel_is_all_one_pattern() -> None:
    hist = uniform_lbp_histogram(np.full((20, 20), 7.0), 1.0)
    assert hist.shape == (59,) and hist.dtype == np.float32
    assert hist[57] == pytest.approx(1.0) and hist.sum() == pytest.approx(1.0)


def test_histogram_of_noise_sums_to_one_and_is_mostly_non_uniform_for_large_radius() -> None:
    rng = np.random.default_rng(0)
    hist = uniform_lbp_histogram(rng.random((64, 64)).astype(np.float32), 2.0)
    assert hist.sum() == pytest.approx(1.0)
    assert hist[58] > 0.2  # noise makes many non-uniform patterns


def test_lbp_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="2-D"):
        lbp_codes(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="too small"):
        lbp_codes(np.zeros((2, 2)), 1.0)


def test_colour_channels_are_hsv_then_ycbcr() -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    ch = colour_channels(rgb)
    assert ch.shape == (4, 4, 6) and ch.dtype == np.float32
    h, s, v, y, cb, cr = (ch[0, 0, i] for i in range(6))
    assert (h, s, v) == (0, 255, 255)
    assert y == pytest.approx(76, abs=1) and cr > 200 and cb < 100
    with pytest.raises(ValueError, match="uint8"):
        colour_channels(rgb.astype(np.float32))


def test_colour_moments_of_a_flat_crop() -> None:
    m = colour_moments(np.full((8, 8, 6), 51.0))
    assert m.shape == (18,)
    assert np.allclose(m[:6], 0.2) and np.allclose(m[6:], 0.0)


def test_sharpness_cues_fall_with_blur() -> None:
    import cv2

    rng = np.random.default_rng(1)
    sharp = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    soft = cv2.GaussianBlur(sharp, (0, 0), 3.0)
    a, b = sharpness_cues(sharp), sharpness_cues(soft)
    assert a.shape == (len(SHARPNESS_CUES),)
    assert a[0] > b[0] and a[1] > b[1] and a[3] > b[3]


@pytest.mark.parametrize(
    "spec",
    [
        FeatureSpec(),
        FeatureSpec(size=32, radii=(1.0, 2.0), moments=True, sharpness=True, sqrt=True),
    ],
)
def test_feature_vector_has_the_spec_dimension(spec: FeatureSpec) -> None:
    rng = np.random.default_rng(2)
    crop = rng.integers(0, 256, (spec.size, spec.size, 3), dtype=np.uint8)
    x = colour_texture_features(crop, spec)
    assert x.shape == (spec.dim,) and x.dtype == np.float32 and np.all(np.isfinite(x))
    assert FeatureSpec.from_dict(spec.as_dict()) == spec
    with pytest.raises(ValueError, match="crop must be"):
        colour_texture_features(crop[:-1], spec)


def test_sharpness_index_points_at_the_laplacian_cue() -> None:
    spec = FeatureSpec(size=32, moments=True, sharpness=True)
    crop = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x = colour_texture_features(crop, spec)
    assert spec.sharpness_index is not None
    assert x[spec.sharpness_index] == pytest.approx(sharpness_cues(crop)[0])
    assert FeatureSpec().sharpness_index is None


def test_face_crop_from_a_box_and_from_landmarks() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    image[20:60, 80:120] = 200  # a bright square "face"
    face = Face(BBox(80, 20, 120, 60), 0.9)
    crop = face_crop(image, face, size=32)
    assert crop.shape == (32, 32, 3) and crop.dtype == np.uint8
    assert crop[2:-2, 2:-2].min() == 200  # the box fills the crop
    wider = face_crop(image, face, size=32, margin=0.25)
    assert wider[0, 0, 0] == 0 and wider[16, 16, 0] == 200
    points = np.array([[93, 33], [107, 33], [100, 42], [94, 51], [106, 51]], np.float32)
    marked = Face(face.bbox, 0.9, Landmarks(points, LandmarkScheme.FIVE_POINT))
    aligned = face_crop(image, marked, size=32, aligned=True)
    assert aligned.shape == (32, 32, 3)
    with pytest.raises(ValueError, match="margin"):
        face_crop(image, face, size=32, margin=0.5)


def test_crop_contrast() -> None:
    assert crop_contrast(np.full((8, 8, 3), 90, np.uint8)) == 0.0
    two = np.zeros((8, 8, 3), np.uint8)
    two[:4] = 100
    assert crop_contrast(two) == pytest.approx(50.0, abs=0.1)
