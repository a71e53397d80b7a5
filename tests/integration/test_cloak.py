"""The privacy cloak with the real nets on a real photo: after a medium cloak, both of
faceindex's recognisers no longer match the face to its clean self, and it stays similar
to the eye (SSIM >= 0.95 around the face); the rest of the photo is untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from faceindex.cloak.cloaker import Cloaker
from faceindex.embedding.specs import DLIB_RESNET, SFACE
from faceindex.io.image import load_image
from faceindex.pipeline import Pipeline


@pytest.fixture(scope="module")
def cloaker(pipeline: Pipeline) -> Cloaker:
    c = Cloaker(pipeline)
    c.warm_up()
    return c


def test_medium_cloak_defeats_both_models(
    cloaker: Cloaker, fixtures_dir: Path, tmp_path: Path
) -> None:
    src = fixtures_dir / "obama.jpg"
    dst = tmp_path / "obama-cloaked.png"
    report = cloaker.cloak_file(src, dst, strength="medium", seed=0)
    (face,) = report.faces
    assert set(face.similarity_after) == {DLIB_RESNET.model_id, SFACE.model_id}
    assert face.similarity_before[DLIB_RESNET.model_id] > 0.99  # PNG: nothing lost
    assert face.similarity_after[DLIB_RESNET.model_id] < DLIB_RESNET.threshold
    assert face.similarity_after[SFACE.model_id] < SFACE.threshold
    assert face.protected_from == (DLIB_RESNET.model_id, SFACE.model_id)
    assert face.ssim >= 0.95 and report.ssim >= 0.95
    clean, cloaked = load_image(src), load_image(dst)
    changed = np.argwhere((clean != cloaked).any(-1))
    b = face.bbox
    side = max(b.width, b.height)
    assert changed[:, 1].min() >= b.x1 - side and changed[:, 1].max() <= b.x2 + side
    assert changed[:, 0].min() >= b.y1 - side and changed[:, 0].max() <= b.y2 + side
