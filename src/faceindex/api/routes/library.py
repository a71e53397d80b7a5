"""The photo library over REST: photos by person, and the clusters of unnamed faces.

``GET /photos?person=ID[&person=ID2]`` (``read``): the scanned photos showing every one of
those people. ``GET /clusters`` (``read``): the clusters, largest first, and the faces in
none. ``POST /clusters/{id}/name``, ``POST /clusters/{id}/merge`` and ``DELETE
/clusters/{id}/faces/{face_id}`` (``write``): name a cluster (its faces are enrolled),
merge two, take a face out ("not this person"). Scanning stays on the command line
(``faceindex scan``): the server reads no folders of its own.

The DTOs are declared here: these routes are their only users.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import Field, model_validator

from faceindex.api.auth import ReadAccess, WriteAccess
from faceindex.api.openapi import errors_doc
from faceindex.api.schemas import MAX_ID, Input, Person, WireId, _Wire
from faceindex.api.state import Services, ServicesDep
from faceindex.library.library import Cluster as CoreCluster
from faceindex.library.library import PhotoLibrary
from faceindex.library.store import FaceRecord

router = APIRouter(tags=["library"])

ClusterId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="the cluster's id")]
FaceId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="the library face's id")]

_LOCK = threading.Lock()


def library_of(request: Request, services: Services) -> PhotoLibrary:
    """The app's photo library over its gallery, opened on first use and kept."""
    with _LOCK:
        held: tuple[object, PhotoLibrary] | None = getattr(request.app.state, "library", None)
        if held is None or held[0] is not services.gallery:
            library = PhotoLibrary(services.gallery, pipeline=services.pipeline)
            request.app.state.library = (services.gallery, library)
            return library
        return held[1]


class LibraryFace(_Wire):
    id: int
    path: str
    bbox: list[float] = Field(description="x1, y1, x2, y2 in pixels of the (EXIF-rotated) photo")

    @classmethod
    def from_core(cls, f: FaceRecord) -> LibraryFace:
        return cls(**f.as_dict())


class ClusterOut(_Wire):
    id: int
    size: int
    faces: list[LibraryFace]

    @classmethod
    def from_core(cls, c: CoreCluster) -> ClusterOut:
        return cls(id=c.id, size=c.size, faces=[LibraryFace.from_core(f) for f in c.faces])


class ClusterList(_Wire):
    clusters: list[ClusterOut] = Field(description="largest first")
    unclustered: list[LibraryFace]


class NameRequest(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    person_id: WireId | None = Field(default=None, description="add to this existing person")

    @model_validator(mode="after")
    def _one_of(self) -> NameRequest:
        if (self.name is None) == (self.person_id is None):
            raise ValueError("give name or person_id (one of them)")
        return self


class NameResponse(_Wire):
    cluster: int
    faces: int
    person: Person


class ClusterMergeRequest(Input):
    from_cluster_id: WireId = Field(description="the cluster folded in (and gone)")


class PhotoList(_Wire):
    person_ids: list[int]
    photos: list[str] = Field(description="paths of the photos showing all of them")


@router.get(
    "/photos",
    response_model=PhotoList,
    summary="Scanned photos showing all the people given",
    responses=errors_doc(404, 422),
)
async def photos(
    request: Request,
    _: ReadAccess,
    services: ServicesDep,
    person: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_ID)]],
        Query(min_length=1, max_length=20, description="person id"),
    ],
) -> PhotoList:
    library = library_of(request, services)
    found = await services.run_db(library.photos_of, person)
    return PhotoList(person_ids=sorted(set(person)), photos=found)


@router.get(
    "/clusters",
    response_model=ClusterList,
    summary="Clusters of unnamed faces, largest first",
    responses=errors_doc(422),
)
async def list_clusters(request: Request, _: ReadAccess, services: ServicesDep) -> ClusterList:
    listing = await services.run_db(library_of(request, services).clusters)
    return ClusterList(
        clusters=[ClusterOut.from_core(c) for c in listing.clusters],
        unclustered=[LibraryFace.from_core(f) for f in listing.unclustered],
    )


@router.post(
    "/clusters/{cluster_id}/name",
    response_model=NameResponse,
    summary="Make a cluster a person (its faces are enrolled)",
    responses=errors_doc(404, 409, 422),
)
async def name_cluster(
    request: Request,
    cluster_id: ClusterId,
    body: NameRequest,
    _: WriteAccess,
    services: ServicesDep,
) -> NameResponse:
    library = library_of(request, services)

    def run() -> NameResponse:
        size = library.cluster(cluster_id).size
        person = library.name(cluster_id, body.name, person_id=body.person_id)
        return NameResponse(cluster=cluster_id, faces=size, person=Person.from_core(person))

    return await services.run_db(run)


@router.post(
    "/clusters/{cluster_id}/merge",
    response_model=ClusterOut,
    summary="Fold another cluster into this one",
    responses=errors_doc(404, 409, 422),
)
async def merge_clusters(
    request: Request,
    cluster_id: ClusterId,
    body: ClusterMergeRequest,
    _: WriteAccess,
    services: ServicesDep,
) -> ClusterOut:
    library = library_of(request, services)
    merged = await services.run_db(library.merge, cluster_id, body.from_cluster_id)
    return ClusterOut.from_core(merged)


@router.delete(
    "/clusters/{cluster_id}/faces/{face_id}",
    response_model=LibraryFace,
    summary="Not this person: take a face out of a cluster for good",
    responses=errors_doc(404, 422),
)
async def remove_face(
    request: Request,
    cluster_id: ClusterId,
    face_id: FaceId,
    _: WriteAccess,
    services: ServicesDep,
) -> LibraryFace:
    library = library_of(request, services)
    face = await services.run_db(library.remove_face, cluster_id, face_id)
    return LibraryFace.from_core(face)
