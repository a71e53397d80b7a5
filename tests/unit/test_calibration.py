"""The size-aware open-set threshold: hand-computed cases and its use by the gallery."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from faceindex.calibration import ImpostorTail
from faceindex.gallery import open_gallery
from faceindex.pipeline import Pipeline
from faceindex.testing.fakes import FakeDetector, FakeEmbedder

TAIL = ImpostorTail(u=0.5, p_u=0.01, beta=0.05)


def test_tail_by_hand() -> None:
    assert TAIL.exceed(0.4) == 0.01  # below the modelled tail: capped at p_u
    assert TAIL.exceed(0.55) == pytest.approx(0.01 * math.exp(-1))
    # One person, 1% target: the per-person rate is p_u itself, so the threshold is u.
    assert TAIL.threshold(1, 0.01) == pytest.approx(0.5)
    # 100 people: per person 1 - 0.99 ** (1/100) = 1.00503e-4; t = u + beta ln(p_u / that).
    per_person = 1 - 0.99 ** (1 / 100)
    assert TAIL.threshold(100, 0.01) == pytest.approx(0.5 + 0.05 * math.log(0.01 / per_person))
    assert TAIL.threshold(100, 0.01) == pytest.approx(0.73001, abs=1e-4)


def test_threshold_rises_with_the_gallery_and_keeps_its_promise() -> None:
    sizes = [1, 5, 20, 50, 1000, 100_000]
    thresholds = [TAIL.threshold(n, 0.01) for n in sizes]
    assert thresholds == sorted(thresholds) and thresholds[-1] > thresholds[1]
    for n, t in zip(sizes[1:], thresholds[1:], strict=True):
        assert TAIL.fpir(t, n) == pytest.approx(0.01, rel=1e-6)


@pytest.mark.parametrize(
    "bad", [{"u": 0.5, "p_u": 0.0, "beta": 0.1}, {"u": 0.5, "p_u": 0.01, "beta": 0.0}]
)
def test_tail_refuses_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ImpostorTail(**bad)
    with pytest.raises(ValueError):
        TAIL.threshold(10, 0.0)


def test_gallery_threshold_follows_its_size(tmp_path: Path) -> None:
    from faceindex.testing.synthetic import synthetic_photo_bytes

    embedder = FakeEmbedder()
    tail = ImpostorTail(u=0.4, p_u=0.01, beta=0.05)
    embedder.spec = dataclasses.replace(
        FakeEmbedder.spec, threshold=0.3, identify_threshold=None, impostor_tail=tail
    )
    pipeline = Pipeline(detector=FakeDetector(), embedder=embedder)
    with open_gallery(tmp_path / "g.db", pipeline=pipeline) as g:
        seen = []
        for person in range(1, 6):
            g.enroll(f"p{person}", [synthetic_photo_bytes([person])])
            seen.append(g.threshold)
        assert seen == [pytest.approx(tail.threshold(n, 0.01)) for n in range(1, 6)]
        assert seen == sorted(seen) and seen[-1] > seen[0]
        g.remove("p5")  # erasure shrinks the gallery, and the threshold follows
        assert g.threshold == pytest.approx(tail.threshold(4, 0.01))
    with open_gallery(tmp_path / "g.db", pipeline=pipeline, threshold=0.8) as g:
        assert g.threshold == 0.8  # a fixed threshold stays fixed
    embedder.spec = dataclasses.replace(embedder.spec, threshold=0.5)
    strict = Pipeline(detector=FakeDetector(), embedder=embedder)
    with open_gallery(tmp_path / "g.db", pipeline=strict) as g:
        # Never below the verification threshold, which binds for a few people only.
        assert tail.threshold(4, 0.01) < 0.5 < tail.threshold(40, 0.01)
        assert g.threshold == 0.5


def test_genuine_scores_by_hand() -> None:
    from faceindex.calibration import GenuineScores

    g = GenuineScores(((0.0, 0.5), (0.1, 0.7), (1.0, 0.9)))
    assert g.fnir(0.4) == 0.0 and g.fnir(0.95) == 1.0
    assert g.fnir(0.6) == pytest.approx(0.05)
    assert g.fnir(0.8) == pytest.approx(0.55)
    with pytest.raises(ValueError):
        GenuineScores(((0.0, 0.5), (0.5, 0.4), (1.0, 0.9)))
    with pytest.raises(ValueError):
        GenuineScores(((0.1, 0.5), (1.0, 0.9)))


def test_fusion_templates_convert_exactly_between_weights() -> None:
    import numpy as np

    from faceindex.embedding.fusion import FusionEmbedder, FusionV1Embedder

    rng = np.random.default_rng(0)
    s = rng.normal(size=(4, 128)).astype(np.float32)
    d = rng.normal(size=(4, 128)).astype(np.float32)
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    old, new = FusionV1Embedder(), FusionEmbedder()  # cheap: no model loads
    v1 = old.fuse(s, d)
    converted = new.convert(v1, old.spec.model_id)
    assert converted is not None
    assert np.abs(converted - new.fuse(s, d)).max() < 1e-6
    assert np.allclose(np.linalg.norm(converted, axis=1), 1.0, atol=1e-6)
    back = old.convert(converted, new.spec.model_id)
    assert back is not None and np.abs(back - v1).max() < 1e-6
    assert new.convert(v1, "sface-2021dec") is None
