"""Request bodies carrying images: multipart uploads or base64 in JSON, sniffed and limited.

An image's type is found from its bytes (the header, read by Pillow from an allow-list of
formats), never from the file name or the declared content type; its pixel count is checked
from the header before anything is decoded. Bodies of other content types are refused with
415; a malformed body or a missing field is a 422 ``validation_error``; bytes that are not
an image of an allowed format are a 422 ``image_decode_error``; an image over the byte or
pixel limit is a 413 ``image_too_large``.

The whole body is also capped (``max_request_bytes``) by :class:`BodyLimitMiddleware`
while it streams in, so an oversized upload is refused before it is buffered.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceindex.api.errors import ApiError, error_response
from faceindex.api.settings import ApiSettings
from faceindex.errors import ImageDecodeError, ImageTooLargeError
from faceindex.io.image import byte_limit, too_many_bytes, too_many_pixels

#: Pillow formats accepted from clients (no formats that call out to other programs).
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")

_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+;base64,", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded image: its bytes, a label for messages and reports, and what it is."""

    data: bytes
    label: str
    mime: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class ImageInfo:
    mime: str
    width: int
    height: int


def sniff_image(data: bytes, *, label: str, max_pixels: int | None = None) -> ImageInfo:
    """The image type and size from the header, or :class:`ImageDecodeError`."""
    if not data:
        raise ImageDecodeError(f"{label}: empty file", field=label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as im:
                fmt = str(im.format)
                width, height = im.size
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{label}: {exc}", field=label) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(
            f"{label}: not an image (accepted: {', '.join(ALLOWED_FORMATS)})", field=label
        ) from exc
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"{label}: image has no pixels", field=label)
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{label}: {too_many_pixels(width, height, max_pixels)}",
            field=label,
            width=width,
            height=height,
            max_pixels=max_pixels,
        )
    return ImageInfo(Image.MIME.get(fmt, "application/octet-stream"), width, height)


def _check_image(data: bytes, label: str, settings: ApiSettings) -> Upload:
    if len(data) > settings.max_upload_bytes:
        raise ImageTooLargeError(
            f"{label}: {too_many_bytes(len(data), settings.max_upload_bytes)}",
            field=label,
            max_bytes=settings.max_upload_bytes,
        )
    info = sniff_image(data, label=label, max_pixels=settings.max_image_pixels)
    return Upload(data, label, info.mime, info.width, info.height)


def decode_base64_image(text: str, *, field_name: str, settings: ApiSettings) -> Upload:
    compact = "".join(_DATA_URL.sub("", text.strip(), count=1).split())
    if len(compact) > (settings.max_upload_bytes + 2) // 3 * 4 + 4:
        raise ImageTooLargeError(
            f"{field_name}: the image is over {byte_limit(settings.max_upload_bytes)}",
            field=field_name,
            max_bytes=settings.max_upload_bytes,
        )
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageDecodeError(f"{field_name}: not valid base64", field=field_name) from exc
    return _check_image(data, field_name, settings)


def clean_filename(name: str | None, fallback: str) -> str:
    """A safe label from a client's file name: no folders, no control characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(c for c in base if ord(c) >= 32 and c != "\x7f").strip()[:200]
    return base or fallback


def _missing(field_name: str | None) -> RequestValidationError:
    loc = ("body",) if field_name is None else ("body", field_name)
    message = "a request body is required" if field_name is None else "Field required"
    return RequestValidationError([{"loc": loc, "msg": message, "type": "missing"}])


@dataclass(slots=True)
class ImageBody:
    """A parsed request body: multipart files and fields, or a JSON object."""

    settings: ApiSettings
    files: dict[str, list[tuple[bytes, str | None]]] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None

    @property
    def is_json(self) -> bool:
        return self.json is not None

    def images(self, name: str, *, required: bool = True) -> list[Upload]:
        """Every image sent in multipart field ``name`` or JSON field ``name + '_base64'``."""
        if self.json is not None:
            value = self.json.get(f"{name}_base64")
            if value is None:
                if required:
                    raise _missing(f"{name}_base64")
                return []
            return [decode_base64_image(value, field_name=f"{name}_base64", settings=self.settings)]
        if name in self.fields:
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", name),
                        "msg": "must be a file part (with a filename), not a text field",
                        "type": "file_expected",
                    }
                ]
            )
        parts = self.files.get(name, [])
        if not parts and required:
            raise _missing(name)
        uploads = []
        for i, (data, filename) in enumerate(parts):
            label = clean_filename(filename, f"{name} {i + 1}" if len(parts) > 1 else name)
            uploads.append(_check_image(data, label, self.settings))
        return uploads

    def image(self, name: str) -> Upload:
        """The one image of a required field (422 if missing or repeated)."""
        found = self.images(name)
        if len(found) > 1:
            raise RequestValidationError(
                [{"loc": ("body", name), "msg": "give exactly one image", "type": "too_many"}]
            )
        return found[0]

    def has(self, name: str) -> bool:
        if self.json is not None:
            return self.json.get(f"{name}_base64") is not None or self.json.get(name) is not None
        return name in self.files or name in self.fields

    def integer(self, name: str) -> int | None:
        """An integer field (multipart text or JSON number)."""
        raw: Any = self.json.get(name) if self.json is not None else self.fields.get(name)
        if raw is None:
            return None
        try:
            value = int(raw) if isinstance(raw, str) else raw
        except ValueError:
            value = None
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value < 2**63:
            raise RequestValidationError(
                [{"loc": ("body", name), "msg": "must be a positive integer", "type": "int_type"}]
            )
        return value

    def index(self, name: str) -> int | None:
        """A non-negative integer field (a face index), multipart text or JSON number."""
        raw: Any = self.json.get(name) if self.json is not None else self.fields.get(name)
        if raw is None:
            return None
        try:
            value = int(raw.strip()) if isinstance(raw, str) else raw
        except ValueError:
            value = None
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10_000:
            raise RequestValidationError(
                [{"loc": ("body", name), "msg": "must be an integer >= 0", "type": "int_type"}]
            )
        return value

    def fraction(self, name: str) -> float | None:
        """A number from 0 to 1 (a quality floor), multipart text or JSON number."""
        raw: Any = self.json.get(name) if self.json is not None else self.fields.get(name)
        if raw is None:
            return None
        try:
            value = float(raw.strip()) if isinstance(raw, str) else raw
        except ValueError:
            value = None
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not 0.0 <= value <= 1.0  # also refuses NaN
        ):
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", name),
                        "msg": "must be a number from 0 to 1",
                        "type": "float_type",
                    }
                ]
            )
        return float(value)

    def boolean(self, name: str) -> bool:
        """A boolean field: JSON true/false, or multipart text true/false/1/0/yes/no/on/off
        (absent: false)."""
        raw: Any = self.json.get(name) if self.json is not None else self.fields.get(name)
        if raw is None:
            return False
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise RequestValidationError(
            [{"loc": ("body", name), "msg": "must be true or false", "type": "bool_type"}]
        )

    def text(self, name: str) -> str | None:
        """A multipart text field as sent (None if absent)."""
        return self.fields.get(name)


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


async def read_image_body(
    request: Request,
    settings: ApiSettings,
    *,
    json_model: type[BaseModel] | None,
    text_fields: Sequence[str] = (),
) -> ImageBody:
    """Parse a multipart or JSON body (415 for any other content type)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = ImageBody(settings)
    if ctype == "multipart/form-data":
        try:
            form = await request.form(
                max_files=settings.max_files, max_fields=max(10, len(text_fields) + 5)
            )
        except ApiError:  # the body-size or body-time limit, while the parts stream in
            raise
        except StarletteHTTPException as exc:  # malformed multipart, too many parts
            raise RequestValidationError(
                [{"loc": ("body",), "msg": str(exc.detail), "type": "multipart_invalid"}]
            ) from exc
        try:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read(settings.max_upload_bytes + 1)
                    body.files.setdefault(key, []).append((data, value.filename))
                else:
                    body.fields[key] = value
        finally:
            await form.close()
        return body
    if ctype == "application/json" or ctype.endswith("+json"):
        if json_model is None:
            raise ApiError(
                415,
                "unsupported_media_type",
                "this endpoint takes multipart/form-data only",
                details={"accepted": ["multipart/form-data"]},
            )
        raw = await request.body()
        try:
            parsed = json_model.model_validate_json(raw)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
            ) from exc
        body.json = parsed.model_dump()
        return body
    if not ctype and not await request.body():
        raise _missing(None)
    accepted = ["multipart/form-data"] + (["application/json"] if json_model else [])
    raise ApiError(
        415,
        "unsupported_media_type",
        f"send {' or '.join(accepted)} (got {ctype or 'no content type'})",
        details={"accepted": accepted},
    )


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` (413), by Content-Length or as they stream."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise ApiError(413, "request_too_large", self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return (
            f"the request body is over {byte_limit(self.max_bytes)} (send fewer or smaller photos)"
        )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "request_too_large", self._message(), {"max_bytes": self.max_bytes}
        )
        await response(scope, receive, send)
