"""faceindex: self-hosted face recognition.

The public facade. Everything here resolves lazily, so ``import faceindex`` loads no
model, no ONNX Runtime, no dlib and no database::

    from faceindex import Pipeline, open_gallery

    pipeline = Pipeline.from_settings()
    with open_gallery("people.db", pipeline=pipeline) as gallery:
        gallery.enroll("Ada Lovelace", ["ada1.jpg", "ada2.jpg"])
        for face in gallery.identify("crowd.jpg"):
            print(face.person.name if face.person else "unknown", face.similarity)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from faceindex.config import Settings
    from faceindex.errors import FaceIndexError
    from faceindex.gallery import Gallery, open_gallery
    from faceindex.pipeline import Pipeline
    from faceindex.types import (
        BBox,
        Embedding,
        Face,
        IdentDecision,
        Identification,
        Landmarks,
        Match,
        Quality,
        Verification,
    )

_PUBLIC = {
    "Pipeline": "faceindex.pipeline",
    "Settings": "faceindex.config",
    "Gallery": "faceindex.gallery",
    "open_gallery": "faceindex.gallery",
    "FaceIndexError": "faceindex.errors",
    **{
        name: "faceindex.types"
        for name in (
            "BBox",
            "Embedding",
            "Face",
            "IdentDecision",
            "Identification",
            "Landmarks",
            "Match",
            "Quality",
            "Verification",
        )
    },
}

__all__ = [
    "BBox",
    "Embedding",
    "Face",
    "FaceIndexError",
    "Gallery",
    "IdentDecision",
    "Identification",
    "Landmarks",
    "Match",
    "Pipeline",
    "Quality",
    "Settings",
    "Verification",
    "__version__",
    "open_gallery",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'faceindex' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
