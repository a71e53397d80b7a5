"""The FastAPI app factory: ``create_app(settings)``.

Start-up (the lifespan) opens the gallery and the pipeline once, in a worker thread, then
loads the models in the background: ``GET /v1/ready`` answers 503 until they are loaded
(requests made before then wait for the load instead of failing). Model work runs in worker
threads, at most ``model_workers`` requests at a time; gallery reads and writes run in
the thread pool too, so the event loop only parses requests and writes answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from faceindex import __version__
from faceindex.api import errors
from faceindex.api.ratelimit import RateLimiter
from faceindex.api.routes import (
    admin,
    attributes,
    cloak,
    library,
    liveness,
    monitors,
    people,
    recognition,
    system,
    transfer,
)
from faceindex.api.security import (
    BodyTimeoutMiddleware,
    HostOriginMiddleware,
    SecurityHeadersMiddleware,
)
from faceindex.api.settings import ApiSettings
from faceindex.api.state import Services
from faceindex.api.uploads import BodyLimitMiddleware
from faceindex.apikeys import KeyRing
from faceindex.challenges import SharedSessionStore
from faceindex.config import Settings
from faceindex.crypto import TemplateKey
from faceindex.gallery import Gallery, open_gallery
from faceindex.pipeline import Pipeline
from faceindex.video.monitor import MonitorManager

log = logging.getLogger(__name__)

API_PREFIX = "/v1"

_DESCRIPTION = """\
Self-hosted face recognition: detect faces, verify identities (1:1), identify people in a
gallery (1:N, open set), and manage the gallery.

**Auth**: send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>` (create one
with `faceindex keys create --name NAME --scopes read,write,admin`). Scopes: `read`
(detect, verify, identify, view), `write` (create, enrol, rename), `admin` (delete, audit,
keys); admin implies write implies read.

**Errors** have the body `{"error": {"code", "message", "details"}}`: 401/403 auth,
404 not found, 409 conflict, 413 too large, 415 unsupported body type, 422 invalid
request or image (`validation_error`, `image_decode_error`, `no_face`, ...), 429 rate
limited, 5xx server side. 400 for a Host name the server does not answer to, 403 for a
cross-origin POST/PATCH/DELETE (an `Origin` header that is not the server's own), 408 when a
request body is not received within the body timeout.
"""


def packaged_static_dir() -> Path:
    """The web UI shipped with faceindex (``faceindex/web/static``)."""
    return Path(__file__).resolve().parent.parent / "web" / "static"


def pipeline_settings(settings: ApiSettings) -> Settings:
    """The pipeline's settings, with the API's image limits."""
    runtime = dataclasses.replace(
        settings.pipeline.runtime,
        max_image_pixels=settings.max_image_pixels,
        max_image_bytes=settings.max_upload_bytes,
    )
    return dataclasses.replace(settings.pipeline, runtime=runtime)


def _open(
    settings: ApiSettings, pipeline: Pipeline | None, gallery: Gallery | None
) -> tuple[Pipeline, Gallery, KeyRing, SharedSessionStore, bool]:
    owned = gallery is None
    if gallery is None:
        core = pipeline_settings(settings)
        pipeline = pipeline or Pipeline.from_settings(core)
        gallery = open_gallery(
            settings.gallery,
            settings=core,
            pipeline=pipeline,
            key=TemplateKey.from_file(settings.key_file) if settings.key_file else None,
            keep_photos=settings.keep_photos or core.gallery.keep_photos,
            actor="api",
        )
    pipeline = pipeline or gallery.pipeline
    try:
        keys = KeyRing(gallery.location)
    except BaseException:
        if owned:
            gallery.close()
        raise
    try:
        # Liveness sessions and tokens in the gallery's database: every server on it
        # shares them (docs/liveness.md, "Several servers").
        challenges = SharedSessionStore(gallery.location)
    except BaseException:
        keys.close()
        if owned:
            gallery.close()
        raise
    return pipeline, gallery, keys, challenges, owned


def _announce(services: Services) -> None:
    settings = services.settings
    if settings.no_auth:
        log.warning(
            "!!! AUTHENTICATION IS DISABLED (--no-auth): anyone who can reach %s:%d can read, "
            "enrol and erase faces in %s. Use this for local testing only. !!!",
            settings.host,
            settings.port,
            services.gallery.where,
        )
    elif not services.keys.keys(include_revoked=False):
        log.warning(
            "no API key exists yet: every request will be refused (401). Create one with: "
            "faceindex keys create --name NAME --scopes read,write,admin --gallery %s",
            services.gallery.where,
        )
    log.info(
        "serving gallery %s (%d people) with model %s",
        services.gallery.where,
        services.gallery.count_people(),
        services.pipeline.model_id,
    )


async def _warm_up(services: Services) -> None:
    """Load the models and build the search index, then report ready."""

    def load() -> None:
        services.pipeline.warm_up()
        services.gallery.rebuild_index()

    try:
        await anyio.to_thread.run_sync(load, abandon_on_cancel=True)
    except Exception as exc:  # reported by /v1/ready; requests will meet the same error
        services.ready_error = getattr(exc, "message", None) or type(exc).__name__
        log.error("models failed to load: %s", services.ready_error)
        return
    services.ready = True
    log.info("models loaded: %s", services.pipeline.model_id)


def create_app(
    settings: ApiSettings | None = None,
    *,
    pipeline: Pipeline | None = None,
    gallery: Gallery | None = None,
) -> FastAPI:
    """The REST API (and the web UI at ``/``).

    ``pipeline`` and ``gallery`` are built in the lifespan from ``settings`` unless given
    (a given gallery is left open at shut-down: its owner closes it).
    """
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pipe, gal, keys, challenges, owned = await run_in_threadpool(
            _open, settings, pipeline, gallery
        )
        services = Services(
            settings=settings,
            pipeline=pipe,
            gallery=gal,
            keys=keys,
            rate=RateLimiter(settings.rate_limit_per_minute),
            model_limiter=anyio.CapacityLimiter(settings.model_workers),
        )
        services.monitors = MonitorManager(pipe, gal, max_running=settings.max_monitors)
        app.state.services = services
        app.state.liveness_sessions = challenges  # api/routes/liveness.py
        await run_in_threadpool(_announce, services)
        warm = asyncio.create_task(_warm_up(services))
        try:
            yield
        finally:
            app.state.services = None
            await run_in_threadpool(services.monitors.stop_all)
            # The photo library's scan thread and connection (api/routes/library.py), if a
            # request made them: a stopped scan keeps what it did, the next one goes on.
            scans = getattr(app.state, "scans", None)
            if scans is not None:
                await run_in_threadpool(scans.stop_all)
            held = getattr(app.state, "library", None)
            if held is not None:
                app.state.library = None
                held[1].close()
            warm.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warm
            keys.close()
            challenges.close()
            if owned:
                gal.close()

    app = FastAPI(
        title="faceindex",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if settings.docs else None,
        redoc_url=None,
    )
    app.state.services = None
    errors.install(app)
    # The last added runs first: headers on every answer, then Host and Origin, then the
    # body's time and size limits.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(BodyTimeoutMiddleware, timeout_s=settings.body_timeout_s)
    app.add_middleware(HostOriginMiddleware, settings=settings)
    app.add_middleware(SecurityHeadersMiddleware)
    for module in (
        system,
        recognition,
        liveness,
        attributes,
        cloak,
        people,
        library,
        admin,
        monitors,
        transfer,
    ):
        app.include_router(module.router, prefix=API_PREFIX)
    static = settings.static_dir or packaged_static_dir()
    if (static / "index.html").is_file():
        app.mount("/", StaticFiles(directory=static, html=True), name="web")
    else:
        log.info("no web UI at %s: serving the API only", static)
    return app
