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
                f"{label}: {len(data)} bytes exceeds the limit of {limits.max_bytes}",
                path=label,
            )
        return _decode(io.BytesIO(data), label, limits)
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
                f"{label}: {size} bytes exceeds the limit of {limits.max_bytes}", path=label
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageDecodeError(f"{label}: cannot read file ({exc})", path=label) from exc
        return _decode(io.BytesIO(data), label, limits)
    raise InvalidInputError(
        f"unsupported image source of type {type(source).__name__}; "
        "give a path, bytes or a numpy array"
    )


def _decode(stream: io.BytesIO, label: str, limits: ImageLimits) -> ImageArray:
    if not stream.getbuffer().nbytes:
        raise ImageDecodeError(f"{label}: empty file", path=label)
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
                        f"{label}: {width}x{height} = {width * height} pixels exceeds the "
                        f"limit of {limits.max_pixels}",
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
        raise _unsupported(label, _sniff(stream)) from exc
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


def _sniff(stream: io.BytesIO) -> str | None:
    head = stream.getvalue()[:16]
    return next((name for magic, name in _SIGNATURES if head.startswith(magic)), None)


def _to_rgb(im: Image.Image) -> ImageArray:
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(im)
        return _gray_to_rgb(_scale_to_uint8(arr, _full_scale_of(arr, mode)))
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if mode in ("RGBA", "LA", "La", "RGBa", "PA") or im.mode == "RGBA":
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)
        return _composite_on_white(rgba)
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def _scale_to_uint8(arr: np.ndarray, full_scale: float) -> np.ndarray:
    scaled = np.rint(arr.astype(np.float64) * (255.0 / full_scale))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _full_scale_of(arr: np.ndarray, mode: str) -> float:
    """The value that means "white" for a wide-range Pillow mode."""
    if mode.startswith("I;16"):
        return 65535.0
    peak = float(arr.max()) if arr.size else 0.0
    if mode == "F":
        return 1.0 if peak <= 1.0 else 255.0
    # Mode "I": Pillow decodes 16-bit PNGs to it, with 0..65535 values.
    return 65535.0 if peak > 255 else 255.0


def _gray_to_rgb(gray: np.ndarray) -> ImageArray:
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))


def _composite_on_white(rgba: np.ndarray) -> ImageArray:
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    rgb = rgba[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    return np.ascontiguousarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


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
        raise ImageTooLargeError(
            f"{label}: {width}x{height} pixels exceeds the limit of {limits.max_pixels}"
        )
    if arr.dtype == np.uint8:
        u8 = arr
    elif arr.dtype == np.uint16:
        u8 = _scale_to_uint8(arr, 65535.0)
    elif arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise InvalidInputError(f"{label}: float image contains NaN or infinity")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise InvalidInputError(
                f"{label}: float images must hold values in [0, 1], got [{lo:.3g}, {hi:.3g}]"
            )
        u8 = _scale_to_uint8(arr, 1.0)
    else:
        raise InvalidInputError(f"{label}: unsupported array dtype {arr.dtype}")
    if u8.shape[2] == 1:
        return _gray_to_rgb(u8[:, :, 0])
    if u8.shape[2] == 4:
        return _composite_on_white(u8)
    return np.ascontiguousarray(u8)
