"""Detect, verify (1:1) and identify (1:N): model work, run in worker threads."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError

from faceindex.api.auth import ReadAccess
from faceindex.api.openapi import errors_doc, image_body_doc
from faceindex.api.routes.liveness import (
    LIVENESS_FIELDS_DOC,
    LIVENESS_TEXT_FIELDS,
    liveness_proof,
    require_live_face,
)
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
from faceindex.errors import FaceTooSmallError, NoFaceError
from faceindex.io.image import ImageLimits, load_image
from faceindex.pipeline import FaceChoice, Pipeline, with_quality_floor
from faceindex.types import Face, ImageArray, Verification

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
    "largest first, with box, detector score, five landmarks and quality. When none is "
    "listed but the detector saw a face under its size limit, `message` says so.",
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
            message=None if faces else _too_small(services.pipeline, rgb),
        )

    return await services.run_model(work)


def _too_small(pipeline: Pipeline, rgb: ImageArray) -> str | None:
    """``face too small (N px, need M)`` when the detector saw only faces under its limit."""
    small = pipeline.small_face(rgb)
    return None if small is None else pipeline.too_small_text(small)


def _verify_result(
    v: Verification, a: FaceChoice | None = None, b: FaceChoice | None = None
) -> VerifyResponse:
    return VerifyResponse(
        similarity=round(v.similarity, 6),
        match=None if v.unsure else v.match,
        decision=str(v.decision),  # type: ignore[arg-type]
        quality=None if v.quality is None else round(v.quality, 6),
        threshold=v.threshold,
        model=v.model_id,
        face_a=None if a is None else a.index,
        face_b=None if b is None else b.index,
        bbox_a=None if a is None else a.face.bbox.as_list(),
        bbox_b=None if b is None else b.face.bbox.as_list(),
        faces_a=[] if a is None else [f.bbox.as_list() for f in a.faces],
        faces_b=[] if b is None else [f.bbox.as_list() for f in b.faces],
    )


def _choice_error(message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body",), "msg": message, "type": "value_error"}])


@router.post(
    "/verify",
    response_model=VerifyResponse,
    summary="Are two faces the same person? (1:1)",
    description="Either two photos (`image_a` and `image_b`: multipart files, or JSON "
    "`image_a_base64` and `image_b_base64`), or one photo (`image` / `image_base64`) and "
    "`person_id` to compare with an enrolled person. By default each photo's subject (its "
    "most prominent face: large and near the centre) is compared; `face_a` / `face_b` "
    "choose another (an index into the photo's faces, largest first, as /detect lists "
    "them; with `person_id`, `face_a` chooses the face of "
    "`image`). `search: true` compares A's face with every face of B and answers the best "
    "(is this person anywhere in that photo?). The answer says which faces were compared "
    "(`face_a`, `face_b`, `bbox_a`, `bbox_b`) and every face found (`faces_a`, `faces_b`). "
    "A photo without a face is a 422 `no_face` (`face_too_small` when the only face is under "
    "the detector's size limit); a face index past the last face is a 422 `invalid_input`. "
    "`reject_below` (0-1): when a compared face's quality is under it the answer is "
    "`decision: unsure` with `match: null` instead of a confident yes or no. "
    "`require_liveness: true` with `liveness_token` (or header `X-Liveness-Token`): the "
    "compared face of A (of `image` with `person_id`) must be the face that passed a "
    "liveness session (POST /v1/liveness/sessions), else 422 `liveness_required`; the "
    "token is spent either way.",
    responses=errors_doc(404, 413, 415, 422),
    openapi_extra=image_body_doc(
        {"image_a": False, "image_b": False, "image": False},
        json_model=VerifyJson,
        text_fields={
            "person_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            "face_a": {"type": "integer", "minimum": 0, "maximum": 10_000},
            "face_b": {"type": "integer", "minimum": 0, "maximum": 10_000},
            "search": {"type": "boolean", "default": False},
            "reject_below": {"type": "number", "minimum": 0, "maximum": 1},
            **LIVENESS_FIELDS_DOC,
        },
    ),
)
async def verify(
    request: Request,
    _: ReadAccess,
    services: ServicesDep,
) -> VerifyResponse:
    body = await read_image_body(
        request,
        services.settings,
        json_model=VerifyJson,
        text_fields=(
            "person_id",
            "face_a",
            "face_b",
            "search",
            "reject_below",
            *LIVENESS_TEXT_FIELDS,
        ),
    )
    person_id = body.integer("person_id")
    reject_below = body.fraction("reject_below")
    face_a, face_b, search = body.index("face_a"), body.index("face_b"), body.boolean("search")
    if person_id is not None:
        if body.has("image_a") or body.has("image_b"):
            raise _choice_error("give either image_a and image_b, or image and person_id")
        if face_b is not None or search:
            raise _choice_error("face_b and search compare two photos; not with person_id")
        probe = body.image("image")
        proof = liveness_proof(request, body)

        def against_person() -> VerifyResponse:
            rgb = _decode(probe, services)
            try:
                result, choice = services.gallery.verify_person_face(rgb, person_id, face=face_a)
            except NoFaceError as exc:
                raise _relabelled(exc, probe.label) from exc
            require_live_face(proof, choice.face, services.pipeline)
            result = with_quality_floor(result, (choice.face,), reject_below)
            return _verify_result(result, choice)

        return await services.run_model(against_person)
    if body.has("image"):
        raise _choice_error("person_id is required with image (or send image_a and image_b)")
    a, b = body.image("image_a"), body.image("image_b")
    proof = liveness_proof(request, body)

    def pair() -> VerifyResponse:
        answer = services.pipeline.verify_faces(
            _decode(a, services),
            _decode(b, services),
            face_a=face_a,
            face_b=face_b,
            search=search,
            labels=(a.label, b.label),
            reject_below=reject_below,
        )
        require_live_face(proof, answer.a.face, services.pipeline)
        return _verify_result(answer.verification, answer.a, answer.b)

    return await services.run_model(pair)


def _relabelled(exc: NoFaceError, label: str) -> NoFaceError:
    """The error named after the upload (the pipeline saw only an array)."""
    if isinstance(exc, FaceTooSmallError):
        px, need = exc.details.get("face_px"), exc.details.get("min_face_px")
        return FaceTooSmallError(
            f"{label}: face too small ({px} px, need {need})",
            field=label,
            face_px=px,
            min_face_px=need,
        )
    return NoFaceError(f"{label}: no face found", field=label)


@router.post(
    "/identify",
    response_model=IdentifyResponse,
    summary="Who is in this photo? (1:N, open set)",
    description='Multipart field `image`, or JSON `{"image_base64": ...}`. Each face is '
    "`identified` (person set), `unknown` (nobody scores above the threshold) or "
    "`ambiguous` (the best two are within the margin; person null, both reported). "
    "Whatever the decision, `candidate` is the closest enrolled person with its "
    "`similarity` (so an unknown face still says who came nearest). "
    "`require_liveness: true` with `liveness_token` (or header `X-Liveness-Token`): the "
    "photo's subject (most prominent face) must be the face that passed a liveness session "
    "(POST /v1/liveness/sessions), else 422 `liveness_required`; the token is spent either "
    "way. `reject_below` (0-1): a face whose quality is under it is answered `unsure` "
    "(never named; `candidate` still says who came closest).",
    responses=_ERRORS,
    openapi_extra=image_body_doc(
        {"image": False},
        json_model=IdentifyJson,
        text_fields={
            "reject_below": {"type": "number", "minimum": 0, "maximum": 1},
            **LIVENESS_FIELDS_DOC,
        },
        required=("image",),
    ),
)
async def identify(
    request: Request,
    _: ReadAccess,
    services: ServicesDep,
) -> IdentifyResponse:
    body = await read_image_body(
        request,
        services.settings,
        json_model=IdentifyJson,
        text_fields=("reject_below", *LIVENESS_TEXT_FIELDS),
    )
    upload = body.image("image")
    reject_below = body.fraction("reject_below")
    proof = liveness_proof(request, body)

    def work() -> IdentifyResponse:
        rgb = _decode(upload, services)
        if proof is not None:
            require_live_face(
                proof, _subject(services.pipeline, rgb, upload.label), services.pipeline
            )
        faces = services.gallery.identify(rgb, reject_below=reject_below)
        return IdentifyResponse(
            faces=[IdentifiedFace.from_core(f) for f in faces],
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
            message=None if faces else _too_small(services.pipeline, rgb),
        )

    return await services.run_model(work)


def _subject(pipeline: Pipeline, rgb: ImageArray, label: str) -> Face:
    """The photo's most prominent face, embedded (:class:`NoFaceError` when none)."""
    try:
        return pipeline.choose_face(rgb, label=label).face
    except NoFaceError as exc:
        raise _relabelled(exc, label) from exc
