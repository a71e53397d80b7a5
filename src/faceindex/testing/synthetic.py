"""Synthetic "photos" for the fake backends: flat grey, one textured square per person.

A person is an integer id; their "face" is a square split into a 4x4 grid of colours drawn
from a generator seeded by the id, so every photo of one person shows the same pattern.
A ``variant`` (another photo of the same people) changes what a second photo of a real
person would: the face's size and position, its fine texture (per-pixel noise, so the
quality module's sharpness check passes) and a small brightness shift. The background is
exactly uniform, so :class:`~faceindex.testing.fakes.FakeDetector` finds each square
exactly, and :class:`~faceindex.testing.fakes.FakeEmbedder` (which ignores brightness and
averages the texture away) gives one person's variants nearly the same vector.

Layout: faces sit in a grid of cells with gaps between them, and get smaller in the order
given, so ``people[0]`` always has the largest face (the one ``Pipeline.verify`` picks).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

#: The background colour (RGB). Nothing in a face square ever has exactly this colour.
BACKGROUND = (128, 128, 128)
#: Side of the smallest face, in pixels (the last person's, variant 0).
MIN_FACE_PX = 120
#: How much bigger each earlier person's face is, so that faces sort in the given order.
_SIDE_STEP = 8
#: Variants add 0..4 px to every side (< _SIDE_STEP, so the order never changes).
_SIDE_JITTER = 5
#: Room a face may move by inside its cell, and the gap kept on every side of a cell.
_SHIFT = 16
_MARGIN = 6
_GRID = 4
_NOISE_SD = 10.0
_BRIGHTNESS_JITTER = 8


def face_colours(person: int) -> npt.NDArray[np.uint8]:
    """The ``(4, 4, 3)`` colour grid that is ``person``'s face (fixed by the id alone)."""
    rng = np.random.default_rng([0xFACE, int(person)])
    colours: npt.NDArray[np.uint8] = rng.integers(40, 216, size=(_GRID, _GRID, 3), dtype=np.uint8)
    return colours


def face_sides(count: int, *, variant: int = 0) -> list[int]:
    """The side in pixels of each of ``count`` faces in a photo of ``variant``."""
    jitter = int(np.random.default_rng([0x51DE, int(variant)]).integers(0, _SIDE_JITTER))
    return [MIN_FACE_PX + _SIDE_STEP * (count - 1 - i) + jitter for i in range(count)]


def synthetic_photo(
    people: Sequence[int], *, variant: int = 0, size: tuple[int, int] = (640, 480)
) -> npt.NDArray[np.uint8]:
    """An ``(H, W, 3)`` uint8 RGB photo of ``people`` (ids), ``size`` given as ``(W, H)``.

    Deterministic in ``(people, variant, size)``. Raises ``ValueError`` when the faces do
    not fit (at least ``MIN_FACE_PX + 28`` pixels a face each way; more for more people).
    """
    width, height = size
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    if not people:
        return image
    sides = face_sides(len(people), variant=variant)
    cell = sides[0] + _SHIFT + 2 * _MARGIN
    cols, rows = width // cell, height // cell
    if cols * rows < len(people):
        raise ValueError(
            f"{len(people)} faces of up to {sides[0]} px do not fit in a {width}x{height} photo"
        )
    rng = np.random.default_rng([0x9407, int(variant)])
    slots = rng.permutation(cols * rows)[: len(people)]
    brightness = int(rng.integers(-_BRIGHTNESS_JITTER, _BRIGHTNESS_JITTER + 1))
    for person, side, slot in zip(people, sides, slots, strict=True):
        row, col = divmod(int(slot), cols)
        x = col * cell + _MARGIN + int(rng.integers(0, _SHIFT))
        y = row * cell + _MARGIN + int(rng.integers(0, _SHIFT))
        image[y : y + side, x : x + side] = _face(person, side, brightness, rng)
    return image


def synthetic_photo_bytes(
    people: Sequence[int],
    *,
    variant: int = 0,
    size: tuple[int, int] = (640, 480),
    fmt: str = "PNG",
) -> bytes:
    """:func:`synthetic_photo` encoded by Pillow as ``fmt`` (PNG, lossless, by default).

    A lossy format such as JPEG blurs the face edges into the background, so the fake
    detector's boxes grow by a pixel or two; use PNG where exact boxes matter.
    """
    from PIL import Image

    buffer = io.BytesIO()
    photo = Image.fromarray(synthetic_photo(people, variant=variant, size=size))
    if fmt.upper() == "PNG":
        photo.save(buffer, format="PNG", compress_level=1)  # noise does not compress anyway
    else:
        photo.save(buffer, format=fmt)
    return buffer.getvalue()


def _face(
    person: int, side: int, brightness: int, rng: np.random.Generator
) -> npt.NDArray[np.uint8]:
    # Cell edges at round(i * side / 4), so the grid fills the square whatever its side.
    edges = np.round(np.linspace(0, side, _GRID + 1)).astype(int)
    index = np.searchsorted(edges, np.arange(side), side="right") - 1
    base = face_colours(person)[index[:, None], index[None, :]].astype(np.float64)
    noisy = base + brightness + rng.normal(0.0, _NOISE_SD, size=base.shape)
    face = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    # The detector keys on "differs from the background": no face pixel may equal it.
    same = np.all(face == np.array(BACKGROUND, dtype=np.uint8), axis=-1)
    face[same, 0] += 1
    return face
