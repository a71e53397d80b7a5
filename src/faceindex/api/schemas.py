"""Wire DTOs of the REST API (pydantic), separate from the core types.

Each ``from_*`` helper converts one core type, so the JSON contract is written down in one
place and core types never learn about HTTP.

Request models derive from :class:`Input`: no text anywhere in them (nested metadata
included) may hold a lone UTF-16 surrogate (``"\\ud800"`` in JSON, which Python's parser
accepts but no database or UTF-8 writer can store), and ids are strict integers (JSON
``true`` is not person 1).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from faceindex.gallery import Person as CorePerson
from faceindex.gallery import PhotoOutcome
from faceindex.types import Face, Identification, Match
from faceindex.types import Quality as CoreQuality

MAX_ID = 2**63 - 1


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


def has_surrogate(value: Any) -> bool:
    """Whether a string, or any key or string inside dicts and lists, has a lone surrogate."""
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(has_surrogate(k) or has_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_surrogate(v) for v in value)
    return False


class Input(_Wire):
    """A request body: text without lone surrogates (422 ``validation_error``)."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_surrogates(cls, value: Any) -> Any:
        if has_surrogate(value):
            raise ValueError("text must be valid Unicode (it holds a lone UTF-16 surrogate)")
        return value


#: An id in a JSON body: an integer, never a boolean, float or numeric string.
WireId = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]


# -- errors -------------------------------------------------------------------------------


class ErrorInfo(_Wire):
    code: str = Field(description="stable machine-readable code, e.g. image_decode_error")
    message: str = Field(description="what went wrong, for people")
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(_Wire):
    error: ErrorInfo


# -- system -------------------------------------------------------------------------------


class Health(_Wire):
    status: Literal["ok"] = "ok"
    version: str
    auth: bool = Field(description="false when the server runs with --no-auth")


class Ready(_Wire):
    ready: bool
    model: str | None = Field(description="the embedding model's id")
    error: str | None = Field(default=None, description="why models failed to load, if so")


class EvalSummary(_Wire):
    people: int
    templates: int
    model: str = Field(description="the embedding model the server uses")
    gallery_model: str | None = Field(description="the model of the stored templates")
    threshold: float = Field(description="verification threshold (cosine similarity)")
    target_fmr: float | None = Field(
        description="false match rate the threshold was calibrated for (null if overridden)"
    )
    calibrated_threshold: float = Field(
        description="the model's calibrated verification threshold (the default)"
    )
    calibrated_fmr: float = Field(description="the false match rate it was calibrated for")
    identify_threshold: float = Field(description="open-set identification threshold")
    rule: str = Field(description="how a person's templates are aggregated: max, mean-top2")
    margin: float = Field(description="least lead over the runner-up to name someone")


# -- recognition --------------------------------------------------------------------------


class Quality(_Wire):
    score: float
    face_px: float
    sharpness: float
    brightness: float
    yaw: float
    pitch: float
    roll: float
    issues: list[str]

    @classmethod
    def from_core(cls, q: CoreQuality | None) -> Quality | None:
        return None if q is None else cls(**q.as_dict())


class DetectedFace(_Wire):
    bbox: list[float] = Field(description="[x1, y1, x2, y2] in pixels", min_length=4, max_length=4)
    score: float
    landmarks: list[list[float]] = Field(description="[[x, y], ...] (five points)")
    quality: Quality | None

    @classmethod
    def from_core(cls, face: Face) -> DetectedFace:
        return cls(
            bbox=face.bbox.as_list(),
            score=round(face.score, 4),
            landmarks=face.landmarks.as_list() if face.landmarks is not None else [],
            quality=Quality.from_core(face.quality),
        )


class DetectResponse(_Wire):
    faces: list[DetectedFace]
    width: int
    height: int
    message: str | None = Field(
        default=None,
        description="when no face is listed but the detector saw one under its size limit: "
        "face too small (N px, need M)",
    )


class VerifyResponse(_Wire):
    similarity: float
    match: bool | None = Field(description="null when the decision is unsure")
    decision: Literal["match", "no_match", "unsure"] = Field(
        description="unsure: a compared face's quality was under reject_below"
    )
    quality: float | None = Field(
        default=None, description="the lower of the two compared faces' quality scores"
    )
    threshold: float
    model: str
    face_a: int | None = Field(
        default=None, description="index of the compared face among faces_a (largest first)"
    )
    face_b: int | None = Field(
        default=None, description="index of the compared face among faces_b (null: a person)"
    )
    bbox_a: list[float] | None = Field(default=None, description="box of the compared face of A")
    bbox_b: list[float] | None = Field(default=None, description="box of the compared face of B")
    faces_a: list[list[float]] = Field(
        default_factory=list, description="boxes of every face found in A, largest first"
    )
    faces_b: list[list[float]] = Field(
        default_factory=list, description="boxes of every face found in B, largest first"
    )


class PersonRef(_Wire):
    id: int
    name: str


class PersonScore(_Wire):
    id: int
    name: str
    similarity: float

    @classmethod
    def from_core(cls, hit: Match | None) -> PersonScore | None:
        if hit is None:
            return None
        return cls(id=hit.person_id, name=hit.name, similarity=round(hit.similarity, 6))


class IdentifiedFace(_Wire):
    bbox: list[float] = Field(min_length=4, max_length=4)
    person: PersonRef | None = Field(description="null: unknown (or ambiguous)")
    similarity: float | None = Field(description="the best candidate's score, even if unknown")
    decision: Literal["identified", "unknown", "ambiguous", "unsure"]
    runner_up: PersonScore | None
    candidate: PersonScore | None = Field(
        default=None,
        description="the closest enrolled person whatever the decision (for an unknown "
        "face: who came nearest, and how near); null only when the gallery is empty",
    )
    quality: float | None = Field(
        default=None, description="the face's quality score (0-1; see reject_below)"
    )

    @classmethod
    def from_core(cls, f: Identification) -> IdentifiedFace:
        person = f.person
        if f.bbox is None:
            raise ValueError("an identified face from a photo has a box")
        return cls(
            bbox=f.bbox.as_list(),
            person=None if person is None else PersonRef(id=person.person_id, name=person.name),
            similarity=None if f.similarity is None else round(f.similarity, 6),
            decision=str(f.decision),  # type: ignore[arg-type]
            runner_up=PersonScore.from_core(f.runner_up),
            candidate=PersonScore.from_core(f.best),
            quality=None if f.quality is None else round(f.quality.score, 6),
        )


class IdentifyResponse(_Wire):
    faces: list[IdentifiedFace]
    width: int
    height: int
    message: str | None = Field(
        default=None,
        description="when no face is listed but the detector saw one under its size limit: "
        "face too small (N px, need M)",
    )


class DetectJson(Input):
    image_base64: str = Field(description="the image file, base64 (a data: URL prefix is fine)")


class LivenessFields(Input):
    """Asking for proof of a live face: a token earned at POST /v1/liveness/sessions."""

    require_liveness: bool = Field(
        default=False,
        description="refuse the request (422 liveness_required) unless `liveness_token` is a "
        "valid, unused token whose live face is the photo's face",
    )
    liveness_token: str | None = Field(
        default=None,
        max_length=200,
        description="the token of a passed liveness session (or header X-Liveness-Token)",
    )


#: A quality floor: faces whose quality score is under it get the decision ``unsure``.
QualityFloor = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class IdentifyJson(DetectJson, LivenessFields):
    reject_below: QualityFloor | None = Field(
        default=None, description="faces of lower quality are answered unsure"
    )


#: A face selector: an index into a photo's faces as detect lists them (largest first).
FaceIndex = Annotated[StrictInt, Field(ge=0, le=10_000)]


class VerifyJson(LivenessFields):
    image_a_base64: str | None = None
    image_b_base64: str | None = None
    image_base64: str | None = None
    person_id: WireId | None = None
    face_a: FaceIndex | None = Field(
        default=None, description="which face of A (default: its most prominent)"
    )
    face_b: FaceIndex | None = Field(
        default=None, description="which face of B (default: its most prominent)"
    )
    search: bool = Field(
        default=False, description="compare A's face with every face of B; answer the best"
    )
    reject_below: QualityFloor | None = Field(
        default=None, description="answer unsure when a compared face's quality is lower"
    )


# -- people -------------------------------------------------------------------------------


class Person(_Wire):
    id: int
    name: str
    external_id: str | None
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    templates: int
    photos: int

    @classmethod
    def from_core(cls, p: CorePerson) -> Person:
        return cls(**p.as_dict())


class PeoplePage(_Wire):
    items: list[Person]
    total: int = Field(description="people matching the search, over all pages")
    offset: int
    limit: int


class PersonCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    metadata: dict[str, Any] | None = None


class PersonPatch(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    external_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="null or absent: unchanged"
    )
    metadata: dict[str, Any] | None = Field(
        default=None, description="replaces the whole object; null or absent: unchanged"
    )


class EnrolConflict(_Wire):
    person_id: int = Field(description="the other enrolled person the face matches")
    name: str
    similarity: float


class EnrolledPhoto(_Wire):
    source: str = Field(description="the uploaded file's name")
    status: Literal["accepted", "rejected", "duplicate"]
    reasons: list[str] = Field(
        description="why rejected: no_face, face_too_small, several_faces, blurry, "
        "matches_other_person, ..."
    )
    template_id: int | None
    quality: Quality | None
    flags: list[str] = Field(description="e.g. closer_to_other_person:ID")
    conflict: EnrolConflict | None = Field(
        default=None,
        description="the other person this face matches: why it was refused "
        "(matches_other_person), or who it matched when enrolled with force",
    )
    message: str | None = Field(
        default=None, description="the rejection in words, e.g. face too small (14 px, need 20)"
    )

    @classmethod
    def from_core(cls, o: PhotoOutcome) -> EnrolledPhoto:
        c = o.conflict
        return cls(
            source=o.source,
            status=str(o.status),  # type: ignore[arg-type]
            reasons=list(o.reasons),
            template_id=o.template_id,
            quality=Quality.from_core(o.quality),
            flags=list(o.flags),
            conflict=None if c is None else EnrolConflict(**c.as_dict()),
            message=o.message,
        )


class EnrolResponse(_Wire):
    person: Person
    photos: list[EnrolledPhoto]


class MergeRequest(Input):
    from_person_id: WireId = Field(description="the person folded in (and deleted)")


# -- gallery transfer ---------------------------------------------------------------------


class ImportResult(_Wire):
    people_created: int
    people_merged: int = Field(description="people of the file added to a same-named person")
    templates_added: int
    skipped: int = Field(description="templates not imported (their photo is already enrolled)")


class FaceTemplate(_Wire):
    id: int = Field(description="the template id")
    quality: float | None
    source: str | None
    created_at: str
    has_photo: bool = Field(description="whether the photo is kept (see the photo endpoint)")
    flags: list[str] = Field(
        default_factory=list,
        description="enrolment flags, e.g. matches_other_person:ID (enrolled with force)",
    )


class FaceList(_Wire):
    items: list[FaceTemplate]


# -- admin --------------------------------------------------------------------------------


class AuditEvent(_Wire):
    id: int
    at: str
    actor: str
    action: str
    person_id: int | None
    decision: str | None
    details: dict[str, Any]


class AuditList(_Wire):
    items: list[AuditEvent]


ScopeName = Literal["read", "write", "admin"]


class ApiKeyInfo(_Wire):
    id: int
    name: str
    scopes: list[ScopeName]
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class ApiKeyList(_Wire):
    items: list[ApiKeyInfo]


class ApiKeyCreate(Input):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[ScopeName] = Field(min_length=1)


class ApiKeyCreated(_Wire):
    key: ApiKeyInfo
    secret: str = Field(description="shown once: only its hash is stored")
