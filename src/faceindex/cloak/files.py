"""Writing a cloaked photo: its format from the file name, its metadata kept, atomically.

The photo was decoded upright (EXIF orientation applied), so it is written upright with the
orientation tag reset to 1; the rest of its EXIF (camera, date, and also location: the
cloak hides a face from recognisers, it does not clean metadata) and its colour profile
are kept. JPEG is written at quality 95 without chroma subsampling (4:4:4), so the saved
file keeps the cloak's colour detail.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from faceindex.errors import InvalidInputError
from faceindex.types import ImageArray

#: Output suffixes and the format each is written in (WebP losslessly).
OUTPUT_FORMATS: dict[str, str] = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
MIME: dict[str, str] = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
DEFAULT_QUALITY = 95
_ORIENTATION = 0x0112


@dataclass(frozen=True, slots=True)
class Metadata:
    """What is carried from the input photo to the output: EXIF (orientation reset) and
    the ICC colour profile, as bytes (None: the input had none)."""

    exif: bytes | None = None
    icc: bytes | None = None


def output_format(path: str | Path) -> str:
    """The format a photo named ``path`` is written in, or :class:`InvalidInputError`."""
    suffix = Path(path).suffix.lower()
    fmt = OUTPUT_FORMATS.get(suffix)
    if fmt is None:
        valid = ", ".join(sorted(OUTPUT_FORMATS))
        raise InvalidInputError(
            f"{path}: cannot write a photo with suffix {suffix or '(none)'!r}; use {valid}",
            path=str(path),
        )
    return fmt


def read_metadata(data: bytes) -> Metadata:
    """EXIF (orientation set to 1: the pixels are written upright) and ICC of a photo's
    bytes; empty when there is none or it cannot be read (never an error: the pixels were
    decoded already, and metadata is not worth failing for)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            exif = im.getexif()
            icc = im.info.get("icc_profile")
            raw: bytes | None = None
            if len(exif):
                if _ORIENTATION in exif:
                    exif[_ORIENTATION] = 1
                raw = exif.tobytes()
            return Metadata(raw, icc if isinstance(icc, bytes) else None)
    except Exception:
        return Metadata()


def encode(
    image: ImageArray, fmt: str, *, quality: int = DEFAULT_QUALITY, meta: Metadata | None = None
) -> bytes:
    """``image`` encoded as ``fmt`` (``PNG``, ``JPEG``, ``WEBP``) with ``meta``."""
    if fmt not in MIME:
        raise InvalidInputError(f"cannot write format {fmt!r}; valid: {', '.join(MIME)}")
    meta = meta or Metadata()
    options: dict[str, object] = {}
    if meta.exif:
        options["exif"] = meta.exif
    if meta.icc:
        options["icc_profile"] = meta.icc
    if fmt == "JPEG":
        options.update(quality=int(quality), subsampling=0, optimize=True)
    elif fmt == "WEBP":
        options.update(lossless=True, quality=100)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), "RGB").save(buffer, fmt, **options)
    return buffer.getvalue()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, renamed
    into place: a run stopped half-way leaves no partial output that a resumed folder run
    would take for a finished one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
