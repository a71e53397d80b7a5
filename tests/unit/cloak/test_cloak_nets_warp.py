"""warp_to_chip against cv2.warpAffine and dlib's own chips; alignment matrices."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from faceindex.alignment import arcface_crop  # noqa: E402
from faceindex.cloak.nets import image_tensor, warp_to_chip  # noqa: E402
from faceindex.cloak.nets.align import (  # noqa: E402
    arcface_matrix,
    chip_matrix_from_details,
    dlib_chip_matrix,
)
from faceindex.cloak.nets.warp import affine_theta, dlib_pyramid_plan  # noqa: E402
from faceindex.errors import InvalidInputError  # noqa: E402
from faceindex.types import BBox, Face, Landmarks, LandmarkScheme  # noqa: E402


def _smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Float32 RGB 0..255 with detail at every scale but no steps (cubic upsampling)."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (height // 10, width // 10, 3)).astype(np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 255)


def _similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty]])


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None]))


def _hwc(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach()[0].numpy().transpose(1, 2, 0)


@pytest.mark.parametrize(
    ("border", "cv_border"),
    [("replicate", cv2.BORDER_REPLICATE), ("zeros", cv2.BORDER_CONSTANT)],
)
@pytest.mark.parametrize(
    "matrix", [_similarity(0.45, 0.3, -20.3, 10.7), _similarity(1.7, -0.1, -90, -40)]
)
def test_warp_matches_cv2_warp_affine(border: str, cv_border: int, matrix: np.ndarray) -> None:
    image = _smooth_image(300, 400)
    ref = cv2.warpAffine(image, matrix, (150, 150), flags=cv2.INTER_LINEAR, borderMode=cv_border)
    out = _hwc(warp_to_chip(_chw(image), matrix, 150, border=border))  # type: ignore[arg-type]
    assert out.shape == (150, 150, 3)
    # Float images: cv2 warps in float too, so both are the same bilinear interpolation.
    assert np.abs(out - ref).max() < 0.05


def test_warp_of_a_uint8_photo_is_within_rounding_of_cv2(obama_rgb: np.ndarray) -> None:
    matrix = _similarity(0.6, 0.2, -40, -10)
    ref = cv2.warpAffine(obama_rgb, matrix, (112, 112), flags=cv2.INTER_LINEAR)
    out = _hwc(warp_to_chip(image_tensor(obama_rgb), matrix, 112, border="zeros"))
    inner = (slice(2, -2), slice(2, -2))
    assert np.abs(out[inner] - ref[inner]).max() <= 0.5 + 1e-3  # cv2 rounds to uint8


def test_identity_matrix_gives_the_identity_theta_and_image() -> None:
    theta = affine_theta(np.eye(2, 3), height=64, width=64, size=64)
    np.testing.assert_allclose(theta, np.eye(2, 3), atol=1e-12)
    image = _smooth_image(64, 64)
    out = _hwc(warp_to_chip(_chw(image), np.eye(2, 3), 64))
    np.testing.assert_allclose(out, image, atol=1e-3)


def test_gradients_reach_only_the_sampled_pixels() -> None:
    image = _chw(_smooth_image(200, 200)).requires_grad_(True)
    # The chip covers image pixels 50..100 in both axes (scale 2: 100 chip px).
    matrix = _similarity(2.0, 0.0, -100.0, -100.0)
    warp_to_chip(image, matrix, 100).sum().backward()
    grad = image.grad
    assert grad is not None and torch.isfinite(grad).all()
    touched = grad.abs().sum(1)[0] > 0
    rows = torch.nonzero(touched.any(1)).flatten()
    cols = torch.nonzero(touched.any(0)).flatten()
    assert (int(rows.min()), int(rows.max())) == (50, 100)
    assert (int(cols.min()), int(cols.max())) == (50, 100)


@pytest.mark.parametrize(("rounding", "to_int"), [("round", np.round), ("floor", np.floor)])
def test_rounding_is_straight_through(rounding: str, to_int: object) -> None:
    image = _chw(_smooth_image(80, 80)).requires_grad_(True)
    matrix = _similarity(0.7, 0.2, 5.0, -3.0)
    plain = warp_to_chip(image, matrix, 40)
    rounded = warp_to_chip(image, matrix, 40, rounding=rounding)  # type: ignore[arg-type]
    np.testing.assert_array_equal(rounded.detach().numpy(), to_int(plain.detach().numpy()))  # type: ignore[operator]
    assert (rounded != plain).any()
    weights = torch.linspace(0, 1, 40 * 40 * 3).reshape(1, 3, 40, 40)
    (g_plain,) = torch.autograd.grad((plain * weights).sum(), image)
    (g_rounded,) = torch.autograd.grad((rounded * weights).sum(), image)
    torch.testing.assert_close(g_rounded, g_plain)


def test_bad_inputs_are_refused() -> None:
    image = _chw(_smooth_image(40, 40))
    with pytest.raises(InvalidInputError, match="shape"):
        warp_to_chip(image[0], np.eye(2, 3), 20)
    with pytest.raises(InvalidInputError, match="border"):
        warp_to_chip(image, np.eye(2, 3), 20, border="reflect")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="rounding"):
        warp_to_chip(image, np.eye(2, 3), 20, rounding="ceil")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"\(2, 3\)"):
        warp_to_chip(image, np.eye(3), 20)


def _face(points: np.ndarray) -> Face:
    pts = np.asarray(points, dtype=np.float32)
    x1, y1 = pts.min(0) - 20
    x2, y2 = pts.max(0) + 20
    return Face(BBox(x1, y1, x2, y2), 0.9, Landmarks(pts, LandmarkScheme.FIVE_POINT))


def test_arcface_matrix_is_the_matrix_arcface_crop_uses(obama_rgb: np.ndarray) -> None:
    face = _face([[150, 150], [220, 148], [185, 190], [158, 225], [214, 223]])
    assert face.landmarks is not None
    crop = arcface_crop(obama_rgb, face.landmarks, size=112)
    matrix = arcface_matrix(face)
    again = cv2.warpAffine(
        obama_rgb, matrix, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    np.testing.assert_array_equal(crop, again)


def test_chip_matrix_of_an_upright_rectangle_is_a_scale_and_shift() -> None:
    # A 299 px wide rectangle (right - left) cut into a 150 px chip: 2 image px a chip px.
    matrix = chip_matrix_from_details(10, 20, 308, 318, 0.0, 150, 150)
    np.testing.assert_allclose(
        matrix, [[149 / 298, 0, -10 * 149 / 298], [0, 149 / 298, -20 * 149 / 298]]
    )
    with pytest.raises(InvalidInputError):
        chip_matrix_from_details(0, 0, 10, 10, 0.0, 1, 1)


def _dlib_shape(points: np.ndarray) -> object:
    import dlib

    pts = np.asarray(points)
    x1, y1 = pts.min(0) - 30
    x2, y2 = pts.max(0) + 30
    rect = dlib.rectangle(int(x1), int(y1), int(x2), int(y2))
    return dlib.full_object_detection(rect, [dlib.point(int(x), int(y)) for x, y in pts])


# dlib's 5 points (image-right eye outer, inner; image-left eye outer, inner; nose base),
# for a face tilted ~10 degrees, at three sizes: no pyramid, one level, two levels.
_DLIB5 = np.array([[262, 140], [236, 143], [170, 152], [196, 148], [222, 200]], dtype=np.float64)


@pytest.mark.parametrize(
    ("scale", "shift", "levels"),
    [
        (1.0, 0.0, 0),
        (1.0, -150.0, 0),  # the chip reaches past the photo's top-left corner
        (2.6, 0.0, 1),
        (2.6, -330.0, 1),
        pytest.param(4.2, 0.0, 2, marks=pytest.mark.slow),
    ],
)
def test_warp_reproduces_dlib_get_face_chip(scale: float, shift: float, levels: int) -> None:
    import dlib

    image_f = _smooth_image(int(400 * scale), int(420 * scale), seed=3)
    image = (image_f.round() + 10).clip(0, 255).astype(np.uint8)  # no black of its own
    shape = _dlib_shape(_DLIB5 * scale + shift)
    details = dlib.get_face_chip_details(shape, 150, 0.25)
    chip = dlib.get_face_chip(image, shape, 150, 0.25).astype(np.float32)
    matrix = dlib_chip_matrix(details)
    plan = dlib_pyramid_plan(matrix, height=image.shape[0], width=image.shape[1], size=150)
    assert plan.levels == levels
    out = _hwc(warp_to_chip(image_tensor(image), matrix, 150, border="dlib", pyramid=True))
    # dlib truncates to integers once per pyramid level and once more in the chip.
    diff = np.floor(out + 1e-3) - chip
    assert np.abs(diff).max() <= levels + 1
    assert np.abs(diff).mean() <= 0.5 * levels + 0.01
    if shift:
        assert (chip == 0).all(axis=2).mean() > 0.05  # the case does reach outside
        # cv2's constant border blends the edge pixels with black instead: dlib does not.
        blended = _hwc(warp_to_chip(image_tensor(image), matrix, 150, border="zeros", pyramid=True))
        assert np.abs(np.floor(blended + 1e-3) - chip).max() > 5
    if levels:
        # Without the pyramid the chip is visibly different (sharper, and shifted).
        plain = _hwc(warp_to_chip(image_tensor(image), matrix, 150, border="dlib"))
        assert np.abs(np.floor(plain + 1e-3) - chip).mean() > np.abs(diff).mean() + 0.2


def test_importing_nets_imports_no_heavy_module() -> None:
    code = (
        "import sys, faceindex.cloak.nets;"
        "print(','.join(m for m in ('torch', 'dlib', 'onnx', 'onnxruntime', 'cv2')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
