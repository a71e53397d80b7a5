"""Detect, verify (1:1) and identify (1:N): model work, run in worker threads."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError

from faceindex.api.auth import ReadAccess
from faceindex.api.openapi import errors_doc, image_body_doc
from faceindex.api.schemas import (
    MAX_ID,
    DetectedFace,
    DetectJson,
    DetectResponse,
    IdentifiedFace,
    IdentifyJson,
    IdentifyResponse,
    VerifyJson,
    VerifyResponse,
)
from faceindex.api.state import Services, ServicesDep
from faceindex.api.uploads import Upload, read_image_body
from faceindex.errors import NoFaceError
from faceindex.io.image import ImageLimits, load_image
from faceindex.pipeline import Pipeline
from faceindex.types import Embedding, ImageArray, Verification

router = APIRouter(tags=["recognition"])

_ERRORS = errors_doc(413, 415, 422)


def _decode(upload: Upload, services: Services) -> ImageArray:
    s = services.settings
    return load_image(
        upload.data, limits=ImageLimits(s.max_image_pixels, s.max_upload_bytes), name=upload.label
    )


@router.post(
    "/detect",
    response_model=DetectResponse,
    summary="Find every face in a photo",
    description='Multipart field `image`, or JSON `{"image_base64": ...}`. Faces come '
    "largest first, with box, detector score, five landmarks and quality.",
    responses=_ERRORS,
    openapi_extra=image_body_doc({"image": False}, json_model=DetectJson, required=("image",)),
)
async def detect(
    request: Request,
    _: ReadAccess,
    services: ServicesDep,
) -> DetectResponse:
    body = await read_image_body(request, services.settings, json_model=DetectJson)
    upload = body.image("image")

    def work() -> DetectResponse:
        rgb = _decode(upload, services)
        faces = services.pipeline.detect(rgb)
        return DetectResponse(
            faces=[DetectedFace.from_core(f) for f in faces],
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
        )

    return await services.run_model(work)


def _embedding(pipeline: Pipeline, rgb: ImageArray, label: str) -> Embedding:
    try:
        face = pipeline.largest_face(rgb)
    except NoFaceError as exc:
        raise NoFaceError(f"{label}: no face found", field=label) from exc
    if face.embedding is None:  # pragma: no cover - largest_face always embeds
        raise NoFaceError(f"{label}: the face could not be embedded", field=label)
    return face.embedding


def _verify_result(v: Verification) -> VerifyResponse:
    return VerifyResponse(
        similarity=round(v.similarity, 6), match=v.match, threshold=v.threshold, model=v.model_id
    )


def _choice_error(message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body",), "msg": message, "type": "value_error"}])


@router.post(
    "/verify",
    response_model=VerifyResponse,
    summary="Are two faces the same person? (1:1)",
    description="Either two photos (`image_a` and `image_b`: multipart files, or JSON "
    "`image_a_base64` and `image_b_base64`), or one photo (`image` / `image_base64`) and "
    "`person_id` to compare with an enrolled person. The largest face of each photo is "
    "used; a photo without a face is a 422 `no_face`.",
    responses=errors_doc(404, 413, 415, 422),
    openapi_extra=image_body_doc(
        {"image_a": False, "image_b": False, "image": False},
        json_model=VerifyJson,
        text_fields={"person_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID}},
    ),
)
async def verify(
    request: Request,
    _: ReadAccess,
    services: ServicesDep,
) -> VerifyResponse:
    body = await read_image_body(
        request, services.settings, json_model=VerifyJson, text_fields=("person_id",)
    )
    person_id = body.integer("person_id")
    if person_id is not None:
        if body.has("image_a") or body.has("image_b"):
            raise _choice_error("give either image_a and image_b, or image and person_id")
        probe = body.image("image")

        def against_person() -> VerifyResponse:
            rgb = _decode(probe, services)
            try:
                result = services.gallery.verify_person(rgb, person_id)
            except NoFaceError as exc:
                raise NoFaceError(f"{probe.label}: no face found", field=probe.label) from exc
            return _verify_result(result)

        return await services.run_model(against_person)
    if body.has("image"):
        raise _choice_error("person_id is required with image (or send image_a and image_b)")
    a, b = body.image("image_a"), body.image("image_b")

    def pair() -> VerifyResponse:
        pipeline = services.pipeline
        ea = _embedding(pipeline, _decode(a, services), a.label)
        eb = _embedding(pipeline, _decode(b, services), b.label)
        return _verify_result(pipeline.compare(ea, eb))

    return await services.run_model(pair)


@router.post(
    "/identify",
    response_model=IdentifyResponse,
    summary="Who is in this photo? (1:N, open set)",
    description='Multipart field `image`, or JSON `{"image_base64": ...}`. Each face is '
    "`identified` (person set), `unknown` (nobody scores above the threshold) or "
    "`ambiguous` (the best two are within the margin; person null, both reported).",
    responses=_ERRORS,
    openapi_extra=image_body_doc({"image": False}, json_model=IdentifyJson, required=("image",)),
)
async def identify(
    request: Request,
    _: ReadAccess,
    services: ServicesDep,
) -> IdentifyResponse:
    body = await read_image_body(request, services.settings, json_model=IdentifyJson)
    upload = body.image("image")

    def work() -> IdentifyResponse:
        rgb = _decode(upload, services)
        faces = services.gallery.identify(rgb)
        return IdentifyResponse(
            faces=[IdentifiedFace.from_core(f) for f in faces],
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
        )

    return await services.run_model(work)
