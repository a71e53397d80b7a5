"""Fuzz the image decoder: mutated images decode to RGB or raise a typed error, nothing else.

Seeds are small valid images of every allowed format, made here. Hypothesis mutates them
(truncation, byte flips and overwrites, spliced headers, random bytes, a PNG whose IHDR
declares huge dimensions under a valid CRC) and :func:`load_image` must return an
``(H, W, 3)`` uint8 array or raise :class:`ImageDecodeError`, :class:`ImageTooLargeError` or
:class:`InvalidInputError`. Runs are derandomized (CI reproducible) and bounded: the whole
file runs in a few seconds.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from faceindex.errors import ImageDecodeError, ImageTooLargeError, InvalidInputError
from faceindex.io.image import ImageLimits, load_image

LIMITS = ImageLimits(max_pixels=64 * 64, max_bytes=64 * 1024)
TYPED = (ImageDecodeError, ImageTooLargeError, InvalidInputError)

FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=2),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

#: A fuzz suite: seconds of generated inputs; make test runs it, the fast tier does not.
pytestmark = pytest.mark.slow


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (12, 10, 4), dtype=np.uint8))
    gray16 = Image.fromarray(rng.integers(0, 65536, (12, 10), dtype=np.uint16))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    transparent = palette.copy()
    transparent.info["transparency"] = 3
    return {
        "png8": _encode(rgb, "PNG"),
        "png16": _encode(gray16, "PNG"),
        "png_gray": _encode(rgb.convert("L"), "PNG"),
        "png_rgba": _encode(rgba, "PNG"),
        "png_palette": _encode(palette, "PNG"),
        "png_palette_transparent": _encode(transparent, "PNG", transparency=3),
        "jpeg": _encode(rgb, "JPEG", quality=80),
        "jpeg_gray": _encode(rgb.convert("L"), "JPEG"),
        "webp": _encode(rgb, "WEBP", quality=80),
        "webp_rgba": _encode(rgba, "WEBP", lossless=True),
        "bmp": _encode(rgb, "BMP"),
        "gif": _encode(palette, "GIF"),
        "tiff": _encode(rgb, "TIFF"),
        "tiff16": _encode(gray16, "TIFF"),
        "tiff_deflate": _encode(rgba, "TIFF", compression="tiff_adobe_deflate"),
        "ppm": _encode(rgb, "PPM"),
        "pgm": _encode(rgb.convert("L"), "PPM"),
    }


SEEDS = _seeds()
SEED_NAMES = sorted(SEEDS)


def _check(data: bytes) -> None:
    with warnings.catch_warnings():
        # Pillow warns on some corrupt metadata (EXIF, TIFF tags); a warning is not a crash.
        warnings.simplefilter("ignore")
        try:
            out = load_image(data, limits=LIMITS)
        except TYPED:
            return
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert 0 < out.shape[0] * out.shape[1] <= LIMITS.max_pixels


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@pytest.mark.parametrize("name", SEED_NAMES)
def test_every_seed_decodes(name: str) -> None:
    out = load_image(SEEDS[name], limits=LIMITS)
    assert out.shape == (12, 10, 3) and out.dtype == np.uint8


@FUZZ
@given(name=st.sampled_from(SEED_NAMES), data=st.data())
def test_truncated(name: str, data: st.DataObject) -> None:
    seed = SEEDS[name]
    cut = data.draw(st.integers(0, len(seed) - 1), label="cut")
    _check(seed[:cut])


@FUZZ
@given(
    name=st.sampled_from(SEED_NAMES),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
    flip=st.booleans(),
)
def test_bytes_overwritten_or_flipped(
    name: str, edits: list[tuple[float, int]], flip: bool
) -> None:
    buf = bytearray(SEEDS[name])
    for where, value in edits:
        i = int(where * len(buf))
        buf[i] = buf[i] ^ (1 << (value % 8)) if flip else value
    _check(bytes(buf))


@FUZZ
@given(
    head=st.sampled_from(SEED_NAMES),
    body=st.sampled_from(SEED_NAMES),
    head_len=st.integers(1, 64),
    body_from=st.integers(0, 64),
)
def test_spliced_headers(head: str, body: str, head_len: int, body_from: int) -> None:
    _check(SEEDS[head][:head_len] + SEEDS[body][body_from:])


@FUZZ
@given(
    prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM"]),
    rest=st.binary(max_size=512),
)
@example(prefix=b"", rest=b"")
@example(prefix=b"P6", rest=b"\n99999 99999\n255\n")
@example(prefix=b"II*\x00", rest=b"\x08\x00\x00\x00\xff\xff")
def test_random_bytes(prefix: bytes, rest: bytes) -> None:
    _check(prefix + rest)


@FUZZ
@given(
    width=st.integers(0, 2**31 - 1),
    height=st.integers(0, 2**31 - 1),
    bit_depth=st.sampled_from([1, 2, 4, 8, 16]),
    color_type=st.sampled_from([0, 2, 3, 4, 6]),
    keep_rest=st.booleans(),
)
@example(width=2**31 - 1, height=2**31 - 1, bit_depth=16, color_type=0, keep_rest=True)
@example(width=64, height=64, bit_depth=16, color_type=0, keep_rest=True)
def test_png_huge_declared_dimensions(
    width: int, height: int, bit_depth: int, color_type: int, keep_rest: bool
) -> None:
    seed = SEEDS["png16"]
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    rest = seed[8 + 25 :] if keep_rest else _png_chunk(b"IEND", b"")
    _check(seed[:8] + _png_chunk(b"IHDR", ihdr) + rest)
