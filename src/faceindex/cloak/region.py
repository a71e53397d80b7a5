"""Where a face's cloak may go: a rectangle of the photo and a feathered mask inside it.

The recognisers see a face only through their crops (each embedder's chip: a square
warped from the photo by a 2x3 matrix), so the cloak is confined to those crops'
footprints. The footprints are filled, their union softened at the edge (a Gaussian
feather, so no seam shows), and everything outside a rectangle around them (the
*region*) is never written: those pixels stay bit-for-bit what they were.

The rectangle starts and ends on multiples of 8 pixels where the photo allows, so the
JPEG approximation the attack optimises through (:mod:`faceindex.cloak.transforms`)
cuts the same 8x8 blocks a JPEG encoder of the saved photo will.

numpy and OpenCV only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceindex.types import FloatArray

#: The region reaches this share of the footprints' size past them on each side, room
#: for the attack's random shifts and for the feather to fall to zero.
MARGIN = 0.12
#: JPEG's block side: region corners are snapped outwards to multiples of it.
BLOCK = 8
#: Mask values under this are set to exactly 0 (those pixels are left as they were).
MASK_FLOOR = 1e-3


@dataclass(frozen=True, slots=True)
class Region:
    """A rectangle ``[y0, y1) x [x0, x1)`` of a photo and the mask ``(y1-y0, x1-x0)``
    (0-1 float32; 0 where the photo must stay unchanged)."""

    x0: int
    y0: int
    x1: int
    y1: int
    mask: FloatArray

    def __post_init__(self) -> None:
        if self.mask.shape != (self.y1 - self.y0, self.x1 - self.x0):
            raise ValueError(
                f"Region.mask must have shape ({self.y1 - self.y0}, {self.x1 - self.x0}), "
                f"got {self.mask.shape}"
            )

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def local(self, matrix: np.ndarray) -> np.ndarray:
        """A matrix mapping photo px -> chip px, made to map region px -> chip px."""
        m = np.asarray(matrix, dtype=np.float64).copy()
        m[:, 2] = m[:, 2] + m[:, :2] @ np.array([self.x0, self.y0], dtype=np.float64)
        return m


def chip_corners(matrix: np.ndarray, size: int) -> np.ndarray:
    """The four corners of a ``size`` px chip in photo pixels ``(4, 2)``, in order."""
    full = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(full)
    last = size - 1.0
    corners = np.array([[0.0, 0.0, 1.0], [last, 0.0, 1.0], [last, last, 1.0], [0.0, last, 1.0]])
    out: np.ndarray = (inverse @ corners.T).T[:, :2]
    return out


def face_region(
    crops: Sequence[tuple[np.ndarray, int]],
    *,
    width: int,
    height: int,
    margin: float = MARGIN,
    feather: float = 0.04,
) -> Region:
    """The region and mask of one face, from its crops ``[(matrix, size), ...]`` (photo
    px -> chip px). ``feather``: the Gaussian's sigma as a share of the footprints' size."""
    import cv2

    if not crops:
        raise ValueError("a face region needs at least one crop")
    quads = [chip_corners(m, size) for m, size in crops]
    points = np.concatenate(quads)
    lo, hi = points.min(0), points.max(0)
    extent = float(max(hi - lo))
    pad = margin * extent
    x0 = max(0, int(np.floor((lo[0] - pad) / BLOCK)) * BLOCK)
    y0 = max(0, int(np.floor((lo[1] - pad) / BLOCK)) * BLOCK)
    x1 = min(width, int(np.ceil((hi[0] + pad) / BLOCK)) * BLOCK)
    y1 = min(height, int(np.ceil((hi[1] + pad) / BLOCK)) * BLOCK)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError("the face lies outside the photo")
    canvas = np.zeros((y1 - y0, x1 - x0), np.uint8)  # anti-aliased fills need 8 bits
    for quad in quads:
        local = np.round((quad - [x0, y0]) * 16).astype(np.int32)  # 4 fractional bits
        cv2.fillConvexPoly(canvas, local, 255, lineType=cv2.LINE_AA, shift=4)
    inside = canvas.astype(np.float32) / 255.0
    sigma = max(1.0, feather * extent)
    mask = cv2.GaussianBlur(inside, (0, 0), sigmaX=sigma, sigmaY=sigma)
    # The feather must not spill onto the region's border: fade it out there, so a pixel
    # on the rectangle's edge is unchanged like those past it.
    mask *= _edge_fade(mask.shape, max(1, int(np.ceil(2 * sigma))), (x0, y0, x1, y1), width, height)
    mask[mask < MASK_FLOOR] = 0.0
    return Region(x0, y0, x1, y1, np.clip(mask, 0.0, 1.0).astype(np.float32))


def _edge_fade(
    shape: tuple[int, ...], ramp: int, box: tuple[int, int, int, int], width: int, height: int
) -> np.ndarray:
    """1 inside, falling linearly to 0 over ``ramp`` px at each region edge that lies
    inside the photo (an edge on the photo's own border needs no fade)."""
    rows, cols = shape[0], shape[1]
    x0, y0, x1, y1 = box

    def ramp_1d(n: int, fade_start: bool, fade_end: bool) -> np.ndarray:
        i = np.arange(n, dtype=np.float32)
        out = np.ones(n, np.float32)
        if fade_start:
            out = np.minimum(out, i / ramp)
        if fade_end:
            out = np.minimum(out, (n - 1 - i) / ramp)
        return np.clip(out, 0.0, 1.0)

    fy = ramp_1d(rows, y0 > 0, y1 < height)
    fx = ramp_1d(cols, x0 > 0, x1 < width)
    out: np.ndarray = fy[:, None] * fx[None, :]
    return out
