"""The real models on real photos: detection counts, alignment, embeddings, decisions."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.alignment import arcface_crop
from faceindex.detection import DETECTORS, Detector
from faceindex.embedding import EMBEDDERS, Embedder
from faceindex.errors import EmbeddingModelMismatchError, NoFaceError
from faceindex.io.image import load_image
from faceindex.pipeline import Pipeline, is_crop_fallback
from faceindex.types import Embedding

ONE_FACE = [
    "obama.jpg",
    "obama2.jpg",
    "obama3.jpg",
    "biden.jpg",
    "obama_small.jpg",
    "alex-lacamoire.png",
    "lin-manuel-miranda.png",
]


def _no_face_image() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.coffee())


@pytest.mark.parametrize("name", ["yunet", "dlib-hog"])
def test_detector_counts_faces(name: str, fixtures_dir: Path) -> None:
    detector: Detector = DETECTORS.get(name)()
    assert isinstance(detector, Detector)
    for photo in ONE_FACE:
        faces = detector.detect(load_image(fixtures_dir / photo))
        assert len(faces) == 1, photo
        f = faces[0]
        assert f.landmarks is not None and f.landmarks.points.shape == (5, 2)
        pts = f.landmarks.points
        pad = 0.2 * f.bbox.width
        assert (pts[:, 0] > f.bbox.x1 - pad).all() and (pts[:, 0] < f.bbox.x2 + pad).all()
    two = detector.detect(load_image(fixtures_dir / "two_people.jpg"))
    assert len(two) == 2
    assert two[0].bbox.area >= two[1].bbox.area
    assert two[0].bbox.iou(two[1].bbox) == 0.0
    assert detector.detect(_no_face_image()) == ()


@pytest.mark.slow
def test_dlib_cnn_detector_finds_the_face(fixtures_dir: Path) -> None:
    detector = DETECTORS.get("dlib-cnn")(max_side=300, upsample=0)
    faces = detector.detect(load_image(fixtures_dir / "obama.jpg"))
    assert len(faces) == 1
    hog = DETECTORS.get("dlib-hog")().detect(load_image(fixtures_dir / "obama.jpg"))[0]
    assert faces[0].bbox.iou(hog.bbox) > 0.5


def test_yunet_and_hog_agree_on_face_location(fixtures_dir: Path) -> None:
    image = load_image(fixtures_dir / "two_people.jpg")
    yunet = DETECTORS.get("yunet")().detect(image)
    hog = DETECTORS.get("dlib-hog")().detect(image)
    for y in yunet:
        assert max(y.bbox.iou(h.bbox) for h in hog) > 0.4


def test_min_face_px_drops_small_faces(fixtures_dir: Path) -> None:
    image = load_image(fixtures_dir / "two_people.jpg")
    all_faces = DETECTORS.get("yunet")().detect(image)
    smallest = min(min(f.bbox.width, f.bbox.height) for f in all_faces)
    kept = DETECTORS.get("yunet")(min_face_px=int(smallest) + 1).detect(image)
    assert len(kept) == len(all_faces) - 1


def test_small_faces_found_by_upscaling(fixtures_dir: Path) -> None:
    image = load_image(fixtures_dir / "two_people.jpg")
    tiny = np.ascontiguousarray(np.asarray(Image.fromarray(image).resize((240, 141))))
    faces = DETECTORS.get("yunet")(min_face_px=10).detect(tiny)
    assert len(faces) == 2  # faces of about 30 px
    assert max(f.bbox.width for f in faces) < 50


def test_tight_aligned_crop_is_found_without_flags(pipeline: Pipeline, fixtures_dir: Path) -> None:
    image = load_image(fixtures_dir / "obama2.jpg")
    face = pipeline.detector.detect(image)[0]
    assert face.landmarks is not None
    crop = arcface_crop(image, face.landmarks, size=112)
    found = pipeline.detect(crop)
    assert len(found) == 1
    assert found[0].bbox.width > 50
    assert not is_crop_fallback(found[0])  # detected, not taken whole
    result = pipeline.verify(crop, fixtures_dir / "obama.jpg")
    assert result.match


@pytest.mark.parametrize("name", ["sface", "dlib-resnet", "fusion"])
def test_embedders_separate_people(name: str, fixtures_dir: Path) -> None:
    embedder: Embedder = EMBEDDERS.get(name)()
    assert isinstance(embedder, Embedder)
    detector = DETECTORS.get("yunet")()
    vec = {}
    for photo in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "alex-lacamoire.png"):
        image = load_image(fixtures_dir / photo)
        faces = detector.detect(image)
        out = embedder.embed(image, faces)
        assert out.shape == (1, embedder.spec.dim) and out.dtype == np.float32
        assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
        vec[photo] = out[0]
    thr = embedder.spec.threshold
    genuine = [
        ("obama.jpg", "obama2.jpg"),
        ("obama.jpg", "obama3.jpg"),
        ("obama2.jpg", "obama3.jpg"),
    ]
    impostor = [
        ("obama.jpg", "biden.jpg"),
        ("obama2.jpg", "alex-lacamoire.png"),
        ("biden.jpg", "alex-lacamoire.png"),
    ]
    for a, b in genuine:
        assert float(vec[a] @ vec[b]) >= thr, (a, b)
    for a, b in impostor:
        assert float(vec[a] @ vec[b]) < thr, (a, b)
    assert embedder.embed(load_image(fixtures_dir / "obama.jpg"), ()).shape == (
        0,
        embedder.spec.dim,
    )


def test_embedders_work_with_dlib_landmarks(fixtures_dir: Path) -> None:
    image = load_image(fixtures_dir / "obama.jpg")
    other = load_image(fixtures_dir / "obama2.jpg")
    hog = DETECTORS.get("dlib-hog")()
    for name in ("sface", "dlib-resnet"):
        emb = EMBEDDERS.get(name)()
        a = emb.embed(image, hog.detect(image))[0]
        b = emb.embed(other, hog.detect(other))[0]
        assert float(a @ b) >= emb.spec.threshold, name


def test_dlib_backends_agree(fixtures_dir: Path) -> None:
    image = load_image(fixtures_dir / "two_people.jpg")
    faces = DETECTORS.get("yunet")().detect(image)
    onnx = EMBEDDERS.get("dlib-resnet")(backend="onnx").embed(image, faces)
    ref = EMBEDDERS.get("dlib-resnet")(backend="dlib").embed(image, faces)
    assert np.abs(onnx - ref).max() < 1e-4


def test_batch_equals_single(fixtures_dir: Path) -> None:
    image = load_image(fixtures_dir / "two_people.jpg")
    faces = DETECTORS.get("yunet")().detect(image)
    emb = EMBEDDERS.get("fusion")()
    both = emb.embed(image, faces)
    one = np.vstack([emb.embed(image, [f]) for f in faces])
    assert np.abs(both - one).max() < 1e-5


def test_pipeline_verify_and_decisions(pipeline: Pipeline, fixtures_dir: Path) -> None:
    same = pipeline.verify(fixtures_dir / "obama.jpg", fixtures_dir / "obama3.jpg")
    diff = pipeline.verify(fixtures_dir / "obama.jpg", fixtures_dir / "biden.jpg")
    assert same.match and not diff.match
    assert same.similarity > diff.similarity
    assert same.threshold == pipeline.embedder.spec.threshold
    assert same.model_id == "fusion-sface-dlib-v2"


def test_verify_takes_each_photos_subject(pipeline: Pipeline, fixtures_dir: Path) -> None:
    """A portrait with a larger bystander at its edge: the subject is the centred face."""
    from PIL import Image

    canvas = Image.new("RGB", (1000, 800), (120, 120, 120))
    with Image.open(fixtures_dir / "biden.jpg") as biden:
        big = biden.convert("RGB").resize((biden.width * 3, biden.height * 3))
        canvas.paste(big.crop((230, 60, 530, 420)), (700, 0))  # Biden: large, top right
    with Image.open(fixtures_dir / "obama2.jpg") as obama:
        centred = obama.convert("RGB").resize((300, 576))
        canvas.paste(centred, (350, 150))  # Obama: smaller, in the middle
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    photo = buf.getvalue()
    faces = pipeline.detect(photo)
    assert len(faces) == 2
    subject = pipeline.subject_face(photo)
    assert subject.bbox == faces[1].bbox  # not the largest (faces[0], Biden's)
    assert pipeline.verify(fixtures_dir / "obama.jpg", photo).match


def test_no_face_is_no_face(pipeline: Pipeline) -> None:
    assert pipeline.detect(_no_face_image()) == ()
    assert pipeline.detect(np.full((300, 300, 3), 128, np.uint8)) == ()
    with pytest.raises(NoFaceError):
        pipeline.subject_face(_no_face_image())


def test_grayscale_and_rotated_photos(pipeline: Pipeline, obama_rgb: np.ndarray) -> None:
    gray = Image.fromarray(obama_rgb).convert("L")
    buf = io.BytesIO()
    gray.save(buf, "JPEG")
    assert len(pipeline.detect(buf.getvalue())) == 1
    # stored sideways with an EXIF tag: the face must come back upright, same place
    stored = Image.fromarray(obama_rgb).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    rotated = pipeline.detect(buf.getvalue())
    upright = pipeline.detect(obama_rgb)
    assert len(rotated) == 1 and rotated[0].bbox.iou(upright[0].bbox) > 0.8


def test_quality_reports_reasons(pipeline: Pipeline, obama_rgb: np.ndarray) -> None:
    import cv2

    good = pipeline.detect(obama_rgb)[0].quality
    assert good is not None and good.acceptable and good.score > 0.5
    assert abs(good.yaw) < 25 and abs(good.roll) < 15
    blurred = cv2.GaussianBlur(obama_rgb, (0, 0), 6)
    q = pipeline.detect(blurred)
    assert q and q[0].quality is not None and "blurry" in q[0].quality.issues
    dark = (obama_rgb * 0.12).astype(np.uint8)
    qd = pipeline.detect(dark)
    assert qd and qd[0].quality is not None and "too_dark" in qd[0].quality.issues
    small = np.ascontiguousarray(np.asarray(Image.fromarray(obama_rgb).resize((96, 120))))
    qs = pipeline.detect(small)
    assert qs and qs[0].quality is not None and "too_small" in qs[0].quality.issues


def test_quality_pose_from_a_turned_face(pipeline: Pipeline, obama_rgb: np.ndarray) -> None:
    face = pipeline.detect(obama_rgb)[0]
    assert face.landmarks is not None
    pts = face.landmarks.points.copy()
    pts[2, 0] = pts[1, 0] + 2  # nose pushed out to the eye: a strongly turned head
    from faceindex.quality import assess

    turned = dataclasses.replace(face, landmarks=dataclasses.replace(face.landmarks, points=pts))
    q = assess(obama_rgb, turned)
    assert q.yaw > 60 and "extreme_pose" in q.issues


def test_embeddings_of_different_models_never_compare(pipeline: Pipeline) -> None:
    a = Embedding(np.ones(128, np.float32), "sface-2021dec")
    b = Embedding(np.ones(128, np.float32), "dlib-resnet-v1")
    with pytest.raises(EmbeddingModelMismatchError):
        pipeline.compare(a, b)


def test_flip_averaging_changes_vectors_not_decisions(fixtures_dir: Path) -> None:
    detector = DETECTORS.get("yunet")()
    plain, flipped = EMBEDDERS.get("fusion")(), EMBEDDERS.get("fusion")(flip=True)
    vec = {}
    for photo in ("obama.jpg", "obama2.jpg", "biden.jpg"):
        image = load_image(fixtures_dir / photo)
        faces = detector.detect(image)
        a, b = plain.embed(image, faces)[0], flipped.embed(image, faces)[0]
        assert 0.9 < float(a @ b) < 0.99999  # a real second view, close to the first
        vec[photo] = b
    thr = flipped.spec.threshold
    assert float(vec["obama.jpg"] @ vec["obama2.jpg"]) >= thr
    assert float(vec["obama.jpg"] @ vec["biden.jpg"]) < thr


def test_photos_embedded_in_one_batch_match_photo_by_photo(
    pipeline: Pipeline, fixtures_dir: Path
) -> None:
    names = ["obama.jpg", "two_people.jpg", "biden.jpg", "alex-lacamoire.png"]
    items = []
    for name in names:
        image = pipeline.load(fixtures_dir / name)
        items.append((image, pipeline.find_faces(image)))
    batched = pipeline.embed_photos(items)
    assert [len(faces) for faces in batched] == [1, 2, 1, 1]
    for (image, faces), together in zip(items, batched, strict=True):
        alone = pipeline.embed_faces(image, faces)
        for a, b in zip(alone, together, strict=True):
            assert a.embedding is not None and b.embedding is not None
            np.testing.assert_allclose(a.embedding.vector, b.embedding.vector, atol=1e-4)
