"""Differentiable crops: warp a whole image onto an embedder's chip with ``grid_sample``.

``cv2.warpAffine`` (and dlib's ``transform_image``) take pixel centres at integer
coordinates. ``grid_sample`` with ``align_corners=True`` does too: normalised -1 and +1 are
the centres of the first and last pixels. So the cv2 matrix (image px -> chip px) becomes a
``theta`` for ``affine_grid`` (normalised chip -> normalised image) by conjugating its
inverse with the two pixel <-> normalised maps. Measured against cv2: within 0.002 grey
levels on float images, and within cv2's own rounding (0.5) on uint8 ones.

Gradients flow from the chip back to every image pixel the bilinear samples touch, which is
what a cloak needs: it perturbs the photo, never the chip.

``pyramid=True`` reproduces dlib's ``extract_image_chips`` for faces larger than twice the
chip: dlib crops a bounding box around the chip's rectangle, halves it ``L`` times with its
5x5 binomial filter ([1 4 6 4 1] squared / 256, stride 2, no padding: level pixel ``q`` is
centred on pixel ``2q + 2`` of the level above) and warps the last level. It maps points
down with ``p / 2 - (1.25, 0.75)``, which is not where its filter centres them, so its chip
sits (2^L - 1) * (-0.5, +0.5) px off the full-resolution warp; the same maps are used here,
so the chips agree (up to dlib's integer truncations) and the warp stays differentiable.

``rounding`` reproduces those truncations too (cv2's uint8 warps round, dlib floors at every
pyramid level and in the chip), straight-through so that gradients are unchanged; with it
the chips equal the ONNX path's but for values a float ulp from a rounding boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from faceindex.errors import InvalidInputError

if TYPE_CHECKING:
    import torch

#: How pixels outside the image are filled: ``replicate`` (cv2 ``BORDER_REPLICATE``,
#: faceindex's ArcFace crops), ``zeros`` (cv2's default ``BORDER_CONSTANT``: outside pixels
#: are black and blend into the edge) or ``dlib`` (dlib's ``transform_image``: a chip pixel
#: is black unless all four pixels it interpolates lie inside the image).
Border = Literal["replicate", "zeros", "dlib"]
_PADDING_MODE = {"replicate": "border", "zeros": "zeros", "dlib": "zeros"}
#: What the ONNX path's 8-bit images do to interpolated values: ``none`` (keep them),
#: ``round`` (cv2's uint8 warps) or ``floor`` (dlib's chips and pyramid levels truncate).
#: Applied straight-through: the gradient passes as if no rounding happened.
Rounding = Literal["none", "round", "floor"]
_ROUNDINGS = ("none", "round", "floor")


def _as_3x3(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (2, 3):
        raise InvalidInputError(f"an affine matrix must have shape (2, 3), got {m.shape}")
    return np.vstack([m, [0.0, 0.0, 1.0]])


def affine_theta(matrix: np.ndarray, *, height: int, width: int, size: int) -> np.ndarray:
    """``affine_grid``'s ``(2, 3)`` theta (``align_corners=True``) for a cv2 matrix that maps
    image pixels to the pixels of a ``size`` x ``size`` chip (float64)."""
    if height < 2 or width < 2 or size < 2:
        raise InvalidInputError(f"cannot warp a {height}x{width} image to a {size}px chip")
    chip_to_image = np.linalg.inv(_as_3x3(matrix))
    half = (size - 1) / 2.0
    chip_from_norm = np.array([[half, 0.0, half], [0.0, half, half], [0.0, 0.0, 1.0]])
    image_to_norm = np.array(
        [[2.0 / (width - 1), 0.0, -1.0], [0.0, 2.0 / (height - 1), -1.0], [0.0, 0.0, 1.0]]
    )
    theta: np.ndarray = (image_to_norm @ chip_to_image @ chip_from_norm)[:2]
    return theta


#: dlib's ``pyramid_down<2>::point_down``: p -> p / 2 - _DLIB_DOWN_SHIFT (x, y).
_DLIB_DOWN_SHIFT = np.array([1.25, 0.75])


@dataclass(frozen=True, slots=True)
class PyramidPlan:
    """Where dlib cuts a chip: ``levels`` halvings of the box ``(left, top, right, bottom)``
    (inclusive pixel bounds), and the matrix from that last level's pixels to the chip."""

    levels: int
    box: tuple[int, int, int, int]
    matrix: np.ndarray


def _round_half_up(value: float) -> int:
    # dlib's drectangle -> rectangle conversion: floor(v + 0.5).
    return math.floor(value + 0.5)


def dlib_pyramid_plan(matrix: np.ndarray, *, height: int, width: int, size: int) -> PyramidPlan:
    """dlib's pyramid for a ``size`` x ``size`` chip at ``matrix`` in a ``height`` x ``width``
    image (``levels`` 0: dlib warps the full image)."""
    chip_to_image = np.linalg.inv(_as_3x3(matrix))
    # The chip's pixel-centre corners land on the rotated rectangle's corners, so the
    # rectangle's sides (right - left, bottom - top) are the chip's edges mapped back.
    side_x = float(np.hypot(*chip_to_image[:2, 0])) * (size - 1)
    side_y = float(np.hypot(*chip_to_image[:2, 1])) * (size - 1)
    levels = 0
    # dlib: one more level while the rectangle, halved again, has a larger area than the
    # chip (drectangle areas count pixels inclusively: (side + 1)^2).
    while (side_x / 2 + 1) * (side_y / 2 + 1) > size * size:
        side_x, side_y = side_x / 2, side_y / 2
        levels += 1
    if levels == 0:
        return PyramidPlan(0, (0, 0, width - 1, height - 1), np.asarray(matrix, np.float64))
    corners = chip_to_image @ np.array(
        [[0, size - 1, 0, size - 1], [0, 0, size - 1, size - 1], [1, 1, 1, 1]], dtype=np.float64
    )
    # dlib's margin: 2 px, then doubled plus 2 for every level (border effects of the filter).
    grow = 2.0
    for _ in range(levels):
        grow = grow * 2 + 2
    left = max(_round_half_up(corners[0].min() - grow), 0)
    top = max(_round_half_up(corners[1].min() - grow), 0)
    right = min(_round_half_up(corners[0].max() + grow), width - 1)
    bottom = min(_round_half_up(corners[1].max() + grow), height - 1)
    # Level coordinates of an image point p, as dlib maps them: repeated p / 2 - shift
    # after moving the box's corner to the origin. Its inverse, composed with ``matrix``,
    # takes level pixels to chip pixels.
    up = np.eye(3)
    for _ in range(levels):
        step = np.array(
            [
                [2.0, 0.0, 2.0 * _DLIB_DOWN_SHIFT[0]],
                [0.0, 2.0, 2.0 * _DLIB_DOWN_SHIFT[1]],
                [0, 0, 1],
            ]
        )
        up = up @ step
    shift = np.array([[1.0, 0.0, left], [0.0, 1.0, top], [0.0, 0.0, 1.0]])
    level_matrix = (_as_3x3(matrix) @ shift @ up)[:2]
    return PyramidPlan(levels, (left, top, right, bottom), level_matrix)


def _dlib_pyramid_down(image: torch.Tensor) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=image.dtype, device=image.device)
    kernel = (taps[:, None] * taps[None, :] / 256.0).expand(3, 1, 5, 5)
    return F.conv2d(image, kernel, stride=2, groups=3)


def warp_to_chip(
    image: torch.Tensor,
    matrix: np.ndarray,
    size: int,
    *,
    border: Border = "replicate",
    pyramid: bool = False,
    rounding: Rounding = "none",
) -> torch.Tensor:
    """The ``(1, 3, size, size)`` chip of ``image`` (``(1, 3, H, W)``, any float range),
    bilinear, as ``cv2.warpAffine(image, matrix, (size, size), INTER_LINEAR)`` would cut it
    (``pyramid``: as dlib's ``extract_image_chip`` would, see the module docstring).

    Differentiable with respect to ``image``; ``matrix`` (image px -> chip px) is a constant.
    ``rounding`` makes the values those of 8-bit images (see :data:`Rounding`).
    """
    import torch
    import torch.nn.functional as F

    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise InvalidInputError(f"image must have shape (1, 3, H, W), got {tuple(image.shape)}")
    if border not in _PADDING_MODE:
        raise InvalidInputError(f"unknown border {border!r}; valid: replicate, zeros, dlib")
    if rounding not in _ROUNDINGS:
        raise InvalidInputError(f"unknown rounding {rounding!r}; valid: {', '.join(_ROUNDINGS)}")
    if pyramid:
        plan = dlib_pyramid_plan(
            matrix, height=int(image.shape[2]), width=int(image.shape[3]), size=size
        )
        if plan.levels:
            left, top, right, bottom = plan.box
            image = image[:, :, top : bottom + 1, left : right + 1]
            for _ in range(plan.levels):
                if image.shape[2] <= 8 or image.shape[3] <= 8:
                    raise InvalidInputError("the face's region is too small for dlib's pyramid")
                image = _quantize(_dlib_pyramid_down(image), rounding)
            matrix = plan.matrix
    theta = affine_theta(matrix, height=int(image.shape[2]), width=int(image.shape[3]), size=size)
    # theta and the grid are composed in float64 and cast once (grid_sample wants the
    # image's dtype); a float32 grid still resolves ~1e-4 px across a 4000 px photo.
    theta_t = torch.from_numpy(theta[None]).to(torch.float64)
    grid = F.affine_grid(theta_t, [1, 3, size, size], align_corners=True).to(image.dtype)
    chip = F.grid_sample(
        image, grid, mode="bilinear", padding_mode=_PADDING_MODE[border], align_corners=True
    )
    if border == "dlib":
        inside = _dlib_inside(
            matrix, height=int(image.shape[2]), width=int(image.shape[3]), size=size
        )
        chip = chip * torch.from_numpy(inside).to(chip.dtype)
    return _quantize(chip, rounding)


def _quantize(x: torch.Tensor, rounding: Rounding) -> torch.Tensor:
    if rounding == "none":
        return x
    import torch

    q = torch.floor(x) if rounding == "floor" else torch.round(x)
    # Straight-through: the forward pass sees 8-bit values, the gradient is the identity's.
    return x + (q - x).detach()


def _dlib_inside(matrix: np.ndarray, *, height: int, width: int, size: int) -> np.ndarray:
    """``(size, size)`` 1.0 where dlib's bilinear sample has all four neighbours inside
    the image (``0 <= floor(x) < width - 1``, same for y), else 0.0."""
    chip_to_image = np.linalg.inv(_as_3x3(matrix))
    cols, rows = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64))
    x = chip_to_image[0, 0] * cols + chip_to_image[0, 1] * rows + chip_to_image[0, 2]
    y = chip_to_image[1, 0] * cols + chip_to_image[1, 1] * rows + chip_to_image[1, 2]
    left, top = np.floor(x), np.floor(y)
    inside: np.ndarray = (left >= 0) & (left + 1 < width) & (top >= 0) & (top + 1 < height)
    return inside.astype(np.float32)
