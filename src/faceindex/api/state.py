"""What the app builds once at start-up and every request uses, and how to run work off
the event loop."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from faceindex.api.errors import ApiError
from faceindex.api.ratelimit import RateLimiter
from faceindex.api.settings import ApiSettings
from faceindex.apikeys import KeyRing
from faceindex.gallery import Gallery
from faceindex.pipeline import Pipeline
from faceindex.video.monitor import MonitorManager

T = TypeVar("T")


@dataclass(slots=True)
class Services:
    settings: ApiSettings
    pipeline: Pipeline
    gallery: Gallery
    keys: KeyRing
    rate: RateLimiter
    #: Bounds the requests doing model work at once (the runtime is multi-threaded itself).
    model_limiter: anyio.CapacityLimiter
    ready: bool = False
    ready_error: str | None = None
    #: Background stream monitors (``/v1/monitors``), created in the lifespan.
    monitors: MonitorManager | None = None

    async def run_model(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run model work (decode, detect, embed) in a worker thread, a few at a time."""
        call = functools.partial(fn, *args, **kwargs)
        return await anyio.to_thread.run_sync(call, limiter=self.model_limiter)

    @staticmethod
    async def run_db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a gallery read or write (SQLite) in a worker thread."""
        return await run_in_threadpool(fn, *args, **kwargs)


def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:  # only before start-up completes or after shut-down
        raise ApiError(503, "not_ready", "the service is starting or stopping")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


#: One lock for the objects :func:`per_app` makes: re-entrant, as making one may need
#: another (the challenge measurer needs the liveness checker and the attribute analyzer).
_PER_APP_LOCK = threading.RLock()


def per_app(request: Request, name: str, make: Callable[[], T]) -> T:
    """The app's one ``name`` object on ``app.state``, made by ``make`` the first time it
    is asked for: models only some routes need (attribute estimators, the liveness
    checker and its sessions), so an app that never serves them never loads them."""
    state = request.app.state
    found: Any = getattr(state, name, None)
    if found is None:
        with _PER_APP_LOCK:
            found = getattr(state, name, None)
            if found is None:
                found = make()
                setattr(state, name, found)
    value: T = found
    return value
