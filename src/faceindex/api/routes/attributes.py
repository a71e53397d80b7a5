"""Face attributes of one photo: expression, age, gender, head pose, eyes.

The analyzer is made on the first request and kept on the app's state (each app owns its
own, no module global); its models load on that first request (1.5-4 s, the 100 MB dlib
68-point predictor most of it). Model work runs in the worker threads, like detection.
Nothing is stored: attributes are sensitive, and the answer is the only place they exist.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from faceindex.api.auth import ReadAccess
from faceindex.api.openapi import errors_doc, image_body_doc
from faceindex.api.schemas import DetectJson
from faceindex.api.state import ServicesDep, per_app
from faceindex.api.uploads import read_image_body
from faceindex.attributes import Attribute, parse_attributes
from faceindex.attributes.analyzer import FaceAnalyzer
from faceindex.errors import InvalidInputError
from faceindex.io.image import ImageLimits, load_image

router = APIRouter(tags=["attributes"])

_NAMES = ",".join(str(a) for a in Attribute)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenderOut(_Wire):
    label: str = Field(description="female or male: the model's two classes")
    score: float = Field(description="the model's probability of that label, 0.5-1")


class ExpressionOut(_Wire):
    label: str = Field(description="angry, disgust, fear, happy, sad, surprise or neutral")
    scores: dict[str, float] = Field(description="probability of each of the 7 classes")


class PoseOut(_Wire):
    yaw: float = Field(description="degrees; > 0: turned towards the image's right")
    pitch: float = Field(description="degrees; > 0: looking down")
    roll: float = Field(description="degrees; > 0: tilted clockwise in the image")


class EyesOut(_Wire):
    left_open: bool = Field(description="the subject's left eye (on the image's right)")
    right_open: bool
    left_ratio: float = Field(description="eye aspect ratio; open at 0.15 and above")
    right_ratio: float


class AnalyzedFaceOut(_Wire):
    bbox: list[float] = Field(description="[x1, y1, x2, y2] in pixels", min_length=4, max_length=4)
    age: float | None = Field(default=None, description="apparent age in years (expectation)")
    age_range: list[float] | None = Field(
        default=None, description="10th-90th percentile of the model's age distribution"
    )
    gender: GenderOut | None = None
    expression: ExpressionOut | None = None
    pose: PoseOut | None = None
    eyes: EyesOut | None = None


class AnalyzeResponse(_Wire):
    faces: list[AnalyzedFaceOut] = Field(description="largest first; empty when none is found")
    attributes: list[str] = Field(description="the attributes estimated")
    width: int
    height: int


class AnalyzeJson(DetectJson):
    attributes: str | None = Field(
        default=None, description=f"comma-separated, of {_NAMES} (default: all)"
    )


def _analyzer(request: Request) -> FaceAnalyzer:
    return per_app(request, "face_analyzer", FaceAnalyzer)


def _wanted(raw: object) -> frozenset[Attribute]:
    if raw is None:
        return parse_attributes(None)
    try:
        return parse_attributes(str(raw))
    except InvalidInputError as exc:
        raise RequestValidationError(
            [{"loc": ("body", "attributes"), "msg": exc.message, "type": "value_error"}]
        ) from exc


@router.post(
    "/analyze",
    response_model=AnalyzeResponse,
    response_model_exclude_none=True,
    summary="Expression, age, gender, head pose and eyes of every face",
    description="Multipart field `image` (and optionally a text field `attributes`), or "
    'JSON `{"image_base64": ..., "attributes": ...}`. `attributes` is a comma-separated '
    f"list of {_NAMES} (default: all). Every face the detector finds, largest first, with "
    "the attributes asked for. These are a model's guesses, not facts about a person: see "
    "docs/attributes.md for what each was trained on and how wrong it can be. Nothing is "
    "stored.",
    responses=errors_doc(413, 415, 422),
    openapi_extra=image_body_doc(
        {"image": False},
        json_model=AnalyzeJson,
        text_fields={"attributes": {"type": "string", "description": _NAMES}},
        required=("image",),
    ),
)
async def analyze(
    request: Request,
    _: ReadAccess,
    services: ServicesDep,
) -> AnalyzeResponse:
    body = await read_image_body(
        request, services.settings, json_model=AnalyzeJson, text_fields=("attributes",)
    )
    upload = body.image("image")
    raw = body.json.get("attributes") if body.json is not None else body.text("attributes")
    wanted = _wanted(raw)
    analyzer = _analyzer(request)

    def work() -> AnalyzeResponse:
        s = services.settings
        rgb = load_image(
            upload.data,
            limits=ImageLimits(s.max_image_pixels, s.max_upload_bytes),
            name=upload.label,
        )
        faces = services.pipeline.find_faces(rgb)
        analyzed = analyzer.analyze(rgb, faces, wanted)
        return AnalyzeResponse(
            faces=[AnalyzedFaceOut.model_validate(f.as_dict()) for f in analyzed],
            attributes=[str(a) for a in Attribute if a in wanted],
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
        )

    return await services.run_model(work)
