"""People and their enrolled faces: list, create, view, patch, erase, enrol photos."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from faceindex.api.auth import AdminAccess, ReadAccess, WriteAccess
from faceindex.api.openapi import errors_doc, image_body_doc
from faceindex.api.routes.liveness import (
    LIVENESS_FIELDS_DOC,
    LIVENESS_TEXT_FIELDS,
    liveness_proof,
    require_live_face,
)
from faceindex.api.schemas import (
    MAX_ID,
    EnrolledPhoto,
    EnrolResponse,
    FaceList,
    FaceTemplate,
    MergeRequest,
    PeoplePage,
    Person,
    PersonCreate,
    PersonPatch,
)
from faceindex.api.state import Services, ServicesDep
from faceindex.api.uploads import ImageBody, Upload, read_image_body, sniff_image
from faceindex.errors import FaceIndexError, NotFoundError
from faceindex.gallery import Gallery, TemplateInfo
from faceindex.liveness.sessions import StoredSession

router = APIRouter(prefix="/people", tags=["people"])

PersonId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="the person's id")]
TemplateId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="the face template's id")]

#: Content types the photo endpoint can answer with (sniffed from the stored bytes).
PHOTO_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/bmp",
    "image/gif",
    "image/tiff",
    "application/octet-stream",
)


@router.get(
    "",
    response_model=PeoplePage,
    summary="List people, by name, a page at a time",
    responses=errors_doc(422),
)
async def list_people(
    _: ReadAccess,
    services: ServicesDep,
    search: Annotated[str | None, Query(max_length=200, description="name contains")] = None,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PeoplePage:
    gallery = services.gallery

    def page() -> PeoplePage:
        people = gallery.people(search=search, offset=offset, limit=limit)
        total = gallery.count_people(search=search)
        return PeoplePage(
            items=[Person.from_core(p) for p in people], total=total, offset=offset, limit=limit
        )

    return await services.run_db(page)


_FORCE_FIELD = {
    "force": {
        "type": "boolean",
        "default": False,
        "description": "enrol faces that match another enrolled person too (flagged "
        "matches_other_person:ID and audited); default false: such photos are refused",
    }
}

_ENROL_REASONS = (
    "Every photo gets a status: `accepted` (with its `template_id`), `duplicate` (already "
    "enrolled), or `rejected` with reasons (`no_face`, `face_too_small` with a `message` "
    "giving the sizes, `several_faces`, `blurry`, `too_small`, `too_dark`, `too_bright`, "
    "`extreme_pose`, `image_decode_error`, `matches_other_person`, ...). A face that matches "
    "another enrolled person better than this person's photos (or, for a person with no "
    "photo yet, at the decision threshold) is refused as `matches_other_person` with "
    "`conflict` `{person_id, name, similarity}`, unless the form field `force` is true: then "
    "it is enrolled, flagged `matches_other_person:ID` (see the faces listing) and audited. "
    "Rejections are not errors: the answer is 200. A file that is not an image at all fails "
    "the whole request (422 `image_decode_error`) before anything is enrolled."
)

_LIVENESS_NOTE = (
    "`require_liveness=true` with `liveness_token` (or header `X-Liveness-Token`): every "
    "photo's subject must be the face that passed a liveness session (POST "
    "/v1/liveness/sessions), else 422 `liveness_required` and nothing is enrolled; the "
    "token is spent either way."
)


@router.post(
    "",
    response_model=Person | EnrolResponse,
    status_code=201,
    summary="Create a person, optionally enrolling photos at once",
    description="JSON `{name, external_id?, metadata?}` creates a person with no photos and "
    "answers the person. Multipart form fields `name`, `external_id`, `metadata` (JSON "
    "text), `force`, and `image` (repeated) create the person and enrol the photos, "
    "answering `{person, photos}` as POST /people/{id}/faces does. "
    + _ENROL_REASONS
    + " "
    + _LIVENESS_NOTE
    + " "
    "409 `conflict` when the name (matched regardless of case) or external id is taken.",
    responses=errors_doc(409, 413, 415, 422),
    openapi_extra=image_body_doc(
        {"image": True},
        json_model=PersonCreate,
        text_fields={
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "external_id": {"type": "string", "minLength": 1, "maxLength": 200},
            "metadata": {"type": "string", "description": "a JSON object, as text"},
            **_FORCE_FIELD,
            **LIVENESS_FIELDS_DOC,
        },
        required=("name",),
    ),
)
async def create_person(
    request: Request,
    _: WriteAccess,
    services: ServicesDep,
) -> Person | EnrolResponse:
    body = await read_image_body(
        request,
        services.settings,
        json_model=PersonCreate,
        text_fields=("name", "external_id", "metadata", "force", *LIVENESS_TEXT_FIELDS),
    )
    fields = _person_fields(body)
    gallery = services.gallery
    if body.is_json:
        person = await services.run_db(
            gallery.create_person,
            fields.name,
            external_id=fields.external_id,
            metadata=fields.metadata,
        )
        return Person.from_core(person)
    uploads = body.images("image", required=False)
    force = body.boolean("force")
    proof = liveness_proof(request, body)
    if proof is not None:
        await services.run_model(_require_live_photos, services, proof, uploads)
    created = await services.run_db(
        gallery.create_person, fields.name, external_id=fields.external_id, metadata=fields.metadata
    )
    return await services.run_model(_enrol, gallery, created.id, uploads, force)


def _person_fields(body: ImageBody) -> PersonCreate:
    """The person's fields of a JSON or multipart body, validated as :class:`PersonCreate`."""
    if body.json is not None:
        raw: dict[str, object] = {k: body.json.get(k) for k in ("name", "external_id", "metadata")}
    else:
        raw = {"name": body.text("name"), "external_id": body.text("external_id") or None}
        metadata = body.text("metadata")
        if metadata:
            try:
                raw["metadata"] = json.loads(metadata)
            except ValueError:
                raise RequestValidationError(
                    [{"loc": ("body", "metadata"), "msg": "not valid JSON", "type": "json_invalid"}]
                ) from None
    try:
        return PersonCreate.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
        ) from exc


def _require_live_photos(services: Services, proof: StoredSession, uploads: list[Upload]) -> None:
    """Every photo's subject must be the face seen live (a photo with no usable face is
    left for enrolment to reject, as it would be without a token)."""
    for upload in uploads:
        try:
            face = services.pipeline.choose_face(upload.data, label=upload.label).face
        except FaceIndexError:
            continue
        require_live_face(proof, face, services.pipeline)


def _enrol(gallery: Gallery, person_id: int, uploads: list[Upload], force: bool) -> EnrolResponse:
    report = gallery.enroll_person(
        person_id, [u.data for u in uploads], sources=[u.label for u in uploads], force=force
    )
    return EnrolResponse(
        person=Person.from_core(gallery.person(person_id)),
        photos=[EnrolledPhoto.from_core(o) for o in report.outcomes],
    )


@router.get(
    "/{person_id}", response_model=Person, summary="One person", responses=errors_doc(404, 422)
)
async def get_person(
    person_id: PersonId,
    _: ReadAccess,
    services: ServicesDep,
) -> Person:
    return Person.from_core(await services.run_db(services.gallery.person, person_id))


@router.patch(
    "/{person_id}",
    response_model=Person,
    summary="Rename a person, or change their external id or metadata",
    responses=errors_doc(404, 409, 413, 422),
)
async def patch_person(
    person_id: PersonId,
    body: PersonPatch,
    _: WriteAccess,
    services: ServicesDep,
) -> Person:
    def patch() -> Person:
        return Person.from_core(
            services.gallery.update(
                person_id, name=body.name, external_id=body.external_id, metadata=body.metadata
            )
        )

    return await services.run_db(patch)


@router.delete(
    "/{person_id}",
    status_code=204,
    response_class=Response,
    summary="Erase a person: every template, photo and index entry",
    responses=errors_doc(404, 422),
)
async def delete_person(
    person_id: PersonId,
    _: AdminAccess,
    services: ServicesDep,
) -> Response:
    await services.run_db(services.gallery.remove, person_id)
    return Response(status_code=204)


@router.post(
    "/{person_id}/faces",
    response_model=EnrolResponse,
    summary="Enrol photos of a person",
    description="Multipart field `image`, repeated for several photos, and optional `force`. "
    + _ENROL_REASONS
    + " "
    + _LIVENESS_NOTE,
    responses=errors_doc(404, 413, 415, 422),
    openapi_extra=image_body_doc(
        {"image": True},
        json_model=None,
        text_fields={**_FORCE_FIELD, **LIVENESS_FIELDS_DOC},
        required=("image",),
    ),
)
async def enrol_faces(
    person_id: PersonId,
    request: Request,
    _: WriteAccess,
    services: ServicesDep,
) -> EnrolResponse:
    await services.run_db(services.gallery.person, person_id)  # 404 before reading uploads
    body = await read_image_body(
        request, services.settings, json_model=None, text_fields=("force", *LIVENESS_TEXT_FIELDS)
    )
    uploads = body.images("image")
    force = body.boolean("force")
    proof = liveness_proof(request, body)
    if proof is not None:
        await services.run_model(_require_live_photos, services, proof, uploads)
    return await services.run_model(_enrol, services.gallery, person_id, uploads, force)


@router.post(
    "/{person_id}/merge",
    response_model=Person,
    summary="Merge another person into this one",
    description='JSON `{"from_person_id": N}`: person N\'s faces and photos move to this '
    "person and N is deleted, in one transaction (audited as `merge`). This person keeps "
    "its name; it takes N's external id if it has none, and N's metadata keys it lacks. "
    "Answers the merged person. 422 when N is this person.",
    responses=errors_doc(404, 409, 413, 422),
)
async def merge_person(
    person_id: PersonId,
    body: MergeRequest,
    _: WriteAccess,
    services: ServicesDep,
) -> Person:
    merged = await services.run_db(services.gallery.merge, person_id, body.from_person_id)
    return Person.from_core(merged)


def _template_of(services: Services, person_id: int, template_id: int) -> TemplateInfo:
    for t in services.gallery.templates(person_id):
        if t.id == template_id:
            return t
    raise NotFoundError(
        f"person #{person_id} has no face #{template_id}",
        person=person_id,
        template=template_id,
    )


@router.get(
    "/{person_id}/faces",
    response_model=FaceList,
    summary="A person's enrolled faces",
    responses=errors_doc(404, 422),
)
async def list_faces(
    person_id: PersonId,
    _: ReadAccess,
    services: ServicesDep,
) -> FaceList:
    gallery = services.gallery

    def faces() -> FaceList:
        kept = gallery.kept_photo_ids(person_id)
        return FaceList(
            items=[
                FaceTemplate(
                    id=t.id,
                    quality=t.quality,
                    source=t.source,
                    created_at=t.created_at,
                    has_photo=t.photo_id is not None and t.photo_id in kept,
                    flags=list(t.flags),
                )
                for t in gallery.templates(person_id)
            ]
        )

    return await services.run_db(faces)


@router.delete(
    "/{person_id}/faces/{template_id}",
    status_code=204,
    response_class=Response,
    summary="Remove one enrolled face (and its photo, if no other face uses it)",
    responses=errors_doc(404, 422),
)
async def delete_face(
    person_id: PersonId,
    template_id: TemplateId,
    _: AdminAccess,
    services: ServicesDep,
) -> Response:
    def remove() -> None:
        _template_of(services, person_id, template_id)
        services.gallery.remove_template(template_id)

    await services.run_db(remove)
    return Response(status_code=204)


@router.get(
    "/{person_id}/faces/{template_id}/photo",
    response_class=Response,
    summary="The photo a face was enrolled from (when photos are kept)",
    description="The stored bytes, with the content type sniffed from them. 404 when the "
    "server does not keep photos (`--keep-photos`).",
    responses={
        200: {
            "description": "the photo",
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in PHOTO_TYPES},
        },
        **errors_doc(404, 422),
    },
)
async def face_photo(
    person_id: PersonId,
    template_id: TemplateId,
    _: ReadAccess,
    services: ServicesDep,
) -> Response:
    def photo() -> bytes:
        t = _template_of(services, person_id, template_id)
        data = None if t.photo_id is None else services.gallery.photo_bytes(t.photo_id)
        if data is None:
            raise NotFoundError(
                f"the photo of face #{template_id} is not kept (start the server with "
                "--keep-photos to keep enrolled photos)",
                template=template_id,
            )
        return data

    data = await services.run_db(photo)
    try:
        mime = sniff_image(data, label=f"photo of face #{template_id}").mime
    except FaceIndexError:  # a format outside the upload allow-list (enrolled by the CLI)
        mime = "application/octet-stream"
    if mime not in PHOTO_TYPES:
        mime = "application/octet-stream"
    return Response(
        content=data,
        media_type=mime,
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )
