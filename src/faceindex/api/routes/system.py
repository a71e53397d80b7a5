"""Health, readiness and the evaluation summary."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from faceindex import __version__
from faceindex.api.auth import ReadAccess
from faceindex.api.openapi import errors_doc
from faceindex.api.schemas import EvalSummary, Health, Ready
from faceindex.api.state import Services, ServicesDep

router = APIRouter(tags=["system"])


@router.get(
    "/health",
    response_model=Health,
    summary="Is the server up? (no key needed)",
    responses=errors_doc(auth=False),
)
async def health(services: ServicesDep) -> Health:
    return Health(version=__version__, auth=not services.settings.no_auth)


@router.get(
    "/ready",
    response_model=Ready,
    summary="Are the models loaded? (no key needed)",
    responses={503: {"model": Ready, "description": "models are still loading, or failed"}},
)
async def ready(request: Request) -> JSONResponse:
    services: Services | None = request.app.state.services
    if services is None:  # starting or stopping
        return JSONResponse(Ready(ready=False, model=None).model_dump(), status_code=503)
    body = Ready(ready=services.ready, model=services.pipeline.model_id, error=services.ready_error)
    return JSONResponse(body.model_dump(), status_code=200 if services.ready else 503)


@router.get(
    "/eval/summary",
    response_model=EvalSummary,
    summary="Gallery size, model and decision thresholds",
    responses=errors_doc(),
)
async def eval_summary(_: ReadAccess, services: ServicesDep) -> EvalSummary:
    gallery, pipeline = services.gallery, services.pipeline

    def collect() -> EvalSummary:
        spec = pipeline.embedder.spec
        calibrated = pipeline.threshold == spec.threshold
        return EvalSummary(
            people=gallery.count_people(),
            templates=gallery.count_templates(),
            model=pipeline.model_id,
            gallery_model=gallery.model_id,
            threshold=pipeline.threshold,
            target_fmr=spec.target_fmr if calibrated else None,
            calibrated_threshold=spec.threshold,
            calibrated_fmr=spec.target_fmr,
            identify_threshold=gallery.threshold,
            rule=str(gallery.rule),
            margin=gallery.margin,
        )

    return await services.run_db(collect)
