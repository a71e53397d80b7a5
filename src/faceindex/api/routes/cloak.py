"""The privacy cloak: ``POST /v1/cloak`` returns the photo with every face cloaked.

The answer is JSON: the cloaked photo as base64 (``image_base64``, of type
``media_type``: JPEG in, JPEG out at quality 95; PNG and WebP kept; anything else as PNG)
and the per-face report, in one body, so that the report cannot be lost by a proxy
dropping headers and the OpenAPI document can describe all of it. The cloaker (its torch
nets and the ONNX embedders that measure) is made on the first request and kept on the
app's state; the attack runs in the worker threads, seconds per face.
"""

from __future__ import annotations

import base64
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from faceindex.api.auth import ReadAccess
from faceindex.api.openapi import errors_doc, image_body_doc
from faceindex.api.schemas import DetectJson
from faceindex.api.state import Services, ServicesDep, per_app
from faceindex.api.uploads import read_image_body
from faceindex.cloak.budget import Strength
from faceindex.cloak.cloaker import Cloaker, require_torch
from faceindex.cloak.files import MIME
from faceindex.io.image import ImageLimits

router = APIRouter(tags=["cloak"])

#: Most faces one request cloaks (each costs seconds of a worker thread).
MAX_FACES = 10
_STRENGTHS = ", ".join(s.value for s in Strength)
#: Upload type -> the format the cloaked photo is written in.
_FORMAT_OF = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CloakedFaceOut(_Wire):
    bbox: list[float] = Field(description="[x1, y1, x2, y2] in pixels", min_length=4, max_length=4)
    similarity_before: dict[str, float] = Field(
        description="per model id: cosine similarity of the face in the clean photo and in "
        "the clean photo saved as the answer is (1.0 for PNG)"
    )
    similarity_after: dict[str, float] = Field(
        description="per model id: cosine similarity of the face in the clean photo and in "
        "the cloaked photo (decoded from the answer's bytes); under the model's threshold "
        "it no longer matches"
    )
    psnr: float | None = Field(description="dB, around the face (null: unchanged)")
    ssim: float | None = Field(description="structural similarity of the luma, around the face")


class CloakResponse(_Wire):
    image_base64: str = Field(description="the cloaked photo, base64")
    media_type: str = Field(description="image/jpeg, image/png or image/webp")
    faces: list[CloakedFaceOut] = Field(description="every face, largest first")
    strength: str
    seconds: float = Field(description="time the attack took")


class CloakJson(DetectJson):
    strength: str | None = Field(default=None, description=f"{_STRENGTHS} (default: medium)")


def _strength(raw: object) -> Strength:
    if raw is None or raw == "":
        return Strength.MEDIUM
    try:
        return Strength(str(raw).strip().lower())
    except ValueError:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "strength"),
                    "msg": f"strength must be one of {_STRENGTHS}",
                    "type": "value_error",
                }
            ]
        ) from None


def _cloaker(request: Request, services: Services) -> Cloaker:
    runtime = services.settings.pipeline.runtime
    cache = Path(runtime.cache_dir).expanduser() if runtime.cache_dir else None
    return per_app(
        request,
        "cloaker",
        lambda: Cloaker(services.pipeline, threads=runtime.threads, cache_dir=cache),
    )


@router.post(
    "/cloak",
    response_model=CloakResponse,
    summary="Cloak every face of a photo against face recognition",
    description="Multipart field `image` (and optionally a text field `strength`: "
    f"{_STRENGTHS}; default medium), or JSON "
    '`{"image_base64": ..., "strength": ...}`. Every face is changed slightly, through '
    "faceindex's recognisers, so that recognisers no longer link it to the person's other "
    "photos; the rest of the photo is left as it was. The answer carries the cloaked photo "
    "as base64 (JPEG stays JPEG, PNG and WebP are kept, other types come back as PNG) and, "
    "per face and model, the similarity to the clean face before and after, with PSNR and "
    f"SSIM. At most {MAX_FACES} faces per photo; seconds per face. Nothing is stored. "
    "docs/cloak.md says what the cloak does not promise (recognisers trained against it, "
    "purification, future models).",
    responses=errors_doc(413, 415, 422),
    openapi_extra=image_body_doc(
        {"image": False},
        json_model=CloakJson,
        text_fields={"strength": {"type": "string", "description": _STRENGTHS}},
        required=("image",),
    ),
)
async def cloak(request: Request, _: ReadAccess, services: ServicesDep) -> CloakResponse:
    body = await read_image_body(
        request, services.settings, json_model=CloakJson, text_fields=("strength",)
    )
    upload = body.image("image")
    raw = body.json.get("strength") if body.json is not None else body.text("strength")
    strength = _strength(raw)
    require_torch()
    cloaker = _cloaker(request, services)
    fmt = _FORMAT_OF.get(upload.mime, "PNG")

    def work() -> CloakResponse:
        s = services.settings
        encoded, report = cloaker.cloak_bytes(
            upload.data,
            fmt,
            strength=strength,
            label=upload.label,
            limits=ImageLimits(s.max_image_pixels, s.max_upload_bytes),
            max_faces=MAX_FACES,
        )
        return CloakResponse(
            image_base64=base64.b64encode(encoded).decode("ascii"),
            media_type=MIME[fmt],
            faces=[CloakedFaceOut.model_validate(f.as_dict()) for f in report.faces],
            strength=strength.value,
            seconds=round(report.seconds, 3),
        )

    return await services.run_model(work)
