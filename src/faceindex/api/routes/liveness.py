"""Liveness: passive (``POST /v1/liveness``, one photo) and active (challenge-response
sessions at ``/v1/liveness/sessions``), and the ``require_liveness`` check the other
routes use.

The checker (``colour-texture``) and the frame measurer are made on the first request and
kept on the app's state, so each app owns its own (no module global); the checker's model
is a few KB. Model work runs in the worker threads, like detection. The session store is
the gallery database's (:class:`faceindex.challenges.SharedSessionStore`, put on the app's
state as ``liveness_sessions`` at start-up, so every server on one database shares
sessions and tokens); an app without one makes an in-memory
:class:`~faceindex.liveness.sessions.SessionStore`. Both are a
:class:`~faceindex.liveness.sessions.ChallengeStore`: a session changes only through
``store.update``, one step no other server's frames interleave with. The rules of a
session are in :mod:`faceindex.liveness.challenge`, the store and tokens in
:mod:`faceindex.liveness.sessions`; this module only measures frames and speaks HTTP.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable
from typing import Annotated, Any, Protocol

import numpy as np
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from faceindex.api.auth import ReadAccess
from faceindex.api.errors import ApiError
from faceindex.api.openapi import errors_doc, image_body_doc
from faceindex.api.schemas import DetectJson, Input
from faceindex.api.state import Services, ServicesDep, per_app
from faceindex.api.uploads import ImageBody, decode_base64_image, read_image_body
from faceindex.attributes import Attribute, Expression
from faceindex.attributes.analyzer import FaceAnalyzer
from faceindex.io.image import ImageLimits, load_image
from faceindex.liveness import DEFAULT_CHECKER, LIVENESS_CHECKERS, LivenessChecker
from faceindex.liveness.challenge import (
    INSTRUCTIONS,
    ChallengeSession,
    FrameMeasurement,
    LivenessRequiredError,
    SessionState,
    random_challenges,
)
from faceindex.liveness.sessions import (
    ChallengeStore,
    SessionStore,
    StoredSession,
    TooManySessionsError,
)
from faceindex.pipeline import Pipeline
from faceindex.types import Face, ImageArray

router = APIRouter(tags=["liveness"])


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
    return per_app(request, "liveness_checker", LIVENESS_CHECKERS.get(DEFAULT_CHECKER))


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


# -- active liveness: challenge-response sessions -----------------------------------------

#: Frames one request may carry.
MAX_FRAMES_PER_REQUEST = 10
TOKEN_HEADER = "X-Liveness-Token"


class FrameMeasurer(Protocol):
    """Measures one frame for a challenge session (tests put a fake one on the app's
    state as ``challenge_measurer``)."""

    def measure(self, image: ImageArray, t_ms: float) -> FrameMeasurement: ...

    def warm_up(self) -> None:
        """Load the models now (before a session's clock starts)."""
        ...


class ModelMeasurer:
    """The real measurements: the pipeline's detector and embedder, dlib's 68 points (eye
    aspect ratio, head yaw), the expression model (p(happy)) and the passive checker."""

    def __init__(
        self, pipeline: Pipeline, analyzer: FaceAnalyzer, checker: LivenessChecker
    ) -> None:
        self.pipeline = pipeline
        self.analyzer = analyzer
        self.checker = checker

    def warm_up(self) -> None:
        self.pipeline.warm_up()
        self.checker.warm_up()
        for estimator in self.analyzer.estimators:
            if estimator.provides & _MEASURED:
                estimator.warm_up()

    def measure(self, image: ImageArray, t_ms: float) -> FrameMeasurement:
        faces = self.pipeline.find_faces(image)
        if len(faces) != 1:
            return FrameMeasurement(t_ms=t_ms, faces=len(faces))
        face = self.pipeline.embed_faces(image, faces)[0]
        attrs = self.analyzer.estimate(image, (face,), _MEASURED)[0]
        live = self.checker.check(image, (face,))[0].live
        eyes, pose, expression = attrs.eyes, attrs.pose, attrs.expression
        assert face.embedding is not None  # set by embed_faces
        return FrameMeasurement(
            t_ms=t_ms,
            faces=1,
            box_width=float(face.bbox.width),
            ear=None if eyes is None else (eyes.left_ratio + eyes.right_ratio) / 2.0,
            yaw=None if pose is None else pose.yaw,
            happy=None if expression is None else expression.scores[Expression.HAPPY],
            embedding=np.asarray(face.embedding.vector, dtype=np.float32),
            live=live,
        )


_MEASURED = frozenset({Attribute.EYES, Attribute.POSE, Attribute.EXPRESSION})


def _sessions(request: Request) -> ChallengeStore:
    store: ChallengeStore = per_app(request, "liveness_sessions", SessionStore)
    return store


def _measurer(request: Request, services: Services) -> FrameMeasurer:
    def make() -> FrameMeasurer:
        analyzer = per_app(request, "face_analyzer", FaceAnalyzer)  # shared with /analyze
        return ModelMeasurer(services.pipeline, analyzer, _checker(request))

    return per_app(request, "challenge_measurer", make)


class SessionCreate(Input):
    mirrored: bool = Field(
        default=False,
        description="the frames will be flipped left-right (a selfie preview); default: as "
        "the camera delivers them (the subject's left on the image's right)",
    )


class SessionProgress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str
    state: str = Field(description="active, passed or failed")
    challenges: list[str] = Field(description="every challenge, in the order they are asked")
    current: str | None = Field(description="the challenge being checked (null once ended)")
    instruction: str | None = Field(description="what to tell the user for `current`")
    passed: list[str]
    reason: str | None = Field(
        description="why the session failed: expired, frames_out_of_order, identity_changed, "
        "spoof_detected, too_many_frames"
    )
    frames: int = Field(description="frames received")
    counted_frames: int = Field(description="frames with exactly one face, the session's own")
    live_frames: int = Field(description="counted frames the passive checker called live")
    last_faces: int | None = Field(
        default=None, description="faces found in the last frame of this request"
    )
    mirrored: bool
    expires_in_s: float = Field(description="seconds left until the session's deadline")
    liveness_token: str | None = Field(
        default=None, description="once passed: the single-use token for require_liveness"
    )
    token_expires_in_s: float | None = None


class SessionCreated(SessionProgress):
    nonce: str = Field(description="send it with every frame of this session")
    instructions: dict[str, str] = Field(description="what to tell the user, per challenge")


class FrameJson(Input):
    image_base64: str = Field(description="the frame, base64 (a data: URL prefix is fine)")
    t_ms: float = Field(description="the client's capture time in milliseconds; must increase")


class FramesJson(Input):
    nonce: str = Field(max_length=100)
    frames: list[FrameJson] = Field(min_length=1, max_length=MAX_FRAMES_PER_REQUEST)


def _progress(
    store: ChallengeStore, stored: StoredSession, *, last_faces: int | None = None
) -> dict[str, Any]:
    s = stored.challenge
    current = s.current
    token, token_expires = (None, None)
    if s.state is SessionState.PASSED:
        token, token_expires = store.issue_token(stored)
    now = store.clock()
    return {
        "session_id": stored.id,
        "state": str(s.state),
        "challenges": [str(c) for c in s.challenges],
        "current": None if current is None else str(current),
        "instruction": None if current is None else INSTRUCTIONS[current],
        "passed": [str(c) for c in s.passed],
        "reason": None if s.reason is None else str(s.reason),
        "frames": s.frames,
        "counted_frames": s.counted,
        "live_frames": s.live_frames,
        "last_faces": last_faces,
        "mirrored": s.mirrored,
        "expires_in_s": round(max(0.0, s.expires_at - now), 3),
        "liveness_token": token,
        "token_expires_in_s": None if token_expires is None else round(token_expires - now, 3),
    }


SessionId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.post(
    "/liveness/sessions",
    response_model=SessionCreated,
    status_code=201,
    summary="Start an active liveness challenge (blink, turn, smile, move closer)",
    description='Optional JSON `{"mirrored": false}`. Answers a session with 2-3 random '
    "challenges, a `nonce` to send with its frames and a deadline (`expires_in_s`, 30 s). "
    "Send camera frames to POST /v1/liveness/sessions/{id}/frames; when every challenge "
    "has passed, the answer carries a single-use `liveness_token` for `require_liveness` "
    "on identify, verify and enrolment (docs/liveness.md). 429 `too_many_sessions` when "
    "the server's session slots are all running.",
    responses=errors_doc(422, 429),
)
async def create_session(
    request: Request,
    _: ReadAccess,
    services: ServicesDep,
    body: SessionCreate | None = None,
) -> SessionCreated:
    store = _sessions(request)
    # The models load before the session's clock starts (seconds, on the first session only).
    await services.run_model(_measurer(request, services).warm_up)
    try:
        stored = await services.run_db(
            store.create,
            random_challenges(),
            threshold=services.pipeline.threshold,
            model_id=services.pipeline.model_id,
            mirrored=bool(body and body.mirrored),
        )
    except TooManySessionsError as exc:
        raise ApiError(
            429,
            "too_many_sessions",
            str(exc),
            headers={"Retry-After": str(int(store.session_lifetime_s))},
        ) from exc
    return SessionCreated(
        **_progress(store, stored),
        nonce=stored.nonce,
        instructions={str(c): INSTRUCTIONS[c] for c in stored.challenge.challenges},
    )


def _session_of(store: ChallengeStore, session_id: str, nonce: str | None) -> StoredSession:
    stored = store.get(session_id)
    if (
        stored is None
        or nonce is None
        or not hmac.compare_digest(stored.nonce.encode(), nonce.encode())
    ):
        raise ApiError(404, "not_found", "no such liveness session (or a wrong nonce)")
    return stored


def _updated(
    store: ChallengeStore, session_id: str, change: Callable[[ChallengeSession], None]
) -> StoredSession:
    stored = store.update(session_id, change)
    if stored is None:  # forgotten between the look-up and the update
        raise ApiError(404, "not_found", "no such liveness session (or a wrong nonce)")
    return stored


@router.get(
    "/liveness/sessions/{session_id}",
    response_model=SessionProgress,
    summary="A liveness session's progress",
    description="The `nonce` as a query parameter. Like the answer to frames, without sending any.",
    responses=errors_doc(404, 422),
)
async def get_session(
    request: Request,
    session_id: SessionId,
    _: ReadAccess,
    services: ServicesDep,
    nonce: str | None = None,
) -> SessionProgress:
    store = _sessions(request)

    def work() -> SessionProgress:
        stored = _session_of(store, session_id, nonce)
        at = store.clock()
        s = stored.challenge
        if s.state is SessionState.ACTIVE and at > s.expires_at:  # write only when it ends
            stored = _updated(store, session_id, lambda c: c.expire_if_due(at))
        return SessionProgress(**_progress(store, stored))

    return await services.run_db(work)


def _timestamps(raw: str | None, count: int) -> list[float]:
    values: list[float] = []
    for part in (raw or "").replace(";", ",").split(","):
        if part.strip():
            try:
                values.append(float(part))
            except ValueError:
                values.append(math.nan)
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "timestamps"),
                    "msg": f"give one timestamp (ms, comma-separated) per frame: {count}",
                    "type": "value_error",
                }
            ]
        )
    return values


@router.post(
    "/liveness/sessions/{session_id}/frames",
    response_model=SessionProgress,
    summary="Send camera frames to a liveness session; answers its progress",
    description="Multipart: `frame` files (repeated, in capture order), `timestamps` (the "
    "client's capture times in ms, comma-separated, one per frame) and `nonce`; or JSON "
    '`{"nonce": ..., "frames": [{"image_base64": ..., "t_ms": ...}]}`. At most '
    f"{MAX_FRAMES_PER_REQUEST} frames per request. Timestamps must increase across the "
    "whole session; a frame with no face or several is not counted; another person's face "
    "fails the session. When the last challenge passes the answer has `liveness_token`.",
    responses=errors_doc(404, 413, 415, 422),
    openapi_extra=image_body_doc(
        {"frame": True},
        json_model=FramesJson,
        text_fields={"timestamps": {"type": "string"}, "nonce": {"type": "string"}},
        required=("frame", "timestamps", "nonce"),
    ),
)
async def send_frames(
    request: Request,
    session_id: SessionId,
    _: ReadAccess,
    services: ServicesDep,
) -> SessionProgress:
    body = await read_image_body(
        request, services.settings, json_model=FramesJson, text_fields=("timestamps", "nonce")
    )
    settings = services.settings
    if body.json is not None:
        nonce = body.json["nonce"]
        uploads = [
            decode_base64_image(
                f["image_base64"], field_name=f"frames[{i}].image_base64", settings=settings
            )
            for i, f in enumerate(body.json["frames"])
        ]
        times = [float(f["t_ms"]) for f in body.json["frames"]]
    else:
        nonce = body.text("nonce")
        uploads = body.images("frame")
        if len(uploads) > MAX_FRAMES_PER_REQUEST:
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "frame"),
                        "msg": f"at most {MAX_FRAMES_PER_REQUEST} frames per request",
                        "type": "too_many",
                    }
                ]
            )
        times = _timestamps(body.text("timestamps"), len(uploads))
    store = _sessions(request)
    stored = await services.run_db(_session_of, store, session_id, nonce)
    measurer = _measurer(request, services)

    def work() -> list[FrameMeasurement]:
        limits = ImageLimits(settings.max_image_pixels, settings.max_upload_bytes)
        return [
            measurer.measure(load_image(u.data, limits=limits, name=u.label), t)
            for u, t in zip(uploads, times, strict=True)
        ]

    # decides on the state as read whether the frames are worth measuring at all
    s = stored.challenge
    ended = s.state is not SessionState.ACTIVE or store.clock() > s.expires_at
    measured = [] if ended else await services.run_model(work)

    def feed(session: ChallengeSession) -> None:
        # applied to the session as it is now: frames another server took meanwhile count
        session.expire_if_due(store.clock())
        session.feed_all(measured, now=store.clock())

    def save() -> SessionProgress:
        done = _updated(store, session_id, feed)
        return SessionProgress(
            **_progress(store, done, last_faces=measured[-1].faces if measured else None)
        )

    return await services.run_db(save)


# -- require_liveness on identify, verify and enrolment -----------------------------------


def liveness_proof(request: Request, body: ImageBody) -> StoredSession | None:
    """The passed session whose token ``body`` (or the ``X-Liveness-Token`` header) spends
    when ``require_liveness`` is set, marked used; None when it is not set.
    :class:`LivenessRequiredError` (422 ``liveness_required``) when the token is missing,
    malformed, forged, expired, for an unknown session or already used."""
    if not body.boolean("require_liveness"):
        return None
    raw: Any = (
        body.json.get("liveness_token") if body.json is not None else body.text("liveness_token")
    )
    token = raw or request.headers.get(TOKEN_HEADER)
    return _sessions(request).redeem(str(token) if token else None)


def require_live_face(stored: StoredSession | None, face: Face, pipeline: Pipeline) -> None:
    """:class:`LivenessRequiredError` unless ``face`` is the face seen live in ``stored``
    (embedding similarity at or above the verification threshold); nothing when no proof
    was asked for."""
    if stored is None:
        return
    reference = stored.challenge.reference
    if face.embedding is None or reference is None or stored.model_id != pipeline.model_id:
        raise LivenessRequiredError(
            "the liveness token cannot be checked against this face", reason="different_face"
        )
    similarity = float(np.asarray(face.embedding.vector, dtype=np.float32) @ reference)
    if similarity < pipeline.threshold:
        raise LivenessRequiredError(
            "the photo's face is not the face that passed the liveness challenge",
            reason="different_face",
            similarity=round(similarity, 6),
            threshold=pipeline.threshold,
        )


#: The text fields the routes taking ``require_liveness`` read, and their OpenAPI entries.
LIVENESS_TEXT_FIELDS = ("require_liveness", "liveness_token")
LIVENESS_FIELDS_DOC: dict[str, dict[str, Any]] = {
    "require_liveness": {"type": "boolean", "default": False},
    "liveness_token": {"type": "string", "maxLength": 200},
}
