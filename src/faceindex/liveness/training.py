"""How a liveness model is trained, so that the training script and the benchmark do the
same thing: never tune on a subject the model is tested on.

:func:`train` fits the logistic regression on the given faces, and takes its calibration
(Platt) and its default threshold from **out-of-subject** scores: an inner
leave-one-subject-out over the training subjects (each subject scored by a model that
never saw them). The threshold is where APCER and BPCER meet on those scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceindex.liveness.classifier import LinearModel, fit_platt
from faceindex.liveness.features import (
    FeatureSpec,
    colour_texture_features,
    crop_contrast,
    spec_crop,
)
from faceindex.liveness.metrics import equal_error_threshold
from faceindex.types import Face, ImageArray

#: The features of the shipped model (chosen by leave-one-subject-out and leave-one-session
#: -out on nuaa-dev; see docs/liveness.md): uniform LBP (P=8, R=1) of the six HSV + YCbCr
#: channels of a 64x64 crop of the detector's box (better than the landmark-aligned
#: crop), the spread and skew of each channel (not its mean: that follows the lighting),
#: and sharpness cues.
DEFAULT_SPEC = FeatureSpec(
    size=64, radii=(1.0,), margin=0.0, moments=True, moment_means=False, sharpness=True
)
#: The issue's baseline: the same LBP on a 64x64 crop, nothing else.
BASELINE_SPEC = FeatureSpec(size=64, radii=(1.0,))
#: L2 penalty of the logistic regression (on standardised features).
DEFAULT_L2 = 1.0
#: The atypicality limit is this many times the largest atypicality of a training face.
ATYPICAL_FACTOR = 3.0
#: The sharpness floor is the least log Laplacian variance of a live training face less
#: this much (in natural-log units: a crop e ~ 2.7x less sharp than any live one seen).
SHARPNESS_MARGIN = 1.0


def out_of_subject_scores(
    x: np.ndarray, live: np.ndarray, subjects: np.ndarray, *, l2: float
) -> np.ndarray:
    """Raw decision scores of every row from a model trained without that row's subject."""
    subjects = np.asarray(subjects)
    unique = np.unique(subjects)
    if unique.size < 2:
        raise ValueError("out-of-subject scores need at least two subjects")
    scores = np.zeros(len(subjects), dtype=np.float64)
    for subject in unique:
        held = subjects == subject
        model = LinearModel.fit(x[~held], live[~held], l2=l2)
        scores[held] = model.decision(x[held])
    return scores


def train(
    x: np.ndarray,
    live: np.ndarray,
    subjects: np.ndarray,
    *,
    l2: float,
    spec: FeatureSpec | None = None,
) -> LinearModel:
    """A calibrated model with its default threshold (see the module docstring), and the
    limits of its guards (:mod:`faceindex.liveness.texture`): the atypicality limit and,
    when ``spec`` has sharpness cues, the sharpness floor."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(live, dtype=np.float64)
    inner = out_of_subject_scores(x, y, subjects, l2=l2)
    a, b = fit_platt(inner, y)
    probs = 0.5 * (1.0 + np.tanh(0.5 * (a * inner + b)))
    threshold = equal_error_threshold(probs, y.astype(bool))
    model = LinearModel.fit(x, y, l2=l2)
    limit = ATYPICAL_FACTOR * float(model.atypicality(x).max())
    meta: dict[str, object] = {"atypical_limit": round(limit, 4), "l2": l2}
    if spec is not None:
        meta["features"] = spec.as_dict()
        index = spec.sharpness_index
        if index is not None:
            live_sharpness = x[y == 1, index]
            meta["min_sharpness"] = round(float(live_sharpness.min()) - SHARPNESS_MARGIN, 4)
    return model.calibrated(a, b, float(np.clip(threshold, 0.0, 1.0))).with_meta(**meta)


def featurise(
    images: Sequence[ImageArray | None],
    faces: Sequence[Face | None],
    spec: FeatureSpec,
) -> tuple[np.ndarray, np.ndarray]:
    """``(N, spec.dim)`` features of each image's face (rows of zeros where none) and the
    contrast of each crop (:func:`~faceindex.liveness.features.crop_contrast`)."""
    out = np.zeros((len(images), spec.dim), dtype=np.float32)
    contrast = np.zeros(len(images), dtype=np.float32)
    for i, (image, face) in enumerate(zip(images, faces, strict=True)):
        if image is not None and face is not None:
            crop = spec_crop(image, face, spec)
            out[i] = colour_texture_features(crop, spec)
            contrast[i] = crop_contrast(crop)
    return out, contrast
