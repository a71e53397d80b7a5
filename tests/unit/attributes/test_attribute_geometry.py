"""Pure geometry of the attributes, on hand-computed cases (no model loaded)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceindex.attributes import Expression, Gender, HeadPose
from faceindex.attributes.geometry import (
    EAR_CLOSED_BELOW,
    POSE_LANDMARKS,
    SUBJECT_LEFT_EYE,
    SUBJECT_RIGHT_EYE,
    age_from_probabilities,
    crop_padded,
    euler_from_rotation,
    expression_from_probabilities,
    eye_aspect_ratio,
    eyes_from_68,
    five_point_to_rect,
    gender_from_probabilities,
    pose_from_68,
    project_model,
    rotation_from_euler,
    square_box,
)
from faceindex.types import BBox


def _eye(width: float, height: float, x0: float = 0.0) -> np.ndarray:
    """Six EAR points p1..p6 of an eye ``width`` wide with both lids ``height`` apart."""
    return np.array(
        [
            [x0, 0.0],
            [x0 + width / 3, -height / 2],
            [x0 + 2 * width / 3, -height / 2],
            [x0 + width, 0.0],
            [x0 + 2 * width / 3, height / 2],
            [x0 + width / 3, height / 2],
        ]
    )


def test_eye_aspect_ratio_by_hand() -> None:
    # (|p2-p6| + |p3-p5|) / (2 |p1-p4|) = (3 + 3) / (2 * 10)
    assert eye_aspect_ratio(_eye(10.0, 3.0)) == pytest.approx(0.3)
    assert eye_aspect_ratio(_eye(10.0, 0.0)) == 0.0
    assert eye_aspect_ratio(np.zeros((6, 2))) == 0.0  # degenerate: no width
    with pytest.raises(ValueError, match=r"\(6, 2\)"):
        eye_aspect_ratio(np.zeros((5, 2)))


def test_eyes_from_68_uses_the_subjects_sides() -> None:
    points = np.zeros((68, 2))
    points[list(SUBJECT_RIGHT_EYE)] = _eye(10.0, 3.0, x0=0.0)  # image left: open
    points[list(SUBJECT_LEFT_EYE)] = _eye(10.0, 1.0, x0=30.0)  # image right: closed
    eyes = eyes_from_68(points)
    assert eyes.right_open and not eyes.left_open
    assert eyes.right_ratio == pytest.approx(0.3) and eyes.left_ratio == pytest.approx(0.1)
    assert eyes.threshold == EAR_CLOSED_BELOW
    assert eyes_from_68(points, threshold=0.05).left_open
    with pytest.raises(ValueError, match="68"):
        eyes_from_68(np.zeros((5, 2)))


@pytest.mark.parametrize(
    "pose",
    [HeadPose(0, 0, 0), HeadPose(30, 0, 0), HeadPose(-20, 15, 0), HeadPose(10, -10, 12)],
)
def test_euler_round_trip(pose: HeadPose) -> None:
    back = euler_from_rotation(rotation_from_euler(pose))
    assert (back.yaw, back.pitch, back.roll) == pytest.approx(
        (pose.yaw, pose.pitch, pose.roll), abs=1e-9
    )


def _points68(pose: HeadPose, width: int = 640, height: int = 480) -> np.ndarray:
    points = np.zeros((68, 2))
    points[list(POSE_LANDMARKS)] = project_model(pose, width, height, distance=3000.0)
    return points


@pytest.mark.parametrize(
    "pose", [HeadPose(0, 0, 0), HeadPose(35, 0, 0), HeadPose(-25, 20, -8), HeadPose(5, -15, 20)]
)
def test_pose_from_68_recovers_a_projected_head(pose: HeadPose) -> None:
    got = pose_from_68(_points68(pose), 640, 480)
    assert got.yaw == pytest.approx(pose.yaw, abs=0.5)
    assert got.pitch == pytest.approx(pose.pitch, abs=0.5)
    assert got.roll == pytest.approx(pose.roll, abs=0.5)


def test_pose_signs_mean_what_the_docs_say() -> None:
    nose, left_corner, right_corner = 0, 2, 3  # rows of POSE_LANDMARKS: 30, 36, 45
    turned = project_model(HeadPose(30, 0, 0), 640, 480, distance=3000.0)
    # yaw > 0: the face turns to the image's right, so the nose moves right of the eyes
    assert turned[nose, 0] > (turned[left_corner, 0] + turned[right_corner, 0]) / 2
    tilted = project_model(HeadPose(0, 0, 15), 640, 480, distance=3000.0)
    # roll > 0: clockwise in the image (y down): the eye on the image's right is lower
    assert tilted[right_corner, 1] > tilted[left_corner, 1]
    # a mirrored photo has the opposite yaw and roll, the same pitch
    pose = HeadPose(25, 10, 8)
    points = _points68(pose)
    mirrored = points.copy()
    mirrored[:, 0] = 640 - mirrored[:, 0]
    # mirroring swaps which landmark is which side: 36<->45, 48<->54
    for a, b in ((36, 45), (48, 54)):
        mirrored[[a, b]] = mirrored[[b, a]]
    got = pose_from_68(mirrored, 640, 480)
    assert (got.yaw, got.pitch, got.roll) == pytest.approx((-25, 10, -8), abs=0.5)


def test_age_from_probabilities() -> None:
    one_hot = np.zeros(81)
    one_hot[30] = 1.0
    age = age_from_probabilities(one_hot)
    assert (age.years, age.low, age.high, age.score) == (30.0, 30.0, 30.0, 1.0)
    split = np.zeros(81)
    split[20], split[40] = 0.5, 0.5
    age = age_from_probabilities(split)
    assert age.years == pytest.approx(30.0) and (age.low, age.high) == (20.0, 40.0)
    assert age.score == 0.5
    first = np.zeros(81)
    first[0] = 1.0
    assert age_from_probabilities(first).years == 0.25  # class 0 is "under one"
    with pytest.raises(ValueError, match="81"):
        age_from_probabilities(np.ones(80))
    with pytest.raises(ValueError, match="not all zero"):
        age_from_probabilities(np.zeros(81))


def test_gender_and_expression_from_probabilities() -> None:
    g = gender_from_probabilities([0.2, 0.8])
    assert g.label is Gender.MALE and g.score == pytest.approx(0.8)
    assert gender_from_probabilities([0.5, 0.5]).label is Gender.FEMALE  # ties: female
    with pytest.raises(ValueError):
        gender_from_probabilities([1.0])
    e = expression_from_probabilities([1, 0, 0, 6, 0, 0, 3])  # normalised
    assert e.label is Expression.HAPPY and e.score == pytest.approx(0.6)
    assert sum(e.scores.values()) == pytest.approx(1.0) and set(e.scores) == set(Expression)
    with pytest.raises(ValueError):
        expression_from_probabilities([0.5, 0.5])


def test_boxes_and_crops() -> None:
    # a 40x80 box becomes an 80x80 square about its centre, then 8 px (10%) more each side
    assert square_box(BBox(100, 100, 140, 180), margin=0.1) == (72, 92, 168, 188)
    image = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    crop = crop_padded(image, (-2, -1, 3, 2))
    assert crop.shape == (3, 5, 3)
    assert (crop[0, 0] == image[0, 0]).all() and (crop[2, 4] == image[1, 2]).all()
    with pytest.raises(ValueError):
        crop_padded(image, (3, 3, 3, 4))
    # an upright face: the predictor box is square and holds the eyes and the mouth
    five = np.array([[40, 50], [80, 50], [60, 70], [45, 90], [75, 90]], dtype=float)
    x1, y1, x2, y2 = five_point_to_rect(five)
    assert x2 - x1 == y2 - y1 and x1 < 40 and x2 > 80 and y1 < 50 and y2 > 90
    assert math.isclose((x1 + x2) / 2, 60, abs_tol=1)


def test_crop_padded_matches_edge_repetition_everywhere() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (7, 9, 3), dtype=np.uint8)
    for box in [(0, 0, 9, 7), (2, 1, 5, 6), (-3, -2, 4, 3), (5, 4, 12, 10), (-2, -2, 11, 9)]:
        x1, y1, x2, y2 = box
        ys = np.clip(np.arange(y1, y2), 0, 6)
        xs = np.clip(np.arange(x1, x2), 0, 8)
        assert (crop_padded(image, box) == image[ys[:, None], xs[None, :]]).all(), box
    far = crop_padded(image, (20, 20, 22, 23))  # wholly outside: the corner pixel
    assert far.shape == (3, 2, 3) and (far == image[6, 8]).all()
