"""The torch copies of faceindex's recognisers against the ONNX embedders, on real photos.

Two agreements: the same chips through both networks (the ports), and the whole
differentiable path (photo tensor -> chip_matrix -> chip -> module) against the pipeline's
embedding of the photo (the alignment too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from faceindex.cloak.nets import TorchEmbedder, image_tensor, load_torch_embedders  # noqa: E402
from faceindex.embedding.specs import DLIB_RESNET, SFACE  # noqa: E402
from faceindex.io.image import load_image  # noqa: E402
from faceindex.types import ImageArray  # noqa: E402

PHOTOS = [
    "obama.jpg",
    "obama2.jpg",
    "obama3.jpg",
    "biden.jpg",
    "obama_small.jpg",
    "alex-lacamoire.png",
    "lin-manuel-miranda.png",
    "two_people.jpg",
]
MODELS = [DLIB_RESNET.model_id, SFACE.model_id]


@pytest.fixture(scope="module")
def torch_embedders() -> dict[str, TorchEmbedder]:
    return {e.model_id: e for e in load_torch_embedders()}


@pytest.fixture(scope="module")
def photos(pipeline: Any, fixtures_dir: Path) -> list[tuple[ImageArray, Any]]:
    """Each fixture photo with the pipeline's faces (detected once for every test here)."""
    out = []
    for name in PHOTOS:
        image = load_image(fixtures_dir / name)
        out.append((image, pipeline.find_faces(image)))
    return out


def _onnx_embedder(pipeline: Any, model_id: str) -> Any:
    """The pipeline's own ONNX embedder of ``model_id`` (the default pipeline fuses both)."""
    return pipeline.embedder.dlib if model_id == DLIB_RESNET.model_id else pipeline.embedder.sface


def _onnx_chips(embedder: Any, image: ImageArray, faces: Any) -> list[ImageArray]:
    return list(
        embedder.chips(image, faces) if hasattr(embedder, "chips") else embedder.crops(image, faces)
    )


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))


def test_interface_and_cache(torch_embedders: dict[str, TorchEmbedder]) -> None:
    assert list(torch_embedders) == MODELS
    for spec in (DLIB_RESNET, SFACE):
        emb = torch_embedders[spec.model_id]
        assert (emb.size, emb.threshold) == (spec.input_size, spec.threshold)
        assert not emb.module.training
        params = list(emb.module.parameters())
        assert params and all(p.dtype == torch.float32 and not p.requires_grad for p in params)
    # Loaded once: asking again (by registry name too) returns the same objects.
    again = load_torch_embedders(["sface", "dlib-resnet-v1"])
    assert again[0] is torch_embedders[SFACE.model_id]
    assert again[1] is torch_embedders[DLIB_RESNET.model_id]


@pytest.mark.parametrize("model_id", MODELS)
def test_same_chips_give_the_same_embeddings(
    model_id: str,
    pipeline: Any,
    photos: list[tuple[ImageArray, Any]],
    torch_embedders: dict[str, TorchEmbedder],
) -> None:
    onnx_embedder = _onnx_embedder(pipeline, model_id)
    module = torch_embedders[model_id].module
    chips: list[ImageArray] = []
    for image, faces in photos:
        chips += _onnx_chips(onnx_embedder, image, faces)
    batch = np.stack(chips)
    ref = (
        onnx_embedder.embed_chips(chips)
        if hasattr(onnx_embedder, "embed_chips")
        else onnx_embedder.embed_crops(chips)
    )
    with torch.no_grad():
        out = module(torch.from_numpy(batch.astype(np.float32).transpose(0, 3, 1, 2).copy()))
    assert out.shape == (len(chips), 128)
    np.testing.assert_allclose(np.linalg.norm(out.numpy(), axis=1), 1.0, atol=1e-5)
    assert _cosines(out.numpy(), ref).min() >= 0.9999


def _end_to_end(
    emb: TorchEmbedder, image: ImageArray, faces: Any, *, exact: bool = False
) -> np.ndarray:
    matrices = [emb.chip_matrix(image, f) for f in faces]
    with torch.no_grad():
        return emb.embed(image_tensor(image), matrices, exact=exact).numpy()


@pytest.mark.parametrize("model_id", MODELS)
def test_photo_to_embedding_matches_the_pipeline(
    model_id: str,
    pipeline: Any,
    photos: list[tuple[ImageArray, Any]],
    torch_embedders: dict[str, TorchEmbedder],
) -> None:
    emb = torch_embedders[model_id]
    onnx_embedder = _onnx_embedder(pipeline, model_id)
    worst, worst_exact = 1.0, 1.0
    for image, faces in photos:
        ref = onnx_embedder.embed(image, faces)
        worst = min(worst, _cosines(_end_to_end(emb, image, faces), ref).min())
        worst_exact = min(
            worst_exact, _cosines(_end_to_end(emb, image, faces, exact=True), ref).min()
        )
    # Measured: dlib >= 0.99999, SFace >= 0.9999 with unrounded chips; 8-bit rounding
    # (exact) leaves only float noise.
    assert worst >= 0.999
    assert worst_exact >= 0.99999


@pytest.mark.parametrize("model_id", MODELS)
def test_exact_chips_equal_the_onnx_paths_chips(
    model_id: str,
    pipeline: Any,
    photos: list[tuple[ImageArray, Any]],
    torch_embedders: dict[str, TorchEmbedder],
) -> None:
    emb = torch_embedders[model_id]
    onnx_embedder = _onnx_embedder(pipeline, model_id)
    for image, faces in photos:
        ref = np.stack(_onnx_chips(onnx_embedder, image, faces)).astype(np.float32)
        x = image_tensor(image)
        with torch.no_grad():
            ours = torch.cat([emb.chip(x, emb.chip_matrix(image, f), exact=True) for f in faces])
        diff = np.abs(ours.numpy().transpose(0, 2, 3, 1) - ref)
        # Float rounding can flip a value sitting on a .5 (cv2) or an integer (dlib).
        assert diff.max() <= 1.0 and (diff > 0).mean() < 0.01


@pytest.mark.parametrize("model_id", MODELS)
def test_large_faces_match_too(
    model_id: str, pipeline: Any, obama_rgb: ImageArray, torch_embedders: dict[str, TorchEmbedder]
) -> None:
    """A 3.3x enlarged photo: the face is over twice dlib's chip, so dlib cuts it from its
    image pyramid (SFace still warps the full image)."""
    image = np.ascontiguousarray(
        cv2.resize(obama_rgb, None, fx=3.3, fy=3.3, interpolation=cv2.INTER_CUBIC)
    )
    faces = pipeline.find_faces(image)[:1]
    emb = torch_embedders[model_id]
    ref = _onnx_embedder(pipeline, model_id).embed(image, faces)
    assert _cosines(_end_to_end(emb, image, faces), ref).min() >= 0.999
    assert _cosines(_end_to_end(emb, image, faces, exact=True), ref).min() >= 0.99999


@pytest.mark.parametrize("model_id", MODELS)
def test_gradients_reach_the_face_pixels_only(
    model_id: str, pipeline: Any, obama_rgb: ImageArray, torch_embedders: dict[str, TorchEmbedder]
) -> None:
    emb = torch_embedders[model_id]
    (face,) = pipeline.find_faces(obama_rgb)[:1]
    matrix = emb.chip_matrix(obama_rgb, face)
    clean = _end_to_end(emb, obama_rgb, [face])
    x = image_tensor(obama_rgb).requires_grad_(True)
    similarity = (emb.embed(x, [matrix]) * torch.from_numpy(clean)).sum()
    similarity.backward()
    before = float(similarity.detach())
    grad = x.grad
    assert grad is not None and torch.isfinite(grad).all()
    touched = grad.abs().sum(1)[0] > 0
    assert int(touched.sum()) > 5000  # the whole chip's footprint, not a few pixels
    # Nothing outside the chip's footprint (plus a pixel of bilinear reach) gets gradient.
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))
    corners = inverse @ np.array(
        [[0, emb.size - 1, 0, emb.size - 1], [0, 0, emb.size - 1, emb.size - 1], [1, 1, 1, 1]]
    )
    rows, cols = torch.nonzero(touched, as_tuple=True)
    assert (
        cols.min() >= np.floor(corners[0].min()) - 1 and cols.max() <= np.ceil(corners[0].max()) + 1
    )
    assert (
        rows.min() >= np.floor(corners[1].min()) - 1 and rows.max() <= np.ceil(corners[1].max()) + 1
    )
    # A step against the gradient lowers the similarity: the gradient is usable by an attack.
    with torch.no_grad():
        stepped = (x - 2.0 * grad.sign()).clamp(0, 255)
        after = float((emb.embed(stepped, [matrix]) * torch.from_numpy(clean)).sum())
    assert after < before - 0.01
