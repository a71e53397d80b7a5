"""The typed "unsure" decision of the library: Verification, the pipeline's quality floor
and the gallery's identify (fake backends)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from faceindex.pipeline import Pipeline, with_quality_floor
from faceindex.testing import degrade
from faceindex.testing.degrade import soft_detect
from faceindex.testing.fakes import FakeDetector
from faceindex.testing.synthetic import synthetic_photo
from faceindex.types import Decision, IdentDecision, Verification


@pytest.fixture(autouse=True)
def unsure_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake detector less confident on blurred faces (as YuNet is)."""
    monkeypatch.setattr(FakeDetector, "detect", soft_detect(FakeDetector.detect))


def test_verification_unsure_is_never_a_match() -> None:
    v = Verification(0.95, 0.5, "m")
    assert v.match and v.decision is Decision.MATCH and v.quality is None
    u = dataclasses.replace(v, unsure=True)
    assert not u.match and u.decision is Decision.UNSURE
    assert Verification(0.1, 0.5, "m", unsure=True).decision is Decision.UNSURE


def test_quality_floor_takes_the_worse_face(fake_pipeline: Pipeline) -> None:
    good = fake_pipeline.detect(synthetic_photo([1]))[0]
    soft = fake_pipeline.detect(degrade.gaussian_blur(synthetic_photo([1], variant=1), 5.0))[0]
    assert good.quality is not None and soft.quality is not None
    assert soft.quality.score < 0.3 <= good.quality.score
    v = Verification(0.95, 0.5, "m")
    assert with_quality_floor(v, (good, good), 0.3).decision is Decision.MATCH
    out = with_quality_floor(v, (good, soft), 0.3)
    assert out.unsure and out.quality == soft.quality.score
    assert not with_quality_floor(v, (good, soft), None).unsure  # no floor, no unsure
    bare = dataclasses.replace(good, quality=None)
    assert with_quality_floor(v, (good, bare), 0.0).unsure  # unknown quality passes no floor


def test_verify_faces_with_a_floor(fake_pipeline: Pipeline, photo_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import cv2

    soft = tmp_path / "soft.png"
    image = degrade.gaussian_blur(synthetic_photo([1], variant=1), 5.0)
    cv2.imwrite(str(soft), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    clean = photo_of(1)
    plain = fake_pipeline.verify_faces(clean, soft)
    assert plain.verification.decision is Decision.MATCH
    pair = fake_pipeline.verify_faces(clean, soft, reject_below=0.3)
    assert pair.verification.decision is Decision.UNSURE
    assert pair.verification.similarity == pytest.approx(plain.verification.similarity)
    both = fake_pipeline.verify_faces(clean, photo_of(1, variant=2), reject_below=0.3)
    assert both.verification.decision is Decision.MATCH


def test_gallery_identify_unsure(fake_pipeline: Pipeline, photo_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from faceindex.gallery import Gallery

    gallery = Gallery.open(tmp_path / "g.db", pipeline=fake_pipeline)
    gallery.enroll("Ann", [photo_of(1), photo_of(1, variant=2)])
    image = degrade.gaussian_blur(synthetic_photo([1], variant=1), 5.0)
    (named,) = gallery.identify(image)
    assert named.decision is IdentDecision.IDENTIFIED
    (unsure,) = gallery.identify(image, reject_below=0.3)
    assert unsure.decision is IdentDecision.UNSURE and unsure.person is None
    assert unsure.best is not None and unsure.best.name == "Ann"
    (clear,) = gallery.identify(photo_of(1, variant=1), reject_below=0.3)
    assert clear.decision is IdentDecision.IDENTIFIED
    vectors = np.stack([f.embedding.vector for f in fake_pipeline.analyze(photo_of(1))])  # type: ignore[union-attr]
    with pytest.raises(Exception, match="flags"):
        gallery.searcher.identify(vectors, unsure=[True, False])
