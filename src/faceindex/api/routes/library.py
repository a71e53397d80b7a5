"""The photo library over REST: photos by person, and the clusters of unnamed faces.

``GET /photos?person=ID[&person=ID2]`` (``read``): the scanned photos showing every one of
those people. ``GET /clusters`` (``read``): the clusters, largest first, and the faces in
none. ``POST /clusters/{id}/name``, ``POST /clusters/{id}/merge`` and ``DELETE
/clusters/{id}/faces/{face_id}`` (``write``): name a cluster (its faces are enrolled),
merge two, take a face out ("not this person").

``POST /scans`` (``write``) scans folders on the server's disk in the background, one scan
at a time (:mod:`faceindex.library.jobs`); ``GET /scans/{id}`` (``read``) is its progress,
``DELETE /scans/{id}`` (``write``) cancels it between two photos (what was done stays).
Only folders under the roots listed in ``FACEINDEX_LIBRARY_ROOTS`` (``os.pathsep``-
separated, read once when the first scan request comes) are scanned; without it the
server scans nothing (403 ``folder_not_allowed``): a write key must not make the server
read any folder it can reach. ``GET /library/faces/{id}/thumbnail`` (``read``) is a small
JPEG crop around a face, cut from the photo on disk (only photos the library scanned, and
only while the file is unchanged since).

The DTOs are declared here: these routes are their only users.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import Field, model_validator

from faceindex.api.auth import ReadAccess, WriteAccess
from faceindex.api.errors import ApiError
from faceindex.api.openapi import errors_doc
from faceindex.api.schemas import MAX_ID, Input, Person, WireId, _Wire
from faceindex.api.state import Services, ServicesDep
from faceindex.errors import NotFoundError
from faceindex.io.image import load_image
from faceindex.library.jobs import (
    FolderNotAllowedError,
    ScanInfo,
    ScanJobs,
    allowed_folder,
    parse_roots,
)
from faceindex.library.library import Cluster as CoreCluster
from faceindex.library.library import PhotoLibrary
from faceindex.library.store import FaceRecord
from faceindex.types import BBox

#: The environment variable listing the folders the server may scan.
ROOTS_ENV = "FACEINDEX_LIBRARY_ROOTS"

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


class PhotoItem(_Wire):
    path: str
    faces: list[LibraryFace] = Field(description="those people's faces in the photo")


class PhotoList(_Wire):
    person_ids: list[int]
    photos: list[str] = Field(description="paths of the photos showing all of them")
    items: list[PhotoItem] = Field(description="the same photos, with those people's faces")


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
    found = await services.run_db(library.photo_faces_of, person)
    return PhotoList(
        person_ids=sorted(set(person)),
        photos=[p for p, _ in found],
        items=[PhotoItem(path=p, faces=[LibraryFace.from_core(f) for f in fs]) for p, fs in found],
    )


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


# -- face thumbnails ---------------------------------------------------------------------


def face_crop(rgb: np.ndarray, bbox: BBox, *, size: int, scale: float = 1.8) -> bytes:
    """A square JPEG of ``size`` pixels around ``bbox`` (``scale`` times its larger side,
    moved inside the photo where it can be)."""
    from PIL import Image

    height, width = rgb.shape[:2]
    cx, cy = (bbox.x1 + bbox.x2) / 2, (bbox.y1 + bbox.y2) / 2
    side = max(bbox.x2 - bbox.x1, bbox.y2 - bbox.y1, 1.0) * scale
    side = min(side, float(width), float(height))
    x1 = min(max(cx - side / 2, 0.0), max(width - side, 0.0))
    y1 = min(max(cy - side / 2, 0.0), max(height - side, 0.0))
    box = (round(x1), round(y1), round(min(x1 + side, width)), round(min(y1 + side, height)))
    crop = Image.fromarray(rgb).crop(box)
    crop.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    crop.save(out, format="JPEG", quality=85)
    return out.getvalue()


@router.get(
    "/library/faces/{face_id}/thumbnail",
    response_class=Response,
    summary="A small JPEG around one face of a scanned photo",
    description="Cut from the photo on disk: 404 when the face is unknown, or the photo is "
    "gone or changed since it was scanned (scan it again).",
    responses={200: {"content": {"image/jpeg": {}}}, **errors_doc(404, 422)},
)
async def face_thumbnail(
    request: Request,
    face_id: FaceId,
    _: ReadAccess,
    services: ServicesDep,
    size: Annotated[int, Query(ge=32, le=512, description="pixels, square")] = 160,
    scale: Annotated[
        float, Query(ge=1.0, le=8.0, description="the crop's side over the face's")
    ] = 1.8,
) -> Response:
    library = library_of(request, services)

    def run() -> bytes:
        face = library.store.face(face_id)
        photo = library.store.photo(face.photo_id)
        try:
            st = os.stat(photo.path)
            if (st.st_size, st.st_mtime_ns) != (photo.size, photo.mtime_ns):
                raise NotFoundError(
                    "the photo changed since it was scanned: scan it again", face=face_id
                )
            data = Path(photo.path).read_bytes()
        except OSError as exc:
            raise NotFoundError("the photo is gone since it was scanned", face=face_id) from exc
        rgb = load_image(data, limits=services.pipeline.limits, name=f"face #{face_id}")
        return face_crop(rgb, face.bbox, size=size, scale=scale)

    jpeg = await services.run_model(run)
    return Response(
        jpeg,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )


# -- scans -----------------------------------------------------------------------------

ScanId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="the scan's id")]


class ScanRequest(Input):
    folders: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        min_length=1,
        max_length=50,
        description="absolute folders on the server, under its FACEINDEX_LIBRARY_ROOTS",
    )


class ScanOut(_Wire):
    id: int
    state: str = Field(description="running, done, cancelled or failed")
    folders: list[str]
    started_at: float = Field(description="Unix time")
    finished_at: float | None
    total: int = Field(description="files found (0 until the walk is done)")
    seen: int = Field(description="files looked at")
    done: int = Field(description="photos scanned (new, changed or unchanged)")
    failed: int = Field(description="photos that could not be read")
    not_photos: int
    faces: int = Field(description="faces found in the photos analysed")
    recognised: int = Field(description="of those, faces of enrolled people")
    photos_per_s: float = Field(description="files looked at per second")
    clusters_new: int
    error: str | None

    @classmethod
    def of(cls, info: ScanInfo) -> ScanOut:
        return cls(**info.as_dict())


class ScanList(_Wire):
    items: list[ScanOut] = Field(description="newest first; the running scan, if any, first")


def scans_of(request: Request, services: Services) -> ScanJobs:
    """The app's scan jobs (one running at a time), with the roots read from the
    environment on first use."""
    with _LOCK:
        jobs: ScanJobs | None = getattr(request.app.state, "scans", None)
        if jobs is None:
            gallery, pipeline = services.gallery, services.pipeline
            jobs = ScanJobs(lambda: PhotoLibrary(gallery, pipeline=pipeline))
            request.app.state.scans = jobs
            request.app.state.scan_roots = parse_roots(os.environ.get(ROOTS_ENV))
        return jobs


@router.post(
    "/scans",
    status_code=202,
    response_model=ScanOut,
    summary="Scan folders on the server in the background",
    description="Only folders under the roots listed in the server's FACEINDEX_LIBRARY_ROOTS "
    "(403 folder_not_allowed otherwise, and always when it is not set); one scan at a time "
    "(409 while one runs). Poll GET /v1/scans/{id}.",
    responses=errors_doc(403, 404, 409, 422),
)
async def start_scan(
    request: Request, body: ScanRequest, _: WriteAccess, services: ServicesDep
) -> ScanOut:
    jobs = scans_of(request, services)
    roots = request.app.state.scan_roots
    try:
        folders = [allowed_folder(f, roots) for f in body.folders]
    except FolderNotAllowedError as exc:
        raise ApiError(403, exc.code, exc.message, details=exc.details) from exc
    job = await services.run_db(jobs.start, folders)
    return ScanOut.of(job.info())


@router.get("/scans", response_model=ScanList, summary="Recent scans", responses=errors_doc())
async def list_scans(request: Request, _: ReadAccess, services: ServicesDep) -> ScanList:
    jobs = scans_of(request, services)
    infos = sorted((j.info() for j in jobs.list()), key=lambda i: (i.state != "running", -i.id))
    return ScanList(items=[ScanOut.of(i) for i in infos])


@router.get(
    "/scans/{scan_id}",
    response_model=ScanOut,
    summary="A scan's progress",
    responses=errors_doc(404, 422),
)
async def get_scan(
    request: Request, scan_id: ScanId, _: ReadAccess, services: ServicesDep
) -> ScanOut:
    return ScanOut.of(scans_of(request, services).get(scan_id).info())


@router.delete(
    "/scans/{scan_id}",
    response_model=ScanOut,
    summary="Cancel a scan (it stops after the photo it is on; what was done stays)",
    responses=errors_doc(404, 422),
)
async def cancel_scan(
    request: Request, scan_id: ScanId, _: WriteAccess, services: ServicesDep
) -> ScanOut:
    return ScanOut.of(scans_of(request, services).cancel(scan_id).info())
