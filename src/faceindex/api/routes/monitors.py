"""Stream monitors: run ``watch`` on a camera, stream or file inside the server.

Starting and stopping a monitor needs the ``admin`` scope, because it makes the server open
a device, a local file or a network address of the caller's choosing; reading monitors and
their events needs ``read``. Events are polled: ``GET .../events?after=SEQ`` returns those
with a larger sequence number (the last 1000 are kept per monitor).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from faceindex.api.auth import AdminAccess, ReadAccess
from faceindex.api.errors import ApiError
from faceindex.api.openapi import errors_doc
from faceindex.api.schemas import Input
from faceindex.api.state import Services, ServicesDep
from faceindex.video.monitor import MonitorInfo, MonitorManager

router = APIRouter(tags=["monitors"])

MonitorId = Annotated[int, PathParam(ge=1, le=2**31)]


class MonitorCreate(Input):
    source: str = Field(
        min_length=1,
        max_length=2000,
        description="a video file on the server, a device index such as '0', or an rtsp/http URL",
    )
    realtime: bool = Field(
        False, strict=True, description="pace a file at its frame rate, like a camera"
    )
    max_seconds: float | None = Field(
        None,
        gt=0,
        le=86400,
        strict=True,
        description="stop after this long (default: until stopped)",
    )


class Monitor(BaseModel):
    id: int
    source: str = Field(description="the source, with any password removed")
    status: str = Field(description="starting, running, finished, stopped or failed")
    started_at: float = Field(description="Unix time")
    frames: int
    events: int = Field(description="events emitted so far")
    error: str | None

    @classmethod
    def of(cls, info: MonitorInfo) -> Monitor:
        return cls(**info.as_dict())


class MonitorList(BaseModel):
    items: list[Monitor]


class MonitorEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    seq: int
    event: str = Field(description="appeared, identified or left")
    track_id: int
    person: str | None


class MonitorEvents(BaseModel):
    items: list[MonitorEvent]
    next: int = Field(description="pass as ?after= to get only newer events")


def _manager(services: Services) -> MonitorManager:
    if services.monitors is None:  # pragma: no cover - set in the lifespan
        raise ApiError(503, "not_ready", "the service is starting or stopping")
    return services.monitors


@router.post(
    "/monitors",
    status_code=201,
    response_model=Monitor,
    summary="Start watching a camera, stream or video file",
    responses=errors_doc(409, 422),
)
async def start_monitor(_: AdminAccess, services: ServicesDep, body: MonitorCreate) -> Monitor:
    info = await services.run_db(
        _manager(services).start, body.source, realtime=body.realtime, max_seconds=body.max_seconds
    )
    return Monitor.of(info)


@router.get(
    "/monitors", response_model=MonitorList, summary="List monitors", responses=errors_doc()
)
async def list_monitors(_: ReadAccess, services: ServicesDep) -> MonitorList:
    return MonitorList(items=[Monitor.of(i) for i in _manager(services).list()])


@router.get(
    "/monitors/{monitor_id}",
    response_model=Monitor,
    summary="One monitor",
    responses=errors_doc(404, 422),
)
async def get_monitor(_: ReadAccess, services: ServicesDep, monitor_id: MonitorId) -> Monitor:
    return Monitor.of(_manager(services).get(monitor_id).info())


@router.get(
    "/monitors/{monitor_id}/events",
    response_model=MonitorEvents,
    summary="A monitor's events after a sequence number",
    responses=errors_doc(404, 422),
)
async def monitor_events(
    _: ReadAccess,
    services: ServicesDep,
    monitor_id: MonitorId,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MonitorEvents:
    monitor = _manager(services).get(monitor_id)
    rows = monitor.events_after(after, limit)
    items: list[dict[str, Any]] = [{"seq": seq, **event} for seq, event in rows]
    return MonitorEvents(
        items=[MonitorEvent(**item) for item in items], next=rows[-1][0] if rows else after
    )


@router.delete(
    "/monitors/{monitor_id}",
    status_code=204,
    response_class=Response,
    summary="Stop a monitor and forget it",
    responses=errors_doc(404, 422),
)
async def stop_monitor(_: AdminAccess, services: ServicesDep, monitor_id: MonitorId) -> Response:
    await services.run_db(_manager(services).remove, monitor_id)
    return Response(status_code=204)
