"""Decode any image a user gives into an ``(H, W, 3)`` uint8 RGB array, or a typed error.

Handled: the photo formats of :data:`FORMATS` (first frame of animations), EXIF orientation,
grayscale / palette / CMYK / 16-bit / 32-bit-int / float modes, alpha (composited on white,
since transparent pixels hold no face and black would make a dark false edge), a pixel
limit checked from the header *before* decoding (decompression bombs), a byte limit, and
truncated or corrupt files. Pillow's global ``MAX_IMAGE_PIXELS`` is never touched: the
limit here is per call, so a library user's own settings are left alone.

Only the formats of :data:`FORMATS` are decoded: Pillow is told to try no other (its
``formats=``), and the format it detects is checked again before any pixel is read. The
rest of what Pillow can open (EPS, which shells out to Ghostscript; PSD, FITS, ICNS, WMF,
...) is an :class:`~faceindex.errors.ImageDecodeError` ("unsupported image format"), never
handed to its decoder.

This module imports nothing else from faceindex except errors and types.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceindex.errors import ImageDecodeError, ImageTooLargeError, InvalidInputError, NotFoundError
from faceindex.types import ImageArray

DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

ImageSource = str | Path | bytes | bytearray | memoryview | np.ndarray

#: The Pillow formats decoded (as ``Image.format`` names them): photos from cameras,
#: phones, scanners and the web. ``MPO`` is a phone's multi-picture JPEG; ``PPM`` covers
#: PPM/PGM/PBM; ``AVIF`` and ``HEIF`` count only where Pillow (or its plugin) reads them.
FORMATS: frozenset[str] = frozenset(
    {"JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF", "TIFF", "PPM", "AVIF", "HEIF"}
)


def _openers() -> list[str]:
    """The allowed formats Pillow has an opener for (``Image.open(formats=...)`` names)."""
    Image.init()
    return sorted(f for f in FORMATS if f in Image.OPEN)


def _unsupported(label: str, fmt: str | None) -> ImageDecodeError:
    allowed = ", ".join(_openers())
    what = f"unsupported image format {fmt}" if fmt else "not an image of a supported format"
    return ImageDecodeError(
        f"{label}: {what} (supported: {allowed})",
        path=label,
        format=fmt or "unknown",
    )


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES


def load_image(
    source: ImageSource, *, limits: ImageLimits | None = None, name: str | None = None
) -> ImageArray:
    """Return ``source`` as a C-contiguous ``(H, W, 3)`` uint8 RGB array.

    ``source`` is a path, encoded bytes, or an array (``(H, W)`` gray, ``(H, W, 3)`` RGB,
    ``(H, W, 4)`` RGBA; uint8, uint16, or float in [0, 1]). ``name`` labels errors; it
    defaults to the path.
    """
    limits = limits or ImageLimits()
    if isinstance(source, np.ndarray):
        return _from_array(source, limits, name or "<array>")
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        label = name or "<bytes>"
        if len(data) > limits.max_bytes:
            raise ImageTooLargeError(
                f"{label}: {too_many_bytes(len(data), limits.max_bytes)}", path=label
            )
        return _decode(data, label, limits)
    if isinstance(source, str | Path):
        path = Path(source)
        label = name or str(path)
        if not path.exists():
            raise NotFoundError(f"{label}: no such file", path=label)
        if path.is_dir():
            raise InvalidInputError(f"{label}: is a folder, not an image file", path=label)
        if not path.is_file():
            raise InvalidInputError(f"{label}: not a regular file", path=label)
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise ImageTooLargeError(
                f"{label}: {too_many_bytes(size, limits.max_bytes)}", path=label
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageDecodeError(f"{label}: cannot read file ({exc})", path=label) from exc
        return _decode(data, label, limits)
    raise InvalidInputError(
        f"unsupported image source of type {type(source).__name__}; "
        "give a path, bytes or a numpy array"
    )


def _over(value: float, limit: float) -> str:
    """``value`` with as few decimals (at least one) as show it is over ``limit``."""
    for decimals in range(1, 7):
        text = f"{value:.{decimals}f}"
        if float(text) > limit:
            return text
    return f"{value:g}"


#: Units of the byte limits, largest first (2**20 bytes to the MB, as the limits are set).
_BYTE_UNITS: tuple[tuple[int, str], ...] = ((1024 * 1024, "MB"), (1024, "KB"))


def byte_limit(limit: int) -> str:
    """``the 20 MB limit``: a byte limit in its largest whole-ish unit."""
    for scale, unit in _BYTE_UNITS:
        if limit >= scale:
            return f"the {limit / scale:g} {unit} limit"
    return f"the {limit} byte limit"


def too_many_bytes(size: int, limit: int) -> str:
    """``25.0 MB is over the 20 MB limit``, in the unit of the limit."""
    for scale, unit in _BYTE_UNITS:
        if limit >= scale:
            return f"{_over(size / scale, limit / scale)} {unit} is over {byte_limit(limit)}"
    return f"{size} bytes is over {byte_limit(limit)}"


def too_many_pixels(width: int, height: int, limit: int) -> str:
    """``40000x30000 pixels (1200.0 megapixels) is over the 50 megapixel limit``."""
    mp = _over(width * height / 1e6, limit / 1e6)
    return f"{width}x{height} pixels ({mp} megapixels) is over the {limit / 1e6:g} megapixel limit"


def _decode(data: bytes, label: str, limits: ImageLimits) -> ImageArray:
    if not data:
        raise ImageDecodeError(f"{label}: empty file", path=label)
    # BytesIO shares ``data`` until written to (``getbuffer()`` would copy it).
    stream = io.BytesIO(data)
    try:
        with warnings.catch_warnings():
            # Our own pixel check below is the limit; Pillow's bomb warning is noise here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream, formats=_openers()) as im:
                if im.format not in FORMATS:  # never decode what was not allowed
                    raise _unsupported(label, im.format)
                width, height = im.size
                if width <= 0 or height <= 0:
                    raise ImageDecodeError(f"{label}: image has no pixels", path=label)
                if width * height > limits.max_pixels:
                    raise ImageTooLargeError(
                        f"{label}: {too_many_pixels(width, height, limits.max_pixels)}",
                        path=label,
                        width=width,
                        height=height,
                    )
                im.seek(0)
                im.load()
                rgb = _to_rgb(ImageOps.exif_transpose(im) or im)
    except (ImageTooLargeError, ImageDecodeError):
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{label}: {exc}", path=label) from exc
    except UnidentifiedImageError as exc:
        # Either no image at all, or one of a format Pillow was not allowed to try.
        raise _unsupported(label, _sniff(data)) from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        # Pillow signals truncated/corrupt data with any of these, depending on the codec.
        raise ImageDecodeError(f"{label}: corrupt or truncated image ({exc})", path=label) from exc
    return rgb


#: Signatures of formats refused, to name them in the error (nothing is parsed).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%!PS", "EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"8BPS", "PSD"),
    (b"SIMPLE  =", "FITS"),
    (b"icns", "ICNS"),
    (b"\xd7\xcd\xc6\x9a", "WMF"),
    (b"%PDF", "PDF"),
)


def _sniff(data: bytes) -> str | None:
    head = data[:16]
    return next((name for magic, name in _SIGNATURES if head.startswith(magic)), None)


#: Pixels converted per strip on the wide paths below. The full-size intermediates of a
#: one-shot conversion (float64 copies, 8 bytes a pixel and channel) are what made decoding
#: peak at many times the output; a strip bounds them to a few MB whatever the image size,
#: and the output is written once, in place.
_STRIP_PIXELS = 1 << 16

_WIDE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


def _strips(height: int, width: int) -> Iterator[tuple[int, int]]:
    rows = max(1, _STRIP_PIXELS // max(width, 1))
    for top in range(0, height, rows):
        yield top, min(height, top + rows)


def _by_strips(height: int, width: int, strip: Callable[[int, int], np.ndarray]) -> ImageArray:
    """A fresh ``(H, W, 3)`` uint8 array, filled rows ``[top, bottom)`` at a time.

    ``strip(top, bottom)`` returns those rows as ``(rows, W, 3)`` or ``(rows, W, 1)``
    uint8 (gray is broadcast to the three channels as it is written).
    """
    out = np.empty((height, width, 3), np.uint8)
    for top, bottom in _strips(height, width):
        out[top:bottom] = strip(top, bottom)
    return out


def _rows(im: Image.Image, top: int, bottom: int) -> np.ndarray:
    """Rows ``[top, bottom)`` of ``im`` as an array (only those rows are copied out)."""
    return np.asarray(im.crop((0, top, im.width, bottom)))


def _to_rgb(im: Image.Image) -> ImageArray:
    mode = im.mode
    if mode in _WIDE_MODES:
        full_scale = _full_scale_of_image(im, mode)
        return _by_strips(
            im.height,
            im.width,
            lambda top, bottom: _scale_to_uint8(_rows(im, top, bottom), full_scale)[:, :, None],
        )
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if mode in ("RGBA", "LA", "La", "RGBa", "PA") or im.mode == "RGBA":
        rgba = im if im.mode == "RGBA" else im.convert("RGBA")
        return _by_strips(
            rgba.height,
            rgba.width,
            lambda top, bottom: _composite_strip(_rows(rgba, top, bottom)),
        )
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def _scale_to_uint8(arr: np.ndarray, full_scale: float) -> np.ndarray:
    scaled = np.rint(arr.astype(np.float64) * (255.0 / full_scale))
    return np.clip(scaled, 0, 255, out=scaled).astype(np.uint8)


def _full_scale_of_image(im: Image.Image, mode: str) -> float:
    """The value that means "white" for a wide-range Pillow mode, read strip by strip."""
    if mode.startswith("I;16"):
        return 65535.0
    peaks = [float(_rows(im, top, bottom).max()) for top, bottom in _strips(im.height, im.width)]
    peak = float("nan") if any(np.isnan(peaks)) else max(peaks, default=0.0)
    return _full_scale_for_peak(mode, peak)


def _full_scale_for_peak(mode: str, peak: float) -> float:
    if mode == "F":
        return 1.0 if peak <= 1.0 else 255.0
    # Mode "I": older Pillows decode 16-bit PNGs to it, with 0..65535 values.
    return 65535.0 if peak > 255 else 255.0


def _composite_strip(rgba: np.ndarray) -> np.ndarray:
    """RGBA rows composited on white, as uint8 RGB rows."""
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    rgb = rgba[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    out: np.ndarray = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return out


def _from_array(arr: np.ndarray, limits: ImageLimits, label: str) -> ImageArray:
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise InvalidInputError(
            f"{label}: array must have shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}"
        )
    height, width = arr.shape[:2]
    if height == 0 or width == 0:
        raise InvalidInputError(f"{label}: array image has no pixels ({arr.shape})")
    if height * width > limits.max_pixels:
        raise ImageTooLargeError(f"{label}: {too_many_pixels(width, height, limits.max_pixels)}")
    full_scale = 1.0
    if arr.dtype == np.uint16:
        full_scale = 65535.0
    elif arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise InvalidInputError(f"{label}: float image contains NaN or infinity")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise InvalidInputError(
                f"{label}: float images must hold values in [0, 1], got [{lo:.3g}, {hi:.3g}]"
            )
    elif arr.dtype != np.uint8:
        raise InvalidInputError(f"{label}: unsupported array dtype {arr.dtype}")
    if arr.dtype == np.uint8 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr)
    src = arr

    def strip(top: int, bottom: int) -> np.ndarray:
        rows = src[top:bottom]
        u8 = rows if rows.dtype == np.uint8 else _scale_to_uint8(rows, full_scale)
        return _composite_strip(u8) if u8.shape[2] == 4 else u8

    # Wide dtypes and alpha convert a strip at a time (see _STRIP_PIXELS).
    return _by_strips(height, width, strip)
