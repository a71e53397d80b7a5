"""Decoding memory: wide modes convert to uint8 without full-size intermediate copies.

``tracemalloc`` sees numpy's allocations and Python's bytes (Pillow's ``tobytes``), not
Pillow's own pixel buffers, so the peak measured here is what the conversion to an
``(H, W, 3)`` uint8 array costs on top of the decoded image.

Measured on a 2048x2048 (4.2 MP) 16-bit grey PNG, output 12.6 MB: the one-shot conversion
(``tobytes`` copy, then float64 copies of the whole image) peaked at ~6.5x the output
(~82 MB); converting a strip of rows at a time peaks at ~1.1x (the output plus a few MB of
per-strip temporaries, a constant whatever the image size). The bound of 2x leaves room
for the strip temporaries and the compressed input, and fails on the one-shot code.
"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from faceindex.io.image import load_image

SIDE = 2048
BOUND = 2.0  # peak traced bytes / output bytes; see the module docstring


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def traced() -> Iterator[None]:
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        yield
    finally:
        if not was_tracing:
            tracemalloc.stop()


def _peak_of_decode(data: bytes) -> tuple[np.ndarray, int]:
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = load_image(data)
    return out, tracemalloc.get_traced_memory()[1] - base


def _gradient16(height: int, width: int) -> np.ndarray:
    return (
        ((np.arange(height * width, dtype=np.uint64) * 7) % 65536)
        .astype(np.uint16)
        .reshape(height, width)
    )


@pytest.mark.usefixtures("traced")
@pytest.mark.slow  # decodes a 4-megapixel image under tracemalloc (seconds)
def test_sixteen_bit_png_peak_is_near_the_output_size() -> None:
    data = _encode(Image.fromarray(_gradient16(SIDE, SIDE)), "PNG", compress_level=1)
    out, peak = _peak_of_decode(data)
    assert out.shape == (SIDE, SIDE, 3) and out.dtype == np.uint8
    assert peak < BOUND * out.nbytes, f"peak {peak / 1e6:.1f} MB for {out.nbytes / 1e6:.1f} MB"


@pytest.mark.usefixtures("traced")
@pytest.mark.slow  # decodes a 4-megapixel image under tracemalloc (seconds)
def test_rgba_png_peak_is_near_the_output_size() -> None:
    rgba = np.random.default_rng(0).integers(0, 256, (SIDE, SIDE, 4), dtype=np.uint8)
    data = _encode(Image.fromarray(rgba), "PNG", compress_level=1)
    out, peak = _peak_of_decode(data)
    assert out.shape == (SIDE, SIDE, 3)
    assert peak < BOUND * out.nbytes, f"peak {peak / 1e6:.1f} MB for {out.nbytes / 1e6:.1f} MB"


def test_sixteen_bit_values_map_as_before() -> None:
    # Every 16-bit value, over several strips: v -> round(v * 255 / 65535) (= round(v / 257),
    # never a tie since 257 is odd), exactly what the one-shot float64 conversion gave.
    values = np.arange(65536, dtype=np.uint16).reshape(128, 512)
    expected = ((values.astype(np.int64) + 128) // 257).astype(np.uint8)
    assert np.array_equal(expected, np.rint(values * (255.0 / 65535.0)).astype(np.uint8))
    for fmt in ("PNG", "TIFF"):
        out = load_image(_encode(Image.fromarray(values), fmt))
        assert np.array_equal(out, np.repeat(expected[:, :, None], 3, axis=2)), fmt
    assert np.array_equal(load_image(values), np.repeat(expected[:, :, None], 3, axis=2))


def test_wide_modes_scale_by_their_whole_image_peak() -> None:
    # Mode "I" and "F" pick their full scale from the image's maximum; with strips the
    # maximum must still be the whole image's, not each strip's.
    tall = np.zeros((1024, 256), np.int32)
    tall[-1, -1] = 65535
    tall[0, :] = 255
    out = load_image(_encode(Image.fromarray(tall, "I"), "TIFF"))
    assert out[0, 0, 0] == 1 and out[-1, -1, 0] == 255
    floats = np.full((1024, 256), 0.5, np.float32)
    out = load_image(_encode(Image.fromarray(floats, "F"), "TIFF"))
    assert out[0, 0, 0] == 128  # full scale 1.0
    floats[-1, -1] = 200.0
    out = load_image(_encode(Image.fromarray(floats, "F"), "TIFF"))
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 200  # full scale 255
