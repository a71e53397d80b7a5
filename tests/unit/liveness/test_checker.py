"""The shipped colour-texture checker: its model file, guards and registry (no dataset
and no detector needed: faces are given as boxes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceindex.errors import ConfigError, FaceIndexError, ModelUnavailableError
from faceindex.liveness import (
    DEFAULT_CHECKER,
    LIVENESS_CHECKERS,
    LivenessChecker,
    LivenessScore,
    SpoofDetectedError,
    attacks,
    require_live,
)
from faceindex.liveness.texture import MODEL_FILE, ColourTextureChecker
from faceindex.types import BBox, Face

PACKAGE = Path(__file__).resolve().parents[3] / "src" / "faceindex" / "liveness"
BOX = Face(BBox(220.0, 140.0, 420.0, 340.0), 0.9)


@pytest.fixture(scope="module")
def checker() -> ColourTextureChecker:
    c = ColourTextureChecker()
    c.warm_up()
    return c


def _textured(seed: int = 0) -> np.ndarray:
    """A smooth, face-sized colour pattern (skin-ish tones, soft texture)."""
    import cv2

    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, (60, 80, 3)).astype(np.float32)
    base = cv2.resize(cv2.GaussianBlur(base, (0, 0), 2.0), (640, 480))
    image = np.array([190.0, 140.0, 120.0]) + 25 * base / base.std()
    return np.clip(image, 0, 255).astype(np.uint8)


def test_shipped_model_is_small_and_documents_its_data(checker: ColourTextureChecker) -> None:
    path = PACKAGE / MODEL_FILE
    assert path.is_file() and path.stat().st_size <= 1_000_000
    meta = checker.model.meta
    assert meta["trained_by"] == "scripts/train_liveness.py"
    assert meta["data"]["name"] == "nuaa-dev" and len(meta["data"]["subjects"]) >= 2
    assert checker.model.dim == checker.spec.dim
    assert 0.0 < checker.threshold < 1.0
    assert meta["atypical_limit"] > 1.0 and "min_sharpness" in meta


def test_registry_and_protocol() -> None:
    assert DEFAULT_CHECKER in LIVENESS_CHECKERS
    made = LIVENESS_CHECKERS.get(DEFAULT_CHECKER)()
    assert isinstance(made, LivenessChecker) and made.name == "colour-texture"
    with pytest.raises(ConfigError, match="colour-texture"):
        LIVENESS_CHECKERS.get("nope")


def test_scores_are_probabilities_in_face_order(checker: ColourTextureChecker) -> None:
    image = _textured()
    faces = [BOX, Face(BBox(10, 10, 110, 110), 0.8)]
    out = checker.check(image, faces)
    assert len(out) == 2 and all(0.0 <= s.score <= 1.0 for s in out)
    assert all(s.threshold == checker.threshold and s.checker == "colour-texture" for s in out)
    again = checker.check(image, faces)
    assert [s.score for s in again] == [s.score for s in out]  # deterministic
    assert checker.check(image, []) == ()


@pytest.mark.parametrize(
    "image",
    [
        attacks.uniform_image(value=0),
        attacks.uniform_image(value=128),
        attacks.uniform_image(value=255),
        attacks.noise_image(seed=0),
        attacks.noise_image(seed=1),
    ],
    ids=["black", "grey", "white", "noise0", "noise1"],
)
def test_flat_and_noise_crops_are_not_live(
    checker: ColourTextureChecker, image: np.ndarray
) -> None:
    (score,) = checker.check(image, [BOX])
    assert score.score == 0.0 and not score.live


def test_heavy_blur_is_not_live(checker: ColourTextureChecker) -> None:
    image = attacks.blurred(_textured(3), sigma=12.0)
    (score,) = checker.check(image, [BOX])
    assert not score.live


def test_threshold_override_and_validation() -> None:
    assert ColourTextureChecker(threshold=0.9).threshold == 0.9
    with pytest.raises(ValueError, match="threshold"):
        ColourTextureChecker(threshold=1.5)


def test_missing_model_is_model_unavailable(tmp_path: Path) -> None:
    broken = ColourTextureChecker(model_path=tmp_path / "none.npz")
    with pytest.raises(ModelUnavailableError, match="train_liveness"):
        broken.warm_up()


def test_liveness_score_and_spoof_error() -> None:
    assert LivenessScore(0.5, 0.5, "x").live and not LivenessScore(0.49, 0.5, "x").live
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        LivenessScore(1.5, 0.5, "x")
    require_live([LivenessScore(0.9, 0.5, "x")])
    with pytest.raises(SpoofDetectedError) as info:
        require_live([LivenessScore(0.9, 0.5, "x"), LivenessScore(0.1, 0.5, "x")], label="a.jpg")
    assert isinstance(info.value, FaceIndexError) and info.value.code == "spoof_detected"
    assert info.value.details["face"] == 1 and "a.jpg" in info.value.message


def test_simulated_screen_recapture_is_deterministic() -> None:
    image = _textured(4)[::4, ::4].copy()
    a = attacks.screen_recapture(image, seed=1)
    assert a.shape == image.shape and a.dtype == np.uint8
    assert np.array_equal(a, attacks.screen_recapture(image, seed=1))
    assert not np.array_equal(a, attacks.screen_recapture(image, seed=2))
