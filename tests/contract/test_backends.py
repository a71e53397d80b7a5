"""Every registered backend honours its role's protocol: one parametrised test per role.

The names come from the registries themselves, so a newly registered backend is tested
without touching this file. Real models run on ``tests/fixtures/images/obama.jpg`` and are
marked ``integration``; the ``fake`` detector and embedder run on synthetic photos, and the
vector indexes on random vectors, in well under a second each. Backend specifics (recall of
the ANN indexes, file corruption, the dlib graph cache, ...) are tested next to each
backend in ``tests/unit``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceindex.detection import DETECTORS, Detector
from faceindex.embedding import EMBEDDERS, Embedder, EmbedderSpec
from faceindex.index import INDEXES, PAD_ID, VectorIndex, build_index, load_index
from faceindex.testing import synthetic_photo
from faceindex.types import Face, ImageArray

FAKE = "fake"
#: People in the synthetic photo the fake backends see.
PEOPLE = (11, 22, 33)


def _params(names: list[str]) -> list[object]:
    """Each name as a parameter; every backend but the fake one runs a real model."""
    return [n if n == FAKE else pytest.param(n, marks=pytest.mark.integration) for n in names]


@pytest.fixture(scope="module")
def synthetic() -> ImageArray:
    return synthetic_photo(PEOPLE, variant=1)


def _photo(name: str, request: pytest.FixtureRequest) -> ImageArray:
    if name == FAKE:
        photo: ImageArray = request.getfixturevalue("synthetic")
    else:
        photo = request.getfixturevalue("obama_rgb")
    return photo


# ------------------------------------------------------------------------ detectors


@pytest.mark.parametrize("name", DETECTORS.names())
def test_detector_factories_take_the_common_options_and_load_nothing(name: str) -> None:
    detector = DETECTORS.get(name)(min_face_px=30, score_threshold=0.5)
    assert isinstance(detector, Detector)
    assert detector.name == name


#: Options that keep a slow backend's contract check short (the CNN on a 300 px photo, no
#: upsampling, takes ~1 s instead of ~25 s at its defaults; the contract is the same).
_QUICK: dict[str, dict[str, int]] = {"dlib-cnn": {"max_side": 300, "upsample": 0}}


@pytest.mark.parametrize("name", _params(DETECTORS.names()))
def test_detector_contract(name: str, request: pytest.FixtureRequest) -> None:
    detector: Detector = DETECTORS.get(name)(**_QUICK.get(name, {}))
    detector.warm_up()
    image = _photo(name, request)
    h, w = image.shape[:2]

    faces = detector.detect(image)
    assert isinstance(faces, tuple) and faces
    assert all(isinstance(f, Face) for f in faces)
    if name == FAKE:
        assert len(faces) == len(PEOPLE)
    areas = [f.bbox.area for f in faces]
    assert areas == sorted(areas, reverse=True), "faces must come largest first"
    for face in faces:
        b = face.bbox
        assert 0 <= b.x1 <= b.x2 <= w and 0 <= b.y1 <= b.y2 <= h, b
        assert b.width > 0 and b.height > 0
        assert np.isfinite(face.score)
        if face.landmarks is not None:
            assert face.landmarks.points.shape == (5, 2)
        assert face.embedding is None  # detectors do not embed

    assert detector.detect(np.full((480, 640, 3), 128, np.uint8)) == ()
    assert detector.detect(np.zeros((200, 200, 3), np.uint8)) == ()


# ------------------------------------------------------------------------ embedders


@pytest.mark.parametrize("name", EMBEDDERS.names())
def test_embedder_factories_take_the_common_options_and_load_nothing(
    name: str, tmp_path: Path
) -> None:
    embedder = EMBEDDERS.get(name)(threads=1, flip=True, cache_dir=tmp_path)
    assert isinstance(embedder, Embedder)
    spec = embedder.spec
    assert isinstance(spec, EmbedderSpec) and spec.name == name
    assert isinstance(spec.model_id, str) and spec.model_id
    assert isinstance(spec.dim, int) and spec.dim > 0
    assert 0.0 < spec.threshold <= 1.0
    assert spec.identify_threshold is None or 0.0 < spec.identify_threshold <= 1.0
    assert list(tmp_path.iterdir()) == []  # construction writes (and loads) nothing


@pytest.mark.parametrize("name", _params(EMBEDDERS.names()))
def test_embedder_contract(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    image = _photo(name, request)
    detector: Detector = DETECTORS.get(FAKE if name == FAKE else "yunet")()
    faces = detector.detect(image)
    assert faces
    embedder: Embedder = EMBEDDERS.get(name)(threads=2, flip=False, cache_dir=tmp_path)
    embedder.warm_up()
    dim = embedder.spec.dim

    vectors = embedder.embed(image, faces)
    assert isinstance(vectors, np.ndarray)
    assert vectors.dtype == np.float32 and vectors.shape == (len(faces), dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.embed(image, faces), vectors, rtol=0, atol=1e-6)
    # One face at a time gives what the batch gives.
    np.testing.assert_allclose(embedder.embed(image, faces[:1]), vectors[:1], atol=1e-5)
    assert embedder.embed(image, ()).shape == (0, dim)


# ------------------------------------------------------------------------ vector indexes

DIM = 32
#: Options that make a backend run its approximate path on a small test set.
INDEX_OPTIONS: dict[str, dict[str, int]] = {"pq-rerank": {"train_at": 200, "rerank": 60}}


@pytest.mark.parametrize("name", INDEXES.names())
def test_index_contract(name: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1000, 1300, dtype=np.int64)

    index: VectorIndex = build_index(name, DIM, **INDEX_OPTIONS.get(name, {}))
    assert isinstance(index, VectorIndex) and index.backend == name
    assert index.dim == DIM and len(index) == 0
    index.add(ids, vectors)
    assert len(index) == 300 and sorted(index.ids().tolist()) == ids.tolist()

    found, sims = index.search(vectors, 5)
    assert found.shape == sims.shape == (300, 5)
    assert found.dtype == np.int64 and sims.dtype == np.float32
    np.testing.assert_array_equal(found[:, 0], ids)  # every vector finds itself first
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-5)
    assert (np.diff(sims, axis=1) <= 1e-6).all()  # best first

    gone = ids[::10]
    assert index.remove(gone) == len(gone)
    assert len(index) == 300 - len(gone)
    found, _ = index.search(vectors, 5)
    assert not np.isin(found, gone).any()

    path = tmp_path / f"{name}.idx"
    index.save(path)
    loaded = load_index(path, backend=name, dim=DIM)
    assert type(loaded) is type(index) and len(loaded) == len(index)
    assert sorted(loaded.ids().tolist()) == sorted(index.ids().tolist())
    again, _ = loaded.search(vectors, 5)
    np.testing.assert_array_equal(again, found)

    small = build_index(name, DIM)
    small.add([7], vectors[:1])
    found, sims = small.search(vectors[:1], 3)
    assert found[0, 0] == 7 and (found[0, 1:] == PAD_ID).all() and np.isneginf(sims[0, 1:]).all()
