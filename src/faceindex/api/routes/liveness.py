"""Passive liveness (presentation-attack detection) of the faces of one photo.

The checker (``colour-texture``) is made on the first request and kept on the app's state,
so each app owns its own (no module global); its model is a few KB and loads in
milliseconds. Model work runs in the worker threads, like detection.
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from faceindex.api.auth import ReadAccess
from faceindex.api.openapi import errors_doc, image_body_doc
from faceindex.api.schemas import DetectJson
from faceindex.api.state import ServicesDep
from faceindex.api.uploads import read_image_body
from faceindex.io.image import ImageLimits, load_image
from faceindex.liveness import DEFAULT_CHECKER, LIVENESS_CHECKERS, LivenessChecker

router = APIRouter(tags=["liveness"])

_LOCK = threading.Lock()


class LivenessFace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bbox: list[float] = Field(description="[x1, y1, x2, y2] in pixels", min_length=4, max_length=4)
    live: bool = Field(description="score >= threshold")
    score: float = Field(description="calibrated probability that the face is live, 0-1")


class LivenessResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    faces: list[LivenessFace] = Field(description="largest first; empty when no face is found")
    threshold: float
    checker: str
    width: int
    height: int


def _checker(request: Request) -> LivenessChecker:
    state = request.app.state
    checker: LivenessChecker | None = getattr(state, "liveness_checker", None)
    if checker is None:
        with _LOCK:
            checker = getattr(state, "liveness_checker", None)
            if checker is None:
                checker = LIVENESS_CHECKERS.get(DEFAULT_CHECKER)()
                state.liveness_checker = checker
    return checker


@router.post(
    "/liveness",
    response_model=LivenessResponse,
    summary="Is each face live, or a photo / screen held to the camera?",
    description='Multipart field `image`, or JSON `{"image_base64": ...}`. Every face the '
    "detector finds, largest first, with `score` (calibrated probability of a live face) "
    "and `live` (score at or above `threshold`). Passive, from one image: printed-photo "
    "attacks are what it was trained and measured on (docs/liveness.md).",
    responses=errors_doc(413, 415, 422),
    openapi_extra=image_body_doc({"image": False}, json_model=DetectJson, required=("image",)),
)
async def liveness(
    request: Request,
    _: ReadAccess,
    services: ServicesDep,
) -> LivenessResponse:
    body = await read_image_body(request, services.settings, json_model=DetectJson)
    upload = body.image("image")
    checker = _checker(request)

    def work() -> LivenessResponse:
        s = services.settings
        rgb = load_image(
            upload.data,
            limits=ImageLimits(s.max_image_pixels, s.max_upload_bytes),
            name=upload.label,
        )
        faces = services.pipeline.detector.detect(rgb)
        scores = checker.check(rgb, faces)
        return LivenessResponse(
            faces=[
                LivenessFace(bbox=f.bbox.as_list(), live=r.live, score=round(r.score, 6))
                for f, r in zip(faces, scores, strict=True)
            ],
            threshold=round(checker.threshold, 6),
            checker=checker.name,
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
        )

    return await services.run_model(work)
