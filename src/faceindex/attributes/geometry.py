"""Pure geometry of the attributes: boxes for the predictors and crops, head pose from 68
landmarks, eye aspect ratios, and turning model outputs into estimates.

Nothing here loads a model; everything is tested with hand-computed cases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from faceindex.attributes import (
    AgeEstimate,
    Expression,
    ExpressionEstimate,
    EyeOpenness,
    Gender,
    GenderEstimate,
    HeadPose,
)
from faceindex.attributes.specs import AGE_CLASS_YEARS
from faceindex.types import BBox

#: Eye aspect ratio under which an eye counts as closed. Soukupová and Čech (2016) blink on
#: ~0.2 over a video; on single photos (lfw57's 873 faces, dlib's 68 points) most eyes at
#: 0.15-0.2 are open but narrowed (smiles, squints, glasses) and most under ~0.13 are closed
#: or looking down, so a photo's eye is called closed under 0.15 (docs/attributes.md).
EAR_CLOSED_BELOW = 0.15

#: dlib 68-point indices of each eye (p1..p6 of the EAR: outer/inner corner, two upper,
#: two lower points). 36-41 is the eye on the image's left, the subject's right.
SUBJECT_RIGHT_EYE = (36, 37, 38, 39, 40, 41)
SUBJECT_LEFT_EYE = (42, 43, 44, 45, 46, 47)

#: A generic head in millimetre-like units, in the camera's frame when it faces the camera
#: (x to the image's right, y down, z away from the camera; the nose tip at the origin),
#: for the dlib 68-point landmarks named in :data:`POSE_LANDMARKS`.
POSE_MODEL_3D = np.array(
    [
        [0.0, 0.0, 0.0],  # 30 nose tip
        [0.0, 330.0, 65.0],  # 8 chin
        [-225.0, -170.0, 135.0],  # 36 outer corner of the eye on the image's left
        [225.0, -170.0, 135.0],  # 45 outer corner of the eye on the image's right
        [-150.0, 150.0, 125.0],  # 48 mouth corner on the image's left
        [150.0, 150.0, 125.0],  # 54 mouth corner on the image's right
    ],
    dtype=np.float64,
)
POSE_LANDMARKS = (30, 8, 36, 45, 48, 54)

FloatPoints = npt.NDArray[np.floating]


def five_point_to_rect(points: FloatPoints) -> tuple[int, int, int, int]:
    """A dlib-HOG-like square box ``(left, top, right, bottom)`` from five ArcFace-order
    points (eyes, nose, mouth corners): where dlib's shape predictors expect a face.

    The same fit as :mod:`faceindex.embedding.dlib_resnet.embedder` (a sibling stage, so
    not imported from there): side 1.9 x max(eye-mouth distance, 0.9 x inter-ocular),
    centred between eyes and mouth, 5% of the side lower.
    """
    p = np.asarray(points, dtype=np.float64)
    eyes = p[0:2].mean(0)
    mouth = p[3:5].mean(0)
    eye_mouth = float(np.linalg.norm(mouth - eyes))
    inter_ocular = float(np.linalg.norm(p[1] - p[0]))
    side = 1.9 * max(eye_mouth, 0.9 * inter_ocular)
    cx, cy = (eyes + mouth) / 2.0 + np.array([0.0, 0.05 * side])
    half = side / 2.0
    return round(cx - half), round(cy - half), round(cx + half), round(cy + half)


def square_box(box: BBox, *, margin: float) -> tuple[int, int, int, int]:
    """``box`` made square by growing its shorter side about the centre, then grown by
    ``margin`` x side on every edge; whole pixels ``(x1, y1, x2, y2)``, not clipped."""
    side = max(box.width, box.height)
    cx, cy = (box.x1 + box.x2) / 2.0, (box.y1 + box.y2) / 2.0
    half = side / 2.0 + margin * side
    return (
        math.floor(cx - half),
        math.floor(cy - half),
        math.ceil(cx + half),
        math.ceil(cy + half),
    )


def crop_padded(image: npt.NDArray[np.uint8], box: tuple[int, int, int, int]) -> np.ndarray:
    """``image[y1:y2, x1:x2]`` where parts outside the image are filled by repeating its
    edge (a face at the border keeps its size and centre). A view when the box is inside."""
    x1, y1, x2, y2 = box
    h, w = image.shape[:2]
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"empty crop box {box}")
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if cx1 >= cx2 or cy1 >= cy2:  # wholly outside: the nearest edge pixels, repeated
        ys = np.clip(np.arange(y1, y2), 0, h - 1)
        xs = np.clip(np.arange(x1, x2), 0, w - 1)
        return image[ys[:, None], xs[None, :]]
    inner = image[cy1:cy2, cx1:cx2]
    pad = ((cy1 - y1, y2 - cy2), (cx1 - x1, x2 - cx2)) + ((0, 0),) * (image.ndim - 2)
    if any(before or after for before, after in pad):
        return np.pad(inner, pad, mode="edge")
    return inner


def eye_aspect_ratio(eye: FloatPoints) -> float:
    """EAR of six eye points p1..p6: ``(|p2-p6| + |p3-p5|) / (2 |p1-p4|)``; 0 for a
    degenerate eye (width 0)."""
    p = np.asarray(eye, dtype=np.float64)
    if p.shape != (6, 2):
        raise ValueError(f"an eye needs 6 points (6, 2), got {p.shape}")
    width = float(np.linalg.norm(p[0] - p[3]))
    if width < 1e-9:
        return 0.0
    height = float(np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4]))
    return height / (2.0 * width)


def eyes_from_68(points: FloatPoints, *, threshold: float = EAR_CLOSED_BELOW) -> EyeOpenness:
    """Eye openness from dlib's 68 points (the subject's left eye is 42-47)."""
    p = _check_68(points)
    left = eye_aspect_ratio(p[list(SUBJECT_LEFT_EYE)])
    right = eye_aspect_ratio(p[list(SUBJECT_RIGHT_EYE)])
    return EyeOpenness(
        left_open=left >= threshold,
        right_open=right >= threshold,
        left_ratio=left,
        right_ratio=right,
        threshold=threshold,
    )


def camera_matrix(width: int, height: int) -> npt.NDArray[np.float64]:
    """A pinhole camera for a photo of unknown lens: focal length = the longer side (a
    ~53° field of view), principal point at the centre."""
    f = float(max(width, height))
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def euler_from_rotation(rotation: FloatPoints) -> HeadPose:
    """Yaw, pitch and roll in degrees of a camera-frame rotation ``R = Ry Rx Rz``, signed
    as :class:`~faceindex.attributes.HeadPose` says (yaw > 0 towards the image's right,
    pitch > 0 looking down, roll > 0 clockwise in the image)."""
    r = np.asarray(rotation, dtype=np.float64)
    pitch = math.degrees(math.asin(float(np.clip(-r[1, 2], -1.0, 1.0))))
    yaw = math.degrees(math.atan2(r[0, 2], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[1, 1]))
    # The face looks along -z: a yaw of +a about y turns that gaze towards -x (the image's
    # left), so the sign is flipped to say where the face turns in the image.
    return HeadPose(yaw=_wrap(-yaw), pitch=_wrap(pitch), roll=_wrap(roll))


def rotation_from_euler(pose: HeadPose) -> npt.NDArray[np.float64]:
    """The inverse of :func:`euler_from_rotation` (for tests and synthetic faces)."""
    y, p, r = (math.radians(v) for v in (-pose.yaw, pose.pitch, pose.roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    out: npt.NDArray[np.float64] = ry @ rx @ rz
    return out


def pose_from_68(points: FloatPoints, width: int, height: int) -> HeadPose:
    """Head pose from dlib's 68 points of a face in a ``width`` x ``height`` photo: the
    generic head :data:`POSE_MODEL_3D` fitted to six landmarks with ``cv2.solvePnP``."""
    import cv2

    p = _check_68(points)
    image_points = p[list(POSE_LANDMARKS)].astype(np.float64)
    cam = camera_matrix(width, height)
    ok, rvec, tvec = cv2.solvePnP(
        POSE_MODEL_3D, image_points, cam, np.zeros(4), flags=cv2.SOLVEPNP_ITERATIVE
    )
    if not ok:  # pragma: no cover - six non-degenerate points always solve
        return HeadPose(0.0, 0.0, 0.0)
    if float(tvec[2, 0]) < 0:  # the mirror solution, behind the camera
        rvec, tvec = -rvec, -tvec
    rotation, _ = cv2.Rodrigues(rvec)
    return euler_from_rotation(np.asarray(rotation, dtype=np.float64))


def project_model(pose: HeadPose, width: int, height: int, distance: float) -> FloatPoints:
    """Where the six pose landmarks of :data:`POSE_MODEL_3D` fall in a ``width`` x
    ``height`` image for a head at ``pose`` and ``distance`` (tests, synthetic faces)."""
    cam = camera_matrix(width, height)
    world = POSE_MODEL_3D @ rotation_from_euler(pose).T + np.array([0.0, 0.0, distance])
    pixels = world @ cam.T
    out: FloatPoints = pixels[:, :2] / pixels[:, 2:3]
    return out


def age_from_probabilities(probabilities: Sequence[float] | FloatPoints) -> AgeEstimate:
    """The expected age of the 81-class distribution, its 10th-90th percentile range and
    its largest class probability."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    years = np.asarray(AGE_CLASS_YEARS, dtype=np.float64)
    if p.shape != years.shape:
        raise ValueError(f"age needs {years.size} class probabilities, got {p.size}")
    p = np.clip(p, 0.0, None)
    total = float(p.sum())
    if not math.isfinite(total) or total <= 0.0:
        raise ValueError("age probabilities must be finite and not all zero")
    p = p / total
    expected = float(np.dot(p, years))
    cdf = np.cumsum(p)
    low = float(years[min(int(np.searchsorted(cdf, 0.1)), years.size - 1)])
    high = float(years[min(int(np.searchsorted(cdf, 0.9)), years.size - 1)])
    return AgeEstimate(
        years=expected,
        low=min(low, expected),
        high=max(high, expected),
        score=float(min(p.max(), 1.0)),
    )


def gender_from_probabilities(probabilities: Sequence[float] | FloatPoints) -> GenderEstimate:
    """``[p(female), p(male)]`` as the likelier label and its probability (ties: female,
    as the original classifier does)."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if p.shape != (2,):
        raise ValueError(f"gender needs 2 probabilities, got {p.size}")
    female, male = (float(v) for v in np.clip(p, 0.0, 1.0))
    if male > female:
        return GenderEstimate(Gender.MALE, male)
    return GenderEstimate(Gender.FEMALE, female)


def expression_from_probabilities(
    probabilities: Sequence[float] | FloatPoints,
) -> ExpressionEstimate:
    """The seven FER2013 probabilities (model order) as an estimate."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    labels = list(Expression)
    if p.shape != (len(labels),):
        raise ValueError(f"expression needs {len(labels)} probabilities, got {p.size}")
    p = np.clip(p, 0.0, None)
    total = float(p.sum())
    if not math.isfinite(total) or total <= 0.0:
        raise ValueError("expression probabilities must be finite and not all zero")
    p = p / total
    scores = {label: float(min(v, 1.0)) for label, v in zip(labels, p, strict=True)}
    return ExpressionEstimate(label=labels[int(np.argmax(p))], scores=scores)


def _check_68(points: FloatPoints) -> npt.NDArray[np.float64]:
    p = np.asarray(points, dtype=np.float64)
    if p.shape != (68, 2):
        raise ValueError(f"dlib's 68 landmarks have shape (68, 2), got {p.shape}")
    return p


def _wrap(degrees: float) -> float:
    """An angle in (-180, 180]."""
    out = (degrees + 180.0) % 360.0 - 180.0
    return 180.0 if out == -180.0 else out
