"""Every kind of image input a user can give: decoded correctly or refused with a typed error."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.errors import ImageDecodeError, ImageTooLargeError, InvalidInputError, NotFoundError
from faceindex.io.image import ImageLimits, load_image


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def test_path_bytes_and_array_agree(obama_path: Path) -> None:
    from_path = load_image(obama_path)
    from_bytes = load_image(obama_path.read_bytes())
    from_str = load_image(str(obama_path))
    assert from_path.shape == (480, 384, 3) and from_path.dtype == np.uint8
    assert np.array_equal(from_path, from_bytes) and np.array_equal(from_path, from_str)
    assert np.array_equal(load_image(from_path), from_path)
    assert from_path.flags.c_contiguous


def test_grayscale_becomes_three_equal_channels(obama_rgb: np.ndarray) -> None:
    gray = Image.fromarray(obama_rgb).convert("L")
    out = load_image(_encode(gray, "PNG"))
    assert out.shape == obama_rgb.shape
    assert np.array_equal(out[..., 0], np.asarray(gray)) and np.array_equal(
        out[..., 0], out[..., 2]
    )


def test_sixteen_bit_png_is_scaled_not_clipped(obama_rgb: np.ndarray) -> None:
    gray8 = np.asarray(Image.fromarray(obama_rgb).convert("L"))
    gray16 = gray8.astype(np.uint16) * 257
    out = load_image(_encode(Image.fromarray(gray16), "PNG"))
    assert np.array_equal(out[..., 0], gray8)


def test_uint16_and_float_arrays(obama_rgb: np.ndarray) -> None:
    assert np.array_equal(load_image(obama_rgb.astype(np.uint16) * 257), obama_rgb)
    assert np.abs(load_image(obama_rgb / 255.0).astype(int) - obama_rgb).max() <= 1
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        load_image(obama_rgb.astype(np.float32))
    with pytest.raises(InvalidInputError, match="shape"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(InvalidInputError, match="no pixels"):
        load_image(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(InvalidInputError, match="dtype"):
        load_image(np.zeros((4, 4, 3), np.int64))


def test_cmyk_jpeg_converts_to_rgb(obama_rgb: np.ndarray) -> None:
    cmyk = Image.fromarray(obama_rgb).convert("CMYK")
    out = load_image(_encode(cmyk, "JPEG", quality=95))
    assert out.shape == obama_rgb.shape
    assert np.abs(out.astype(int) - obama_rgb.astype(int)).mean() < 12


def test_palette_and_alpha(obama_rgb: np.ndarray) -> None:
    pal = Image.fromarray(obama_rgb).convert("P", palette=Image.Palette.ADAPTIVE)
    assert load_image(_encode(pal, "PNG")).shape == obama_rgb.shape
    rgba = np.dstack([obama_rgb, np.full(obama_rgb.shape[:2], 255, np.uint8)])
    rgba[:10, :10, 3] = 0  # fully transparent corner -> white, not black
    out = load_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert np.array_equal(out[20:, 20:], obama_rgb[20:, 20:])
    assert (out[:10, :10] == 255).all()
    la = Image.fromarray(rgba, "RGBA").convert("LA")
    assert load_image(_encode(la, "PNG")).shape == obama_rgb.shape


def test_rgba_fixture_png(fixtures_dir: Path) -> None:
    out = load_image(fixtures_dir / "alex-lacamoire.png")
    assert out.shape == (366, 394, 3)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(obama_rgb: np.ndarray, orientation: int) -> None:
    # Store the pixels rotated and tag the file so that a viewer rotates them back.
    undo = {
        3: Image.Transpose.ROTATE_180,
        6: Image.Transpose.ROTATE_90,
        8: Image.Transpose.ROTATE_270,
    }
    stored = Image.fromarray(obama_rgb).transpose(undo[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = load_image(_encode(stored, "PNG", exif=exif.tobytes()))
    assert out.shape == obama_rgb.shape
    assert np.array_equal(out, obama_rgb)


def test_truncated_jpeg_is_a_decode_error(obama_path: Path, tmp_path: Path) -> None:
    data = obama_path.read_bytes()
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageDecodeError) as info:
        load_image(bad)
    assert str(bad) in str(info.value)


def test_non_image_empty_and_missing(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo")
    with pytest.raises(ImageDecodeError, match=r"notes\.jpg"):
        load_image(text)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="empty"):
        load_image(empty)
    with pytest.raises(NotFoundError, match=r"missing\.png"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(InvalidInputError, match="is a folder"):
        load_image(tmp_path)
    with pytest.raises(InvalidInputError, match="unsupported"):
        load_image(12345)  # type: ignore[arg-type]


def test_corrupt_png_body(obama_rgb: np.ndarray) -> None:
    data = bytearray(_encode(Image.fromarray(obama_rgb), "PNG"))
    data[200:400] = b"\x00" * 200
    with pytest.raises(ImageDecodeError):
        load_image(bytes(data))


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG claiming a huge size: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = zlib.compress(b"\x00" * 16)
    idat_chunk = b"IDAT" + idat
    body += struct.pack(">I", len(idat)) + idat_chunk + struct.pack(">I", zlib.crc32(idat_chunk))
    return b"\x89PNG\r\n\x1a\n" + body


def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError, match="pixels"):
        load_image(_png_header_only(100_000, 100_000))


def test_limits_are_per_call(obama_path: Path) -> None:
    with pytest.raises(ImageTooLargeError):
        load_image(obama_path, limits=ImageLimits(max_pixels=1000))
    with pytest.raises(ImageTooLargeError, match="bytes"):
        load_image(obama_path, limits=ImageLimits(max_bytes=100))
    with pytest.raises(ImageTooLargeError):
        load_image(np.zeros((100, 100, 3), np.uint8), limits=ImageLimits(max_pixels=10))
    assert Image.MAX_IMAGE_PIXELS == 1024 * 1024 * 1024 // 4 // 3  # global untouched


def test_animated_gif_uses_first_frame(obama_rgb: np.ndarray) -> None:
    frames = [Image.fromarray(obama_rgb), Image.fromarray(255 - obama_rgb)]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    out = load_image(data)
    assert out.shape == obama_rgb.shape
    assert abs(float(out.mean()) - float(obama_rgb.mean())) < 10
