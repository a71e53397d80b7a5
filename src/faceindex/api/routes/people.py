"""People and their enrolled faces: list, create, view, patch, erase, enrol photos."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam

from faceindex.api.auth import AdminAccess, ReadAccess, WriteAccess
from faceindex.api.openapi import errors_doc, image_body_doc
from faceindex.api.schemas import (
    MAX_ID,
    EnrolledPhoto,
    EnrolResponse,
    FaceList,
    FaceTemplate,
    PeoplePage,
    Person,
    PersonCreate,
    PersonPatch,
)
from faceindex.api.state import Services, ServicesDep
from faceindex.api.uploads import read_image_body, sniff_image
from faceindex.errors import FaceIndexError, NotFoundError
from faceindex.gallery import TemplateInfo

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


@router.post(
    "",
    response_model=Person,
    status_code=201,
    summary="Create a person (photos come with POST /people/{id}/faces)",
    responses=errors_doc(409, 413, 422),
)
async def create_person(
    body: PersonCreate,
    _: WriteAccess,
    services: ServicesDep,
) -> Person:
    person = await services.run_db(
        services.gallery.create_person,
        body.name,
        external_id=body.external_id,
        metadata=body.metadata,
    )
    return Person.from_core(person)


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
    description="Multipart field `image`, repeated for several photos. Every photo gets a "
    "status: `accepted` (with its `template_id`), `duplicate` (already enrolled), or "
    "`rejected` with reasons (`no_face`, `several_faces`, `blurry`, `too_small`, "
    "`too_dark`, `too_bright`, `extreme_pose`, `image_decode_error`, ...). Rejections are "
    "not errors: the answer is 200. A file that is not an image at all fails the whole "
    "request (422 `image_decode_error`) before anything is enrolled.",
    responses=errors_doc(404, 413, 415, 422),
    openapi_extra=image_body_doc({"image": True}, json_model=None, required=("image",)),
)
async def enrol_faces(
    person_id: PersonId,
    request: Request,
    _: WriteAccess,
    services: ServicesDep,
) -> EnrolResponse:
    await services.run_db(services.gallery.person, person_id)  # 404 before reading uploads
    body = await read_image_body(request, services.settings, json_model=None)
    uploads = body.images("image")
    gallery = services.gallery

    def enrol() -> EnrolResponse:
        report = gallery.enroll_person(
            person_id, [u.data for u in uploads], sources=[u.label for u in uploads]
        )
        return EnrolResponse(
            person=Person.from_core(gallery.person(person_id)),
            photos=[EnrolledPhoto.from_core(o) for o in report.outcomes],
        )

    return await services.run_model(enrol)


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
