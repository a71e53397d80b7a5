"""The ``colour-texture`` liveness checker: colour LBP + colour moments + sharpness cues,
a logistic regression trained by ``scripts/train_liveness.py``, and three guards.

The model (:data:`MODEL_FILE`, about 6 KB) ships inside this package; its JSON
header records the feature spec, the training data and the figures measured when it was
made. The guards answer "not live" (score 0) for what the model was never shown:

- a **flat** crop (grey levels spread less than :data:`MIN_CONTRAST`): a blank or
  uniform image, a face blown out by glare;
- a crop **less sharp** than any live training face by a margin (the model's
  ``min_sharpness``): a heavily blurred face shows no surface to judge;
- an **atypical** crop: one whose standardised features are, on average, far outside
  what the training faces spanned (:meth:`LinearModel.atypicality` above the limit stored
  with the model: the largest of the training faces times a safety factor). Random
  noise, for one, has LBP histograms no face has; so do the simulated screen recaptures.

The guards make the checker fail closed: a liveness check that cannot tell says "not
live".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from faceindex.errors import ModelUnavailableError
from faceindex.liveness import LivenessScore
from faceindex.liveness.classifier import LinearModel
from faceindex.liveness.features import (
    FeatureSpec,
    colour_texture_features,
    crop_contrast,
    spec_crop,
)
from faceindex.models.lazy import Lazy
from faceindex.types import Face, FloatArray, ImageArray

log = logging.getLogger(__name__)

#: The shipped model, next to this module.
MODEL_FILE = "colour_texture_v1.npz"
#: Least standard deviation of a crop's grey levels (0-255) for a face to be judged at all.
MIN_CONTRAST = 6.0


def load_model(path: Path | None = None) -> LinearModel:
    """The shipped model (or the one at ``path``); :class:`ModelUnavailableError` if it is
    missing or unreadable."""
    try:
        if path is not None:
            return LinearModel.load(path)
        resource = resources.files("faceindex.liveness").joinpath(MODEL_FILE)
        with resource.open("rb") as fh:
            return LinearModel.load(fh)
    except (OSError, KeyError, ValueError) as exc:
        where = str(path) if path is not None else f"faceindex/liveness/{MODEL_FILE}"
        raise ModelUnavailableError(
            f"liveness model {where} is missing or damaged ({exc}); reinstall faceindex or "
            "retrain it with scripts/train_liveness.py",
            path=where,
        ) from exc


def guarded_scores(
    model: LinearModel, spec: FeatureSpec, x: np.ndarray, contrast: np.ndarray
) -> np.ndarray:
    """Calibrated scores of feature rows ``x``, 0 where a guard rejects the crop (flat,
    atypical, or less sharp than the model's floor): the checker's rule, as a function of
    features so the benchmark scores exactly as the checker does."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    probs = np.clip(model.probability(x), 0.0, 1.0)
    rejected = np.asarray(contrast) < MIN_CONTRAST
    rejected |= model.atypicality(x) > float(model.meta.get("atypical_limit", np.inf))
    index = spec.sharpness_index
    if index is not None and "min_sharpness" in model.meta:
        rejected |= x[:, index] < float(model.meta["min_sharpness"])
    if rejected.any():
        log.debug("liveness: %d face(s) flat, atypical or blurred: scored 0", int(rejected.sum()))
    out: np.ndarray = np.where(rejected, 0.0, probs)
    return out


class ColourTextureChecker:
    """See the module docstring. ``threshold``: the live/attack cut on the calibrated
    score (default: the model's, chosen on its training subjects); ``model_path``: a
    model file to use instead of the shipped one; ``model``: a model already in memory
    (the benchmark's per-fold models)."""

    name = "colour-texture"

    def __init__(
        self,
        *,
        threshold: float | None = None,
        model_path: Path | None = None,
        model: LinearModel | None = None,
    ) -> None:
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self._threshold = threshold
        given = model
        self._model = Lazy(lambda: given if given is not None else load_model(model_path))

    @property
    def model(self) -> LinearModel:
        return self._model.get()

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec.from_dict(dict(self.model.meta.get("features", {})))

    @property
    def threshold(self) -> float:
        return self._threshold if self._threshold is not None else self.model.threshold

    def warm_up(self) -> None:
        self._model.get()

    def features(self, image: ImageArray, faces: Sequence[Face]) -> tuple[FloatArray, np.ndarray]:
        """The feature rows of the faces and the contrast of each crop."""
        spec = self.spec
        rows, contrast = [], []
        for face in faces:
            crop = spec_crop(image, face, spec)
            rows.append(colour_texture_features(crop, spec))
            contrast.append(crop_contrast(crop))
        x = np.stack(rows) if rows else np.zeros((0, spec.dim), np.float32)
        return x, np.array(contrast, dtype=np.float32)

    def scores(self, image: ImageArray, faces: Sequence[Face]) -> np.ndarray:
        """The calibrated score of each face, guards applied (``(N,)`` float64)."""
        if not faces:
            return np.zeros(0)
        x, contrast = self.features(image, faces)
        return guarded_scores(self.model, self.spec, x, contrast)

    def check(self, image: ImageArray, faces: Sequence[Face]) -> tuple[LivenessScore, ...]:
        threshold = self.threshold
        return tuple(
            LivenessScore(float(s), threshold, self.name) for s in self.scores(image, faces)
        )
