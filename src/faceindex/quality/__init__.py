"""Per-face quality: size, sharpness, brightness and pose, with the reasons a face falls short.

The measures are deliberately simple and explainable (a user must be able to act on "too
dark" or "turn to the camera"):
- ``face_px``: the shorter side of the box;
- ``sharpness``: variance of the Laplacian of the face resized to 112x112 gray, so it does
  not depend on the face's size in the photo;
- ``brightness``: mean luma of the face box;
- pose: yaw, pitch and roll in degrees, estimated geometrically from the five landmarks
  (roll from the eye line; yaw from where the nose sits between the eyes; pitch from where
  it sits between eyes and mouth, relative to a frontal face). Rough, but monotonic.

The ``score`` is what predicts recognition error, chosen by measurement on damaged
photos (docs/robustness.md): before a face is embedded, the detector's confidence
(:func:`quality_score`); once SFace has embedded it (the ``sface`` and ``fusion``
embedders), the confidence together with the norm of SFace's output before normalisation
(:func:`embedding_quality_score`), which ranks damaged faces better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from faceindex.types import Face, ImageArray, Landmarks, LandmarkScheme, Quality, QualityIssue

#: Where the nose tip sits between the eye line (0) and the mouth line (1) when frontal,
#: from the ArcFace template.
_FRONTAL_NOSE_T = (71.74 - 51.60) / (92.28 - 51.60)


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    min_face_px: float = 40.0
    min_sharpness: float = 25.0
    min_brightness: float = 40.0
    max_brightness: float = 225.0
    max_yaw: float = 45.0
    max_pitch: float = 35.0


def assess(image: ImageArray, face: Face, thresholds: QualityThresholds | None = None) -> Quality:
    import cv2

    t = thresholds or QualityThresholds()
    h, w = image.shape[:2]
    box = face.bbox.clipped(w, h)
    x1, y1 = int(box.x1), int(box.y1)
    x2, y2 = max(math.ceil(box.x2), x1 + 1), max(math.ceil(box.y2), y1 + 1)
    crop = image[y1:y2, x1:x2]
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.size else np.zeros((1, 1), np.uint8)
    brightness = float(gray.mean())
    norm = cv2.resize(gray, (112, 112), interpolation=cv2.INTER_AREA)
    sharpness = float(cv2.Laplacian(norm, cv2.CV_64F).var())
    face_px = float(min(face.bbox.width, face.bbox.height))
    yaw, pitch, roll = pose_from_landmarks(face.landmarks)

    issues: list[QualityIssue] = []
    if face_px < t.min_face_px:
        issues.append(QualityIssue.TOO_SMALL)
    if sharpness < t.min_sharpness:
        issues.append(QualityIssue.BLURRY)
    if brightness < t.min_brightness:
        issues.append(QualityIssue.TOO_DARK)
    if brightness > t.max_brightness:
        issues.append(QualityIssue.TOO_BRIGHT)
    if abs(yaw) > t.max_yaw or abs(pitch) > t.max_pitch:
        issues.append(QualityIssue.EXTREME_POSE)
    if face.landmarks is not None and _any_outside(face.landmarks, w, h):
        issues.append(QualityIssue.CUT_OFF)

    score = quality_score(
        face_px=face_px,
        sharpness=sharpness,
        brightness=brightness,
        yaw=yaw,
        pitch=pitch,
        detector_score=detector_confidence(face),
        thresholds=t,
    )
    return Quality(
        score=score,
        face_px=face_px,
        sharpness=sharpness,
        brightness=brightness,
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        issues=tuple(issues),
    )


def detector_confidence(face: Face) -> float | None:
    """The detector's confidence in ``face``; None for a face no detector scored (the
    crop fallback, whose score is 0)."""
    return face.score if face.score > 0 else None


#: The detector confidences over which the quality score ramps from 0 to 1 (YuNet's
#: scores: clean photos of the dev data 0.93 median, a face mask or heavy blur 0.6-0.85).
DETECTOR_RAMP = (0.60, 0.95)
#: The score of a face no detector scored (the crop fallback): neither good nor bad.
UNSCORED_DETECTION = 0.5


def quality_score(
    *,
    face_px: float,
    sharpness: float,
    brightness: float,
    yaw: float,
    pitch: float,
    detector_score: float | None = None,
    thresholds: QualityThresholds | None = None,
) -> float:
    """The quality score in [0, 1]: how far a comparison with this face can be trusted.

    Chosen by measurement (docs/robustness.md, ``benchmarks/degradation.py``; tuned on
    glint6, reported on lfw57): the detector's confidence ranks damaged faces by their
    error better than any product with the size, sharpness, light and pose ramps of
    faceindex 0.1 (whose score was 0 for most blurred faces, so it could not rank them),
    and every one of those terms, added to it, made the ranking worse. So the score is
    the detector's confidence ramped over :data:`DETECTOR_RAMP`, or
    :data:`UNSCORED_DETECTION` for a face no detector scored. Size, sharpness, light and
    pose keep their issues (``too_small``, ``blurry``, ``too_dark``, ``extreme_pose``...);
    they are taken here so that callers need not know which measurements the score uses.
    """
    del face_px, sharpness, brightness, yaw, pitch, thresholds  # measured: no help
    if detector_score is None:
        return UNSCORED_DETECTION
    return float(_ramp(detector_score, *DETECTOR_RAMP))


#: ``(bias, detector weight, log-norm weight)`` of :func:`embedding_quality_score`: a
#: logistic fitted by ``benchmarks/quality_edc.py`` on glint6's degraded pairs only (6
#: people, 15 conditions; a genuine pair is read right when both faces are), by maximum
#: likelihood. Held-out lfw57: rejecting the lowest-quality 10% of pairs leaves 0.45x the
#: false non-match rate of the moderate mix and 0.56x of every condition together
#: (detector confidence alone: 0.61x and 0.64x).
EMBEDDING_QUALITY_FIT = (-40.44, 23.76, 8.71)
#: The detector input of a face no detector scored (the crop fallback): the middle of
#: :data:`DETECTOR_RAMP`, as :data:`UNSCORED_DETECTION` is for the detector-only score.
UNSCORED_DETECTOR_INPUT = 0.775


def embedding_quality_score(detector_score: float | None, sface_norm: float) -> float:
    """The quality score in [0, 1] of a face SFace has embedded:
    ``sigmoid(bias + w_det * detector_score + w_norm * ln(sface_norm))``
    (:data:`EMBEDDING_QUALITY_FIT`). ``sface_norm`` is the norm of the float32 SFace
    graph's output before L2-normalisation: 12-13 for a clean face, 8-10 for a face
    blurred, darkened or masked past recognition (MagFace's observation that a
    margin-trained network answers weakly to faces it cannot read). A clean face (YuNet
    0.94, norm 12) scores 0.97; a heavily blurred one (0.89, norm 7.8) 0.20."""
    bias, w_det, w_norm = EMBEDDING_QUALITY_FIT
    det = UNSCORED_DETECTOR_INPUT if detector_score is None else float(detector_score)
    if not (math.isfinite(det) and math.isfinite(sface_norm)):
        return 0.0
    z = bias + w_det * det + w_norm * math.log(max(float(sface_norm), 1e-6))
    return 1.0 / (1.0 + math.exp(-z)) if z > -700.0 else 0.0


def pose_from_landmarks(landmarks: Landmarks | None) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees; zeros when there are no usable landmarks."""
    if landmarks is None:
        return 0.0, 0.0, 0.0
    p = landmarks.points.astype(np.float64)
    if landmarks.scheme is LandmarkScheme.FIVE_POINT:
        left_eye, right_eye, nose, mouth = p[0], p[1], p[2], (p[3] + p[4]) / 2
    elif landmarks.scheme is LandmarkScheme.DLIB_5:
        left_eye, right_eye, nose, mouth = p[2:4].mean(0), p[0:2].mean(0), p[4], None
    elif landmarks.scheme is LandmarkScheme.DLIB_68:
        left_eye, right_eye, nose = p[36:42].mean(0), p[42:48].mean(0), p[30]
        mouth = (p[48] + p[54]) / 2
    else:
        return 0.0, 0.0, 0.0
    axis = right_eye - left_eye
    iod = float(np.linalg.norm(axis))
    if iod < 1e-6:
        return 0.0, 0.0, 0.0
    roll = math.degrees(math.atan2(axis[1], axis[0]))
    ux = axis / iod
    uy = np.array([-ux[1], ux[0]])
    mid = (left_eye + right_eye) / 2
    rel = nose - mid
    yaw = math.degrees(math.asin(float(np.clip(np.dot(rel, ux) / (iod / 2), -1.0, 1.0))))
    if mouth is not None:
        span = float(np.dot(mouth - mid, uy))
        t = float(np.dot(rel, uy)) / span if abs(span) > 1e-6 else _FRONTAL_NOSE_T
        pitch = math.degrees(math.asin(float(np.clip((t - _FRONTAL_NOSE_T) / 0.5, -1.0, 1.0))))
    else:
        # dlib's nose-base point sits ~0.69 inter-ocular distances below the eye line.
        ratio = float(np.dot(rel, uy)) / iod
        pitch = math.degrees(math.asin(float(np.clip((ratio - 0.69) / 0.69, -1.0, 1.0))))
    return yaw, pitch, roll


def _any_outside(landmarks: Landmarks, width: int, height: int) -> bool:
    pts = landmarks.points
    return bool(
        np.any(pts[:, 0] < 0)
        or np.any(pts[:, 1] < 0)
        or np.any(pts[:, 0] >= width)
        or np.any(pts[:, 1] >= height)
    )


def _ramp(value: float, low: float, high: float) -> float:
    if value <= low:
        return 0.0
    if value >= high:
        return 1.0
    return (value - low) / (high - low)
